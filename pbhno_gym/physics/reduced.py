"""A planning model whose cost does not grow with the grid: the ligand field in its lowest
cosine modes (Galerkin projection of the coupled system).

The field of eq. (1) is carried as the coefficients ``c`` (B, my, mx) of the lowest ``my x mx``
eigenmodes of the Neumann Laplacian (the DCT-II basis the full simulator already integrates in,
:mod:`.transport`), ``L ~ Phi c``. Diffusion and decay stay exact (the modes are eigenvectors),
and every grid operator the cells touch is projected once, at construction:

* membrane averages ``ell = A_geom Phi c``: (N, m);
* emission and ligand pulses ``Phi^T (M^T em + S^T amp) = em (M Phi) + amp (S Phi)``: (N, m), (K, m);
* the membrane sink ``Phi^T diag(sum_i up_i M_i) Phi c``, evaluated on the P membrane pixels
  only (``Phi_P``: (P, m), ``M_P``: (N, P)).

A sub-step is the full simulator's ETD-RK2 / Patankar-RK2 scheme on these coefficients, so
with every mode kept (``modes = (ny, nx)``) it is the full simulator to round-off (test), and
its cost per step is O(P m) (P membrane pixels) instead of O(H W (H + W)) for the transforms,
and its autograd graph holds m, not H W, numbers per field. The truncation
error is measured, not assumed: ``scripts/bench_reduced_field.py`` (phenotype error against
the full simulator over env episodes) and the closed-loop MPC success it gives.

Observation channels that sample the field at pixels decode ``Phi c`` there
(:meth:`ReducedFieldSimulator.decode`); a full-grid state (an oracle's) is projected by
:meth:`ReducedFieldSimulator.encode` (the L2-optimal coefficients, since Phi is orthonormal).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .simulator import SimState, Simulator, patankar_corrector, patankar_predictor
from .transport import dct_basis

__all__ = ["ReducedFieldSimulator", "parse_modes"]


def parse_modes(modes: int | tuple[int, int] | list[int], ny: int, nx: int) -> tuple[int, int]:
    """``(my, mx)`` from an int (square) or a pair, checked against the grid ``(ny, nx)``."""
    my, mx = (modes, modes) if isinstance(modes, int) else tuple(modes)
    if not (isinstance(my, int) and isinstance(mx, int) and 1 <= my <= ny and 1 <= mx <= nx):
        raise ValueError(f"field_modes must be in [1, {ny}] x [1, {nx}] (the grid), got {modes!r}")
    return my, mx


class ReducedFieldSimulator(Simulator):
    """``sim``'s coupled system with the field in its lowest ``modes`` cosine modes.

    Args:
        sim: the full simulator (pathway, layout, dt, sub-steps, dtype and device are taken
            from it; a world simulator's hidden mechanisms come along with its pathway).
        modes: ``m`` (m x m modes) or ``(my, mx)``.
    ``SimState.L`` holds the coefficients (B, my, mx); everything else is as in :class:`Simulator`.
    """

    def __init__(self, sim: Simulator, modes: int | tuple[int, int]) -> None:
        if sim.grid is None:
            raise ValueError(f"pathway {sim.pathway.name!r} has no ligand field to reduce")
        # "auto" skips the fixed-sub-step check, which ``sim`` passed already (at rest the field
        # is zero in either representation, so the rates it checks are the same)
        super().__init__(
            sim.pathway, sim.layout, sim.dt, "auto", sim.cfl, sim.max_stiffness, sim.dtype, sim.device
        )
        self.substeps = sim.substeps
        g = self.grid
        self.modes = parse_modes(modes, g.ny, g.nx)
        my, mx = self.modes
        sp = self.spectral
        self.vy_m, self.vx_m = sp.vy[:, :my].contiguous(), sp.vx[:, :mx].contiguous()
        self.vy_mt, self.vx_mt = self.vy_m.T.contiguous(), self.vx_m.T.contiguous()
        dt, dev = self.dtype, self.device
        # Basis Phi (HW, m) in float64 for the projections, which are exact sums of products.
        vy64, vx64 = dct_basis(g.ny, g.h)[0][:, :my], dct_basis(g.nx, g.h)[0][:, :mx]
        phi = torch.einsum("ya,xb->yxab", vy64, vx64).reshape(g.ny * g.nx, my * mx)
        A64 = self.A.double().cpu()
        M64 = self.M.double().cpu()
        S64 = self.S.double().cpu()
        self.A_r = (A64 @ phi).to(dtype=dt, device=dev)  # (N, m) membrane averages
        self.M_r = (M64 @ phi).to(dtype=dt, device=dev)  # (N, m) emission onto the membranes
        self.S_r = (S64 @ phi).to(dtype=dt, device=dev)  # (K, m) ligand pulses
        # the membrane sink acts pixelwise on the membranes only: keep Phi on those pixels
        pix = (M64 != 0).any(0).nonzero().squeeze(1)
        self.phi_mem = phi[pix].to(dtype=dt, device=dev)  # (P, m)
        self.phi_mem_t = self.phi_mem.T.contiguous()
        self.M_mem = M64[:, pix].to(dtype=dt, device=dev)  # (N, P)

    # ------------------------------------------------------------------ field <-> coefficients
    def encode(self, L: Tensor) -> Tensor:
        """Full-grid fields (B, H, W) -> their coefficients (B, my, mx)."""
        return self.vy_mt @ L @ self.vx_m

    def decode(self, c: Tensor) -> Tensor:
        """Coefficients (B, my, mx) -> the field they represent (B, H, W)."""
        return self.vy_m @ c @ self.vx_mt

    def encode_state(self, z: SimState) -> SimState:
        """A full simulator's state (field on the grid) in this model's coordinates."""
        if z.L is None or tuple(z.L.shape[1:]) != self.grid.shape:
            got = None if z.L is None else tuple(z.L.shape[1:])
            raise ValueError(f"encode_state needs a field on the {self.grid.shape} grid, got {got}")
        return SimState(z.x, self.encode(z.L.to(self.dtype)), z.t)

    def decode_state(self, z: SimState) -> SimState:
        """This model's state with its field on the full grid (for observation channels)."""
        return SimState(z.x, self.decode(z.L), z.t)

    # ------------------------------------------------------------------ dynamics
    def initial_state(self, log_theta: Tensor | None = None, batch_size: int | None = None) -> SimState:
        z = super().initial_state(log_theta, batch_size)
        return SimState(z.x, z.L.new_zeros(z.batch_size, *self.modes), z.t)

    def membrane_average(self, Lf: Tensor | None) -> Tensor | None:
        """ell = A_geom Phi c (B, N), clamped at zero as in the full model."""
        return None if Lf is None else (Lf @ self.A_r.T).clamp_min(0)

    def external_source(self, lig: Tensor | None, th: dict[str, Tensor], batch: int) -> Tensor:
        """(B, m) coefficients of the ligand delivered per minute."""
        return self.source_amplitudes(lig, th, batch) @ self.S_r

    def _field_rhs(self, c: Tensor, x: Tensor, th, inh, src: Tensor) -> Tensor:
        """(B, m) Galerkin projection of ``gain - sink * L`` at coefficients ``c`` (B, m): the
        sink on the P membrane pixels, ``Phi_P^T ((up M_P) * (Phi_P c))``, O(B P m)."""
        up, em = self.pathway.membrane_terms(x, th, inh)
        sink = ((up @ self.M_mem) * (c @ self.phi_mem_t)) @ self.phi_mem
        gain = src if em is None else em @ self.M_r + src
        return gain - sink

    def step(
        self,
        state: SimState,
        u: Tensor,
        log_theta: Tensor | None = None,
        noise: torch.Generator | None = None,
        budget: bool = False,
        duration: Tensor | None = None,
    ) -> SimState:
        """One control interval on the reduced field (no intrinsic noise, mass budget or partial
        durations: this is a planning model)."""
        if noise is not None or budget or duration is not None:
            raise ValueError("ReducedFieldSimulator.step: noise, budget and duration are not supported")
        th, lt = self._theta(log_theta)
        lig, inh = self.split_controls(u)
        B = state.batch_size
        K = self.n_substeps(state, u, lt)
        h = self.dt / K
        diff, lam = self.pathway.field_coefficients(th)
        e, hp1, hp2 = (
            m.reshape(m.shape[0], -1)
            for m in self.spectral.multipliers(diff.reshape(-1), lam.reshape(-1), h, self.modes)
        )
        src = self.external_source(lig, th, B)
        x, c = state.x, state.L.reshape(B, -1)
        for _ in range(K):
            ell0 = self.membrane_average(c)
            p0, d0 = self.pathway.kinetics(x, ell0, th, inh)
            n0 = self._field_rhs(c, x, th, inh, src)
            x1 = patankar_predictor(x, p0, d0, h)
            a = e * c + hp1 * n0
            p1, d1 = self.pathway.kinetics(x1, self.membrane_average(a), th, inh)
            c = a + hp2 * (self._field_rhs(a, x1, th, inh, src) - n0)
            x = patankar_corrector(x, x1, p0, d0, p1, d1, h)
        return SimState(x, c.reshape(B, *self.modes), state.t + self.dt)

    def to(self, dtype: torch.dtype | None = None, device=None) -> ReducedFieldSimulator:
        return ReducedFieldSimulator(Simulator.to(self, dtype, device), self.modes)
