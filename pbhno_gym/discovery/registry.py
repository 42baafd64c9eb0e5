"""The registry of parameter-discovery methods, so every experiment compares the same set.

A method is a function ``fit(dataset, free, prior, *, seed=0, settings=None) -> FitResult``
(``dataset``: a :class:`~pbhno_gym.data.Dataset` as written by :func:`make_dataset` or
``collect_episodes``; ``free``: names of the parameters to estimate; ``prior``: a
:class:`~pbhno_gym.discovery.prior.Prior` over them) registered with a name, a family and its
quick and full settings. Experiments (``pbhno reproduce``) and sweeps read methods from here
only, so adding a method (the lead's PB-HNO and its ablations) is one ``register_method`` call in
a module listed in ``PLUGIN_MODULES``:

    register_method(Method("pbhno", fit_pbhno, "PB-HNO (FNO + neural ODE)", family="pbhno",
                           quick={"epochs": 50}, full={"epochs": 2000}))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .result import FitResult

__all__ = ["Method", "register_method", "get_method", "available_methods", "PLUGIN_MODULES", "fit"]

#: modules whose import registers methods (the lead appends the PB-HNO module here)
PLUGIN_MODULES = [
    "pbhno_gym.baselines.mle",
    "pbhno_gym.baselines.sbinn",
    "pbhno_gym.baselines.pinn",
    "pbhno_gym.baselines.fno_plain",
    "pbhno_gym.surrogate.method",
]

FAMILIES = ("statistical", "physics-informed", "operator", "pbhno")


@dataclass(frozen=True)
class Method:
    """A registered discovery method.

    Attributes:
        name: registry key (used in tables, file names and ``--methods``).
        fit: ``fit(dataset, free, prior, *, seed=0, settings=None) -> FitResult``.
        description: one line for tables and ``--help``.
        family: "statistical" (true-model likelihood), "physics-informed", "operator" or "pbhno".
        quick, full: settings for ``--quick`` (minutes on a CPU) and for the full run.
        provides: capabilities beyond estimates: "forecast" (predictor.forecast under new
            controls), "field" (predictor.field ligand reconstruction), "intervals".
        in_quick: part of an experiment's default method list in the quick setting (False for
            costly ablations: they run in the full setting or when named with ``--methods``).
    """

    name: str
    fit: Callable[..., FitResult]
    description: str
    family: str = "statistical"
    quick: dict = field(default_factory=dict)
    full: dict = field(default_factory=dict)
    provides: tuple[str, ...] = ()
    in_quick: bool = True

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"Method.family must be one of {FAMILIES}, got {self.family!r}")

    def settings(self, quick: bool, overrides: dict | None = None) -> dict:
        return {**(self.quick if quick else self.full), **(overrides or {})}


_METHODS: dict[str, Method] = {}
_loaded = False


def register_method(method: Method, replace: bool = False) -> Method:
    """Add a method to the registry (``replace=True`` to overwrite an existing name)."""
    if method.name in _METHODS and not replace:
        if _METHODS[method.name].fit is method.fit:
            return method
        raise ValueError(f"a discovery method named {method.name!r} is already registered")
    _METHODS[method.name] = method
    return method


def _load_plugins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in PLUGIN_MODULES:
            importlib.import_module(mod)


def available_methods() -> dict[str, Method]:
    """Name -> Method for every registered method (built-ins and plugins)."""
    _load_plugins()
    return dict(_METHODS)


def get_method(name: str) -> Method:
    methods = available_methods()
    if name not in methods:
        raise ValueError(f"unknown discovery method {name!r}; available: {', '.join(sorted(methods))}")
    return methods[name]


def fit(
    name: str,
    dataset: Any,
    free: Sequence[str],
    prior: Any,
    *,
    seed: int = 0,
    quick: bool = True,
    settings: dict | None = None,
) -> FitResult:
    """Run a registered method with its quick or full settings (plus ``settings`` overrides)."""
    m = get_method(name)
    res = m.fit(dataset, tuple(free), prior, seed=seed, settings=m.settings(quick, settings))
    res.method = name
    return res
