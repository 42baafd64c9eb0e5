"""Parameter discovery on one data interface (issue 7; see docs/discovery.md).

Designs make episode datasets (:mod:`.design`; the named ones are registered in
:mod:`.designs`); every method maps (dataset, free parameter names, :class:`~.prior.Prior`) to a
:class:`~.result.FitResult` and is listed in the registry (:mod:`.registry`), which the
experiments read.
"""

from .design import Design, make_dataset, simulate_prior
from .designs import DESIGNS, available_designs, get_design, register_design
from .prior import Prior
from .registry import Method, available_methods, fit, get_method, register_method
from .result import FitResult

__all__ = [
    "DESIGNS",
    "Design",
    "available_designs",
    "get_design",
    "register_design",
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
