"""Target phenotypes per episode, batched: what a biologist asks the controller to produce.

Phenotypes are normalised per cell, ``p = (x_pheno - phenotype_low) / (phenotype_high - phenotype_low)``.

* Pattern targets give every cell "on" (``on_level``) or "off" (``off_level``); success needs on
  cells above ``on_threshold`` and off cells below ``off_threshold``:
  ``wnt_boundary`` (target gene on in columns < k: the position of the on/off boundary),
  ``notch_fate`` (which of two cells is the Hes-high receiver: lateral-inhibition fate split),
  ``notch_checkerboard`` (salt-and-pepper pattern of a given parity).
* ``setpoint``: a level in [low, high] that switches up to ``switches`` times at random steps;
  ``pulse_train``: square wave between low and high with half-period ``period`` steps and a
  random phase. Success: every cell within ``tolerance``.

Each kind is a :class:`TargetKind` in the :data:`TARGETS` registry (``target.kind`` -> kind);
adding one is one :func:`register_target` call, and spec validation lists the registered kinds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..physics.geometry import CellLayout
from ..utils.rng import CounterRNG

if TYPE_CHECKING:  # annotations only: spec.validate reads this registry, not the other way
    from .spec import TargetSpec

__all__ = [
    "TARGETS",
    "CellIndex",
    "PatternTarget",
    "TargetKind",
    "TargetModel",
    "available_targets",
    "get_target",
    "register_target",
]

STREAM_TARGET = 11


class TargetKind(ABC):
    """One ``target.kind``: its per-episode parameters, target levels, success test and text."""

    pattern: bool = False  # per-cell on/off targets, parameter = index into ``choices``

    def setup(self, spec: TargetSpec, layout: CellLayout) -> Tensor | None:
        """Check the spec against the layout; returns per-spec constants (pattern masks) or None."""
        return None

    @abstractmethod
    def n_params(self, spec: TargetSpec) -> int:
        """Parameters drawn per episode."""

    @abstractmethod
    def sample(self, m: TargetModel, u: Tensor) -> Tensor:
        """(B, n_params) episode parameters from uniforms ``u`` (B, max(n_params, 2))."""

    @abstractmethod
    def levels(self, m: TargetModel, params: Tensor, steps: Tensor) -> Tensor:
        """(B, preview, N) normalised target phenotype at ``steps`` (B or 1, preview)."""

    def in_tolerance(self, m: TargetModel, p: Tensor, p_star: Tensor) -> Tensor:
        """(B,) bool: every cell within ``tolerance`` of its target."""
        return ((p - p_star).abs() <= m.spec.tolerance).all(1)

    @abstractmethod
    def describe(self, spec: TargetSpec, row: list[float]) -> str:
        """Human-readable target of one env from its parameter row."""

    def check_params(self, m: TargetModel, row: list[float]) -> str | None:
        """Why a user-chosen parameter row (``reset(options={"target": row})``) is invalid, or None."""
        return None

    def target_class(self, spec: TargetSpec, row: list[float]) -> str:
        """The episode's target class, for per-class success (task-design checks): one label per
        qualitatively different goal, so an overall rate cannot hide a class that needs no control."""
        return "all"


class CellIndex(NamedTuple):
    """Cell coordinates a pattern mask is written in: flat index, row, column, counts."""

    idx: Tensor
    row: Tensor
    col: Tensor
    n_cells: int
    cols: int


class PatternTarget(TargetKind):
    """Every cell "on" (``on_level``) or "off" (``off_level``); one mask per entry of ``choices``.

    Args:
        on_mask: ``(choice, cells) -> (N,) bool``; raises ValueError for an invalid choice.
        text: description with ``{k}`` for the choice.
    """

    pattern = True

    def __init__(self, on_mask: Callable[[int, CellIndex], Tensor], text: str) -> None:
        self.on_mask, self.text = on_mask, text

    def setup(self, spec: TargetSpec, layout: CellLayout) -> Tensor:
        """(P, N) bool "on" masks, one per choice."""
        return torch.stack([self.mask(k, layout) for k in spec.choices])

    def mask(self, k: int, layout: CellLayout) -> Tensor:
        """(N,) bool "on" mask of choice value ``k`` (also one outside ``choices``, e.g. the
        untreated pattern worlds are conditioned on)."""
        n = layout.n_cells
        rows, cols = layout.shape
        idx = torch.arange(n)
        return self.on_mask(k, CellIndex(idx, idx // cols, idx % cols, n, cols))

    def n_params(self, spec: TargetSpec) -> int:
        return 1

    def sample(self, m: TargetModel, u: Tensor) -> Tensor:
        n = len(m.spec.choices)
        return torch.floor(u[:, :1] * n).clamp_max(n - 1)

    def levels(self, m: TargetModel, params: Tensor, steps: Tensor) -> Tensor:
        s = m.spec
        on = m.patterns[params[:, 0].long()]  # (B, N)
        lv = torch.where(on, s.on_level, s.off_level).to(m.dtype)
        return lv[:, None, :].expand(params.shape[0], steps.shape[1], m.n_cells)

    def in_tolerance(self, m: TargetModel, p: Tensor, p_star: Tensor) -> Tensor:
        s = m.spec
        on = p_star > 0.5 * (s.on_level + s.off_level)
        return torch.where(on, p >= s.on_threshold, p <= s.off_threshold).all(1)

    def describe(self, spec: TargetSpec, row: list[float]) -> str:
        return self.text.format(k=spec.choices[int(row[0])])

    def target_class(self, spec: TargetSpec, row: list[float]) -> str:
        """The choice itself (e.g. the boundary column)."""
        return f"choice={spec.choices[int(row[0])]}"


class _TimeCourse(TargetKind):
    """One level shared by every cell, varying over time within [low, high]."""

    def setup(self, spec: TargetSpec, layout: CellLayout) -> None:
        if not spec.high >= spec.low:
            raise ValueError("spec.target.high must be >= spec.target.low")

    def _expand(self, m: TargetModel, lv: Tensor, batch: int) -> Tensor:
        return lv[:, :, None].expand(batch, lv.shape[1], m.n_cells)


class SetpointTarget(_TimeCourse):
    """Piecewise-constant level with ``switches`` random switching steps."""

    def n_params(self, spec: TargetSpec) -> int:
        return 2 * spec.switches + 1

    def sample(self, m: TargetModel, u: Tensor) -> Tensor:
        s, k = m.spec, m.spec.switches
        times = torch.sort(1 + torch.floor(u[:, :k] * max(m.horizon - 1, 1)), dim=1).values
        levels = s.low + (s.high - s.low) * u[:, k : 2 * k + 1] if k else s.low + (s.high - s.low) * u[:, :1]
        return torch.cat([times, levels], 1)

    def levels(self, m: TargetModel, params: Tensor, steps: Tensor) -> Tensor:
        k = m.spec.switches
        times, vals = params[:, :k], params[:, k:]
        seg = (steps[:, :, None] >= times[:, None, :]).sum(-1) if k else torch.zeros_like(steps)
        return self._expand(m, torch.gather(vals, 1, seg).to(m.dtype), params.shape[0])

    def describe(self, spec: TargetSpec, row: list[float]) -> str:
        k = spec.switches
        return (
            "set-point "
            + ", ".join(f"{v:.2f}" for v in row[k:])
            + " switching at steps "
            + ", ".join(str(int(x)) for x in row[:k])
        )

    def target_class(self, spec: TargetSpec, row: list[float]) -> str:
        """Third of ``[low, high]`` the final set-point lies in (low / mid / high): the level
        success is judged at."""
        span = max(spec.high - spec.low, 1e-12)
        third = min(int(3 * (row[-1] - spec.low) / span), 2)
        return "final=" + ("low", "mid", "high")[max(third, 0)]

    def check_params(self, m: TargetModel, row: list[float]) -> str | None:
        s, k = m.spec, m.spec.switches
        if any(t != int(t) or not 0 <= t <= m.horizon for t in row[:k]):
            return f"switch steps {row[:k]} must be integers in [0, horizon={m.horizon}]"
        if any(not s.low <= v <= s.high for v in row[k:]):
            return f"levels {row[k:]} must lie in [spec.target.low, high] = [{s.low:g}, {s.high:g}]"
        return None


class PulseTrainTarget(_TimeCourse):
    """Square wave between ``low`` and ``high``, half-period ``period`` steps, random phase."""

    def n_params(self, spec: TargetSpec) -> int:
        return 1

    def sample(self, m: TargetModel, u: Tensor) -> Tensor:
        return torch.floor(u[:, :1] * 2 * m.spec.period)

    def levels(self, m: TargetModel, params: Tensor, steps: Tensor) -> Tensor:
        s = m.spec
        phase = params[:, :1].long()
        high = ((steps + phase) // s.period) % 2 == 0
        return self._expand(m, torch.where(high, s.high, s.low).to(m.dtype), params.shape[0])

    def describe(self, spec: TargetSpec, row: list[float]) -> str:
        return f"pulse train {spec.low:g}/{spec.high:g}, half-period {spec.period}, phase {int(row[0])}"

    def check_params(self, m: TargetModel, row: list[float]) -> str | None:
        p = m.spec.period
        if row[0] != int(row[0]) or not 0 <= row[0] < 2 * p:
            return f"phase {row[0]} must be an integer in [0, {2 * p}) (twice spec.target.period)"
        return None


TARGETS: dict[str, TargetKind] = {}
"""The registry, ``target.kind`` -> :class:`TargetKind`; add to it with :func:`register_target`."""


def register_target(kind: str, target: TargetKind, *, overwrite: bool = False) -> TargetKind:
    """Register ``target`` as ``target.kind = kind``."""
    if not isinstance(target, TargetKind):
        raise TypeError(f"register_target needs a TargetKind, got {type(target).__name__}")
    if kind in TARGETS and not overwrite and TARGETS[kind] is not target:
        raise ValueError(f"target kind {kind!r} is already registered (pass overwrite=True to replace it)")
    TARGETS[kind] = target
    return target


def available_targets() -> list[str]:
    """The registered target kinds."""
    return list(TARGETS)


def get_target(kind: str) -> TargetKind:
    """A registered target kind (the error names the field and the known kinds)."""
    if kind not in TARGETS:
        raise ValueError(f"spec.target.kind must be one of {', '.join(TARGETS)}, got {kind!r}")
    return TARGETS[kind]


def _boundary(k: int, c: CellIndex) -> Tensor:
    if not 0 <= k <= c.cols:
        raise ValueError(f"spec.target.choices: boundary column {k} outside 0..{c.cols}")
    return c.col < k


def _fate(k: int, c: CellIndex) -> Tensor:
    if not 0 <= k < c.n_cells:
        raise ValueError(f"spec.target.choices: receiver cell {k} outside 0..{c.n_cells - 1}")
    return c.idx == k


def _checkerboard(k: int, c: CellIndex) -> Tensor:
    if k not in (0, 1):
        raise ValueError(f"spec.target.choices: checkerboard parity must be 0 or 1, got {k}")
    return (c.row + c.col) % 2 == k


register_target("wnt_boundary", PatternTarget(_boundary, "target gene on in the first {k} columns"))
register_target("notch_fate", PatternTarget(_fate, "cell {k} is the Hes-high receiver"))
register_target("notch_checkerboard", PatternTarget(_checkerboard, "checkerboard, parity {k}"))
register_target("setpoint", SetpointTarget())
register_target("pulse_train", PulseTrainTarget())


class TargetModel:
    """Draws per-episode targets and evaluates target levels and success, all batched."""

    def __init__(
        self, spec: TargetSpec, layout: CellLayout, horizon: int, device=None, dtype=torch.float32
    ) -> None:
        self.spec, self.horizon = spec, horizon
        self.n_cells = layout.n_cells
        self.device, self.dtype = torch.device(device or "cpu"), dtype
        self.kind = get_target(spec.kind)
        self.is_pattern = self.kind.pattern
        const = self.kind.setup(spec, layout)
        self.patterns = const.to(self.device) if const is not None else None
        self.n_params = self.kind.n_params(spec)

    def sample(self, rng: CounterRNG, rows: Tensor) -> Tensor:
        """(len(rows), n_params) target parameters for new episodes of the given envs."""
        u = rng.uniform(STREAM_TARGET, max(self.n_params, 2), rows, dtype=self.dtype)
        return self.kind.sample(self, u)

    def levels(self, params: Tensor, t: Tensor, preview: int | None = None) -> Tensor:
        """(B, preview, N) normalised target phenotype for steps t, t+1, ... (clamped at the end)."""
        preview = preview or self.spec.preview
        steps = (t.reshape(-1, 1) + torch.arange(preview, device=t.device)).clamp_max(self.horizon)
        return self.kind.levels(self, params, steps)

    def in_tolerance(self, p: Tensor, p_star: Tensor) -> Tensor:
        """(B,) bool: every cell's phenotype ``p`` (B, N) meets the target ``p_star`` (B, N)."""
        return self.kind.in_tolerance(self, p, p_star)

    def check_option(self, value: Any) -> Tensor:
        """(n_params,) target parameters from ``reset(options={"target": value})``: an index into
        ``choices`` for pattern targets, else a full parameter row; refused with a message naming
        the option and the accepted values."""
        name = 'reset options["target"]'
        if self.is_pattern:
            n = len(self.spec.choices)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise TypeError(
                    f"{name} must be an int index into spec.target.choices {self.spec.choices} "
                    f"(0..{n - 1}), got {value!r}"
                )
            if not 0 <= value < n:
                raise ValueError(
                    f"{name} must be an index 0..{n - 1} into spec.target.choices "
                    f"{self.spec.choices}, got {value}"
                )
            return torch.tensor([float(value)], dtype=self.dtype, device=self.device)
        a = np.asarray(value) if not torch.is_tensor(value) else value.detach().cpu().numpy()
        if a.dtype.kind not in "fiu" or a.shape != (self.n_params,) or not np.isfinite(a).all():
            raise ValueError(
                f"{name} must be {self.n_params} finite numbers (a {self.spec.kind} parameter row, "
                f"as in env.unwrapped.core.target_params), got {value!r}"
            )
        why = self.kind.check_params(self, a.astype(float).tolist())
        if why:
            raise ValueError(f"{name}: {why}")
        return torch.as_tensor(a, dtype=self.dtype, device=self.device)

    def describe(self, params: Tensor) -> list[str]:
        """Human-readable target per env (for info and figures)."""
        return [self.kind.describe(self.spec, row) for row in params.tolist()]

    def classes(self, params: Tensor) -> list[str]:
        """Target class per env (:meth:`TargetKind.target_class`)."""
        return [self.kind.target_class(self.spec, row) for row in params.tolist()]
