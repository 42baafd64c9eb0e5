"""The registry of parameter-discovery methods, so every experiment compares the same set.

A method is a function ``fit(dataset, free, prior, *, seed=0, settings=None) -> FitResult``
(``dataset``: a :class:`~pbhno_gym.data.Dataset` as written by :func:`make_dataset` or
``collect_episodes``; ``free``: names of the parameters to estimate; ``prior``: a
:class:`~pbhno_gym.discovery.prior.Prior` over them) declared as a :class:`~.method.Method` with
a name, a family and its quick and full settings. Experiments (``pbhno reproduce``) and sweeps
read methods from here only.

The built-in methods are each module's ``METHODS`` tuple, collected on first use by ordinary
imports of :mod:`pbhno_gym.discovery.methods` (true-model MLE/MAP, SBINN, PINN-ODE/PDE, plain
FNO) and :mod:`pbhno_gym.surrogate.method` (PB-HNO and its ablations), in that order. A new
built-in method is a module in ``discovery/methods/`` with a ``METHODS`` tuple, added to that
package's ``__init__``; code outside the package calls :func:`register_method`:

    register_method(Method("mine", fit_mine, "my method", family="operator",
                           quick={"epochs": 50}, full={"epochs": 2000}))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .method import FAMILIES, Method
from .result import FitResult

__all__ = ["Method", "FAMILIES", "register_method", "get_method", "available_methods", "fit"]

_METHODS: dict[str, Method] = {}
_builtins_loaded = False


def _add(method: Method, replace: bool) -> Method:
    if method.name in _METHODS and not replace:
        if _METHODS[method.name].fit is method.fit:
            return method
        raise ValueError(f"a discovery method named {method.name!r} is already registered")
    _METHODS[method.name] = method
    return method


def _load_builtins() -> None:
    """Register the built-in methods once (plain imports; they import only :mod:`.method`)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    from ..surrogate import method as pbhno_method
    from . import methods

    for m in (*methods.METHODS, *pbhno_method.METHODS):
        _add(m, replace=False)
    _builtins_loaded = True


def register_method(method: Method, replace: bool = False) -> Method:
    """Add a method to the registry (``replace=True`` to overwrite an existing name)."""
    _load_builtins()
    return _add(method, replace)


def available_methods() -> dict[str, Method]:
    """Name -> Method for every registered method (built-ins first, then any registered later)."""
    _load_builtins()
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
