"""The observation model: what a lab sees of the tissue, batched.

Partial mode measures *channels*: selected species in every cell (reporters), and optionally the
ligand at a few pixels (e.g. spaced along the tissue edges). Each channel is measured at a step
with probability ``sample_prob`` (all channels at reset); a measurement is

    y = v (1 + multiplicative_noise * e1) + additive_noise * e2,   e1, e2 ~ N(0, 1)

in normalised units (phenotype species by the target's phenotype range, other species by their
resting level, ligand by ``ligand_scale``). Between measurements the last value is held. The
observation vector is ``[y (C), fresh (C), age (C), target preview (preview * N), time, dose left (n_u)]``
with ``fresh`` 1 where the value was measured this step and ``age`` the steps since the last
measurement, divided by ``max_age`` and capped at 1.

Full mode (``obs_mode="full"``, for debugging and oracles) returns every species of every cell
and the whole field, noise-free, then the same goal, time and budget features.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..physics.simulator import SimState, Simulator
from ..utils.rng import CounterRNG
from .spec import EnvSpec

__all__ = ["ObservationModel"]

STREAM_OBS = 21


def edge_pixels(ny: int, nx: int, n: int) -> Tensor:
    """``n`` flat pixel indices spaced evenly along the grid's outer edge (clockwise)."""
    ring = (
        [(0, c) for c in range(nx)]
        + [(r, nx - 1) for r in range(1, ny)]
        + [(ny - 1, c) for c in range(nx - 2, -1, -1)]
        + [(r, 0) for r in range(ny - 2, 0, -1)]
    )
    pick = np.linspace(0, len(ring), n, endpoint=False).astype(int)
    return torch.tensor([ring[i][0] * nx + ring[i][1] for i in pick], dtype=torch.long)


class ObservationModel:
    """Builds observations from batched simulator states."""

    def __init__(self, spec: EnvSpec, sim: Simulator, n_preview_cells: int, device, dtype) -> None:
        o, t = spec.observation, spec.target
        self.spec, self.sim, self.device, self.dtype = spec, sim, device, dtype
        pw = sim.pathway
        self.full = o.mode == "full"
        species = o.species or pw.phenotype
        for s in species:
            if s not in pw.species:
                raise ValueError(
                    f"spec.observation.species: {s!r} is not a species of {pw.name} ({', '.join(pw.species)})"
                )
        self.species_idx = torch.tensor([pw.species_index[s] for s in species], device=device)
        self.pheno_idx = pw.phenotype_index()[0]
        # normalisation: phenotype by the target range, other species by the resting level
        rest = pw.initial_state(pw.params.unpack(sim.log_theta()), 1)[0, 0].to(dtype)
        lo = torch.zeros(len(pw.species), dtype=dtype)
        sc = rest.abs().clamp_min(1e-3).clone()
        lo[self.pheno_idx], sc[self.pheno_idx] = t.phenotype_low, t.phenotype_high - t.phenotype_low
        self.species_low, self.species_scale = lo.to(device), sc.to(device)
        self.ligand_idx = None
        if o.ligand_pixels == "edges" and o.n_ligand_samples > 0:
            if sim.grid is None:
                raise ValueError("spec.observation.ligand_pixels: this pathway has no ligand field")
            self.ligand_idx = edge_pixels(sim.grid.ny, sim.grid.nx, o.n_ligand_samples).to(device)
        N = sim.n_cells
        self.n_cells = N
        self.n_channels = N * len(species) + (0 if self.ligand_idx is None else len(self.ligand_idx))
        self.preview = t.preview
        n_goal = t.preview * n_preview_cells
        if self.full:
            hw = 0 if sim.grid is None else sim.grid.ny * sim.grid.nx
            core = N * len(pw.species) + hw
        else:
            core = 3 * self.n_channels
        self.dim = core + n_goal + 1 + sim.n_controls
        self.layout = self._layout(core, n_goal, sim.n_controls)
        # normalised values are O(1); the bound only guarantees containment in the Box
        self.value_bound = 1e6 if self.full else 1e3

    def _layout(self, core: int, n_goal: int, n_u: int) -> dict[str, slice]:
        if self.full:
            N, S = self.n_cells, len(self.sim.pathway.species)
            parts = {"state": N * S, "field": core - N * S}
        else:
            parts = {"values": self.n_channels, "fresh": self.n_channels, "age": self.n_channels}
        parts.update(target=n_goal, time=1, dose_left=n_u)
        out, i = {}, 0
        for k, n in parts.items():
            out[k] = slice(i, i + n)
            i += n
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box bounds per dimension: values within +-VALUE_BOUND (clipped there), masks, ages,
        time and budget in [0, 1]."""
        low = np.full(self.dim, -self.value_bound, dtype=np.float32)
        high = np.full(self.dim, self.value_bound, dtype=np.float32)
        for k in ("fresh", "age", "time", "dose_left"):
            if k in self.layout:
                low[self.layout[k]], high[self.layout[k]] = 0.0, 1.0
        return low, high

    def normalise_species(self, x: Tensor) -> Tensor:
        return (x - self.species_low) / self.species_scale

    def phenotype(self, x: Tensor) -> Tensor:
        """(B, N) normalised phenotype."""
        return (x[..., self.pheno_idx] - self.species_low[self.pheno_idx]) / self.species_scale[
            self.pheno_idx
        ]

    def true_channels(self, state: SimState) -> Tensor:
        """(B, C) noise-free normalised value of every channel."""
        v = self.normalise_species(state.x)[..., self.species_idx].reshape(state.batch_size, -1)
        if self.ligand_idx is not None:
            lig = (
                state.L.reshape(state.batch_size, -1)[:, self.ligand_idx] / self.spec.observation.ligand_scale
            )
            v = torch.cat([v, lig], 1)
        return v

    def draw(self, rng: CounterRNG) -> tuple[Tensor, Tensor]:
        """This round's random numbers at the streams' current counters: (B, 2C) normals for the
        noise and (B, C) uniforms for which channels are sampled."""
        C = self.n_channels
        z = rng.normal(STREAM_OBS, 2 * C, dtype=self.dtype)
        return z, rng.uniform(STREAM_OBS + 1, C, dtype=self.dtype)

    def measure(
        self, state: SimState, draws: tuple[Tensor, Tensor], held: Tensor, age: Tensor, all_fresh: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """New (held values, fresh mask, age) after a measurement round.

        Args:
            draws: this round's random numbers, :meth:`draw` (drawn by the caller, outside any
                compiled region).
            all_fresh: (B,) bool, envs whose every channel is measured now (just reset).
        """
        o = self.spec.observation
        C = self.n_channels
        v = self.true_channels(state)
        z, u = draws
        y = v * (1 + o.multiplicative_noise * z[:, :C]) + o.additive_noise * z[:, C:]
        fresh = (u < o.sample_prob) | all_fresh[:, None]
        held = torch.where(fresh, y, held)
        age = torch.where(fresh, torch.zeros_like(age), age + 1)
        return held, fresh, age

    def build(
        self,
        state: SimState,
        held: Tensor,
        fresh: Tensor,
        age: Tensor,
        goal: Tensor,
        t: Tensor,
        horizon: int,
        dose_left: Tensor,
    ) -> Tensor:
        """(B, dim) observation vector (float32)."""
        B = state.batch_size
        if self.full:
            parts = [self.normalise_species(state.x).reshape(B, -1)]
            if state.L is not None:
                parts.append(state.L.reshape(B, -1) / self.spec.observation.ligand_scale)
        else:
            max_age = self.spec.observation.max_age
            parts = [held, fresh.to(self.dtype), (age.to(self.dtype) / max_age).clamp_max(1.0)]
        parts = [p.clamp(-self.value_bound, self.value_bound) for p in parts]
        parts += [goal.reshape(B, -1), (t.to(self.dtype) / horizon)[:, None], dose_left]
        return torch.cat([p.to(torch.float32) for p in parts], 1)
