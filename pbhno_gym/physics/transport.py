"""Ligand transport: the linear part ``A = D lap - lambda`` of eq. (1), zero-flux outer boundary.

Space: the standard 5-point Laplacian on the cell-centred grid with mirror ghost cells, second
order, zero flux at the domain edge (eq. 2). The 1-D Neumann Laplacian is diagonalised by the
orthonormal DCT-II basis ``V`` (eigenvalues ``mu_k = -(4/h^2) sin^2(pi k / 2n)``) and the 2-D one
is their Kronecker sum, so any function of ``A`` acts elementwise in DCT space:

    f(hA) L = Vy [ f(h (D (mu_y + mu_x) - lambda)) * (Vy^T L Vx) ] Vx^T.

The transforms are dense matmuls with shared (n, n) matrices: batched, differentiable, fast on a
GPU, and per-environment D and lambda cost only a per-environment multiplier.

Time: the simulator uses an exponential integrator (ETD-RK2), which needs ``exp(hA)`` and the
phi-functions ``phi1(z) = (e^z - 1)/z``, ``phi2(z) = (e^z - 1 - z)/z^2`` of ``hA``. Exact
diffusion imposes no CFL limit, keeps ``exp(hA)`` entrywise non-negative (exponential of a
Metzler matrix) and carries total mass exactly (the k = 0 mode only decays as exp(-lambda h)).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .geometry import Grid

__all__ = ["dct_basis", "laplacian_1d", "laplacian", "phi_functions", "SpectralOperator"]


def dct_basis(n: int, h: float, dtype=torch.float64, device=None) -> tuple[Tensor, Tensor]:
    """Orthonormal eigenbasis ``V`` (n, n) and eigenvalues ``mu`` (n,) of the 1-D Neumann
    Laplacian on a cell-centred grid of spacing ``h`` (columns of V are eigenvectors)."""
    j = torch.arange(n, dtype=torch.float64)
    k = torch.arange(n, dtype=torch.float64)
    v = torch.cos(math.pi * (j[:, None] + 0.5) * k[None, :] / n)
    v[:, 0] *= math.sqrt(1.0 / n)
    v[:, 1:] *= math.sqrt(2.0 / n)
    mu = -(4.0 / h**2) * torch.sin(math.pi * k / (2 * n)) ** 2
    return v.to(dtype=dtype, device=device), mu.to(dtype=dtype, device=device)


def laplacian_1d(n: int, h: float, dtype=torch.float64) -> Tensor:
    """Dense 1-D Neumann Laplacian (n, n), second order, mirror ghost cells."""
    a = torch.zeros(n, n, dtype=dtype)
    idx = torch.arange(n)
    a[idx, idx] = -2.0
    a[idx[:-1], idx[:-1] + 1] = 1.0
    a[idx[1:], idx[1:] - 1] = 1.0
    a[0, 0] = a[-1, -1] = -1.0
    return a / h**2


def laplacian(field: Tensor, h: float) -> Tensor:
    """5-point Neumann Laplacian of ``field`` (..., H, W), mirror ghost cells (for residuals)."""
    f = torch.cat([field[..., :1, :], field, field[..., -1:, :]], dim=-2)
    f = torch.cat([f[..., :, :1], f, f[..., :, -1:]], dim=-1)
    c = f[..., 1:-1, 1:-1]
    return (f[..., :-2, 1:-1] + f[..., 2:, 1:-1] + f[..., 1:-1, :-2] + f[..., 1:-1, 2:] - 4 * c) / h**2


# Taylor coefficients 1/(k+1)! and 1/(k+2)!, k = 0..17: below |z| < 1 the truncation error is
# under 1/19! ~ 8e-18 relative, so the series is exact to float64 round-off there.
_PHI_ORDER = 18
_PHI1_COEF = tuple(1.0 / math.factorial(k + 1) for k in range(_PHI_ORDER))
_PHI2_COEF = tuple(1.0 / math.factorial(k + 2) for k in range(_PHI_ORDER))


def _horner(z: Tensor, coef: tuple[float, ...]) -> Tensor:
    out = torch.full_like(z, coef[-1])
    for c in reversed(coef[:-1]):
        out = out * z + c
    return out


def phi_functions(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(exp(z), phi1(z), phi2(z)) to float64 round-off for any z <= ~700.

    ``phi1 = expm1(z) / z`` is accurate everywhere except at z = 0; ``phi2 = (expm1(z) - z) / z^2``
    loses ~eps / |z| to cancellation, so below |z| < 1 both come from their Taylor series to
    order 17 (Horner; relative error ~1e-16). Gradients are finite at z = 0.
    """
    small = z.abs() < 1.0
    zs = torch.where(small, torch.ones_like(z), z)
    em1 = torch.expm1(zs)
    zz = torch.where(small, z, torch.zeros_like(z))
    phi1 = torch.where(small, _horner(zz, _PHI1_COEF), em1 / zs)
    phi2 = torch.where(small, _horner(zz, _PHI2_COEF), (em1 - zs) / zs**2)
    return torch.exp(z), phi1, phi2


class SpectralOperator:
    """DCT-space calculus for ``A = D lap - lambda`` on one grid, dtype and device."""

    def __init__(self, grid: Grid, dtype: torch.dtype = torch.float32, device=None) -> None:
        self.grid = grid
        self.dtype, self.device = dtype, device
        vy, muy = dct_basis(grid.ny, grid.h, torch.float64)
        vx, mux = dct_basis(grid.nx, grid.h, torch.float64)
        self.vy, self.vx = vy.to(dtype=dtype, device=device), vx.to(dtype=dtype, device=device)
        self.vy_t, self.vx_t = self.vy.T.contiguous(), self.vx.T.contiguous()
        self.lap_eig = (muy[:, None] + mux[None, :]).to(device=device)  # float64 (ny, nx)

    def forward(self, field: Tensor) -> Tensor:
        """Physical (B, H, W) -> DCT coefficients (B, H, W)."""
        return self.vy_t @ field @ self.vx

    def inverse(self, coef: Tensor) -> Tensor:
        """DCT coefficients -> physical field."""
        return self.vy @ coef @ self.vx_t

    def multipliers(
        self, diff: Tensor, lam: Tensor, h: float | Tensor, modes: tuple[int, int] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(exp(hA), h phi1(hA), h phi2(hA)) as DCT-space multipliers of shape (B or 1, H, W)
        (``modes = (my, mx)``: only the lowest my x mx modes, (B or 1, my, mx)).

        Args:
            diff: (B,) or (1,) diffusion coefficient D (um^2/min).
            lam: (B,) or (1,) decay rate (1/min).
            h: step (min), a float or a (B, 1, 1) tensor of per-row steps.
        Computed in float64 (the phi-functions cancel badly in float32), cast to ``dtype``;
        differentiable in D and lambda.
        """
        d = torch.as_tensor(diff).to(dtype=torch.float64, device=self.device).reshape(-1, 1, 1)
        lm = torch.as_tensor(lam).to(dtype=torch.float64, device=self.device).reshape(-1, 1, 1)
        eig = self.lap_eig if modes is None else self.lap_eig[: modes[0], : modes[1]]
        z = h * (d * eig - lm)
        e, p1, p2 = phi_functions(z)
        return e.to(self.dtype), (h * p1).to(self.dtype), (h * p2).to(self.dtype)

    def propagate(self, field: Tensor, diff: Tensor, lam: Tensor, h: float) -> Tensor:
        """exp(hA) field: the exact solution of dL/dt = A L after time h."""
        e, _, _ = self.multipliers(diff, lam, h)
        return self.inverse(e * self.forward(field))
