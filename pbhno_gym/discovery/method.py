"""What a parameter-discovery method is: :class:`Method` (name, fit function, family, settings).

Kept apart from :mod:`.registry` so that the method modules (:mod:`.methods`,
:mod:`pbhno_gym.surrogate.method`) can declare their methods without importing the registry,
which imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .result import FitResult

__all__ = ["Method", "FAMILIES"]

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
        in_default: part of the default method lists at all (False: only when named, e.g. the
            skeleton MAP, which equals ``map`` on designs without hidden mechanisms).
    """

    name: str
    fit: Callable[..., FitResult]
    description: str
    family: str = "statistical"
    quick: dict = field(default_factory=dict)
    full: dict = field(default_factory=dict)
    provides: tuple[str, ...] = ()
    in_quick: bool = True
    in_default: bool = True

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"Method.family must be one of {FAMILIES}, got {self.family!r}")

    def settings(self, quick: bool, overrides: dict | None = None) -> dict:
        return {**(self.quick if quick else self.full), **(overrides or {})}
