"""Parameter discovery on one data interface (issue 7; see docs/discovery.md).

Designs make episode datasets (:mod:`.design`); every method maps (dataset, free parameter
names, :class:`~.prior.Prior`) to a :class:`~.result.FitResult` and is listed in the registry
(:mod:`.registry`), which the experiments read.
"""

from .design import DESIGNS, Design, get_design, make_dataset, simulate_prior
from .prior import Prior
from .registry import Method, available_methods, fit, get_method, register_method
from .result import FitResult

__all__ = [
    "DESIGNS",
    "Design",
    "get_design",
    "make_dataset",
    "simulate_prior",
    "Prior",
    "Method",
    "available_methods",
    "fit",
    "get_method",
    "register_method",
    "FitResult",
]
