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
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..physics.geometry import CellLayout
from ..utils.rng import CounterRNG
from .spec import TargetSpec

__all__ = ["TargetModel"]

STREAM_TARGET = 11


def _patterns(spec: TargetSpec, layout: CellLayout) -> Tensor:
    """(P, N) bool "on" masks, one per choice."""
    n = layout.n_cells
    rows, cols = layout.shape
    idx = torch.arange(n)
    r, c = idx // cols, idx % cols
    out = []
    for k in spec.choices:
        if spec.kind == "wnt_boundary":
            if not 0 <= k <= cols:
                raise ValueError(f"spec.target.choices: boundary column {k} outside 0..{cols}")
            out.append(c < k)
        elif spec.kind == "notch_fate":
            if not 0 <= k < n:
                raise ValueError(f"spec.target.choices: receiver cell {k} outside 0..{n - 1}")
            out.append(idx == k)
        elif spec.kind == "notch_checkerboard":
            if k not in (0, 1):
                raise ValueError(f"spec.target.choices: checkerboard parity must be 0 or 1, got {k}")
            out.append((r + c) % 2 == k)
    return torch.stack(out)


class TargetModel:
    """Draws per-episode targets and evaluates target levels and success, all batched."""

    def __init__(
        self, spec: TargetSpec, layout: CellLayout, horizon: int, device=None, dtype=torch.float32
    ) -> None:
        self.spec, self.horizon = spec, horizon
        self.n_cells = layout.n_cells
        self.device, self.dtype = torch.device(device or "cpu"), dtype
        self.is_pattern = spec.kind in ("wnt_boundary", "notch_fate", "notch_checkerboard")
        if self.is_pattern:
            self.patterns = _patterns(spec, layout).to(self.device)
        elif spec.kind in ("setpoint", "pulse_train"):
            if not spec.high >= spec.low:
                raise ValueError("spec.target.high must be >= spec.target.low")
        self.n_params = 1 if self.is_pattern or spec.kind == "pulse_train" else 2 * spec.switches + 1

    def sample(self, rng: CounterRNG, rows: Tensor) -> Tensor:
        """(len(rows), n_params) target parameters for new episodes of the given envs."""
        s = self.spec
        u = rng.uniform(STREAM_TARGET, max(self.n_params, 2), rows, dtype=self.dtype)
        if self.is_pattern:
            return torch.floor(u[:, :1] * len(s.choices)).clamp_max(len(s.choices) - 1)
        if s.kind == "pulse_train":
            return torch.floor(u[:, :1] * 2 * s.period)
        k = s.switches
        times = torch.sort(1 + torch.floor(u[:, :k] * max(self.horizon - 1, 1)), dim=1).values
        levels = s.low + (s.high - s.low) * u[:, k : 2 * k + 1] if k else s.low + (s.high - s.low) * u[:, :1]
        return torch.cat([times, levels], 1)

    def levels(self, params: Tensor, t: Tensor, preview: int | None = None) -> Tensor:
        """(B, preview, N) normalised target phenotype for steps t, t+1, ... (clamped at the end)."""
        s = self.spec
        preview = preview or s.preview
        steps = (t.reshape(-1, 1) + torch.arange(preview, device=t.device)).clamp_max(self.horizon)
        B = params.shape[0]
        if self.is_pattern:
            on = self.patterns[params[:, 0].long()]  # (B, N)
            lv = torch.where(on, s.on_level, s.off_level).to(self.dtype)
            return lv[:, None, :].expand(B, preview, self.n_cells)
        if s.kind == "pulse_train":
            phase = params[:, :1].long()
            high = ((steps + phase) // s.period) % 2 == 0
            lv = torch.where(high, s.high, s.low).to(self.dtype)
        else:
            k = s.switches
            times, vals = params[:, :k], params[:, k:]
            seg = (steps[:, :, None] >= times[:, None, :]).sum(-1) if k else torch.zeros_like(steps)
            lv = torch.gather(vals, 1, seg).to(self.dtype)
        return lv[:, :, None].expand(B, preview, self.n_cells)

    def in_tolerance(self, p: Tensor, p_star: Tensor) -> Tensor:
        """(B,) bool: every cell's phenotype ``p`` (B, N) meets the target ``p_star`` (B, N)."""
        s = self.spec
        if self.is_pattern:
            on = p_star > 0.5 * (s.on_level + s.off_level)
            ok = torch.where(on, p >= s.on_threshold, p <= s.off_threshold)
        else:
            ok = (p - p_star).abs() <= s.tolerance
        return ok.all(1)

    def describe(self, params: Tensor) -> list[str]:
        """Human-readable target per env (for info and figures)."""
        s = self.spec
        out = []
        for row in params.tolist():
            if s.kind == "wnt_boundary":
                out.append(f"target gene on in the first {s.choices[int(row[0])]} columns")
            elif s.kind == "notch_fate":
                out.append(f"cell {s.choices[int(row[0])]} is the Hes-high receiver")
            elif s.kind == "notch_checkerboard":
                out.append(f"checkerboard, parity {s.choices[int(row[0])]}")
            elif s.kind == "pulse_train":
                out.append(f"pulse train {s.low:g}/{s.high:g}, half-period {s.period}, phase {int(row[0])}")
            else:
                k = s.switches
                out.append(
                    "set-point "
                    + ", ".join(f"{v:.2f}" for v in row[k:])
                    + " switching at steps "
                    + ", ".join(str(int(x)) for x in row[:k])
                )
        return out
