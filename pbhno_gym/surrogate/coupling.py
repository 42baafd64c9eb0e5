"""Learned coupling operators between the ligand field and the cells (paper eq. 6).

* :class:`AveragingOperator` ``A_i``: ell_i = mean over Gamma_i of (k_A * L), a learned 3x3 stencil
  applied to the field and read on the membrane mask; at ``k_A = delta`` it is exactly ``A_geom``.
* :class:`BoundaryOperator` ``B_i``: the membrane flux field b = emission_i 1_Gamma_i - k_B * (uptake_i
  1_Gamma_i L): the physical flux ``Phi_phys`` (mass-action binding, shedding) passed through a
  learned stencil; at ``k_B = delta`` it is exactly ``Phi_phys``.

Both stencils use replicate padding (zero flux at the walls) and expose ``regularizer`` =
``||A - A_geom||^2`` and ``||B - Phi_phys||^2`` (eq. 6), which the training loss weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["AveragingOperator", "BoundaryOperator"]


def _delta_kernel() -> Tensor:
    k = torch.zeros(3, 3)
    k[1, 1] = 1.0
    return k


def _stencil(field: Tensor, kernel: Tensor) -> Tensor:
    """Apply a 3x3 stencil to (B, H, W) with replicate (zero-flux) padding."""
    x = nn.functional.pad(field[:, None], (1, 1, 1, 1), mode="replicate")
    return nn.functional.conv2d(x, kernel.to(field.dtype)[None, None])[:, 0]


class AveragingOperator(nn.Module):
    """ell (B, N) = A_geom applied to (k_A * L); learnable when ``learn`` is true."""

    def __init__(self, a_geom: Tensor, shape: tuple[int, int], learn: bool = True) -> None:
        super().__init__()
        self.register_buffer("a_geom", a_geom)  # (N, HW), rows sum to 1
        self.shape = shape
        self.kernel = nn.Parameter(_delta_kernel(), requires_grad=learn)

    def forward(self, L: Tensor) -> Tensor:
        return (_stencil(L, self.kernel).reshape(L.shape[0], -1) @ self.a_geom.T).clamp_min(0)

    def regularizer(self) -> Tensor:
        """||A - A_geom||_F^2: the operator difference on every membrane row (exact, cheap)."""
        rows = self.a_geom.reshape(-1, *self.shape)
        diff = _stencil(rows, self.kernel.flip(0, 1)) - rows  # adjoint stencil applied to the rows
        return (diff**2).sum()


class BoundaryOperator(nn.Module):
    """Membrane flux field (B, H, W) from per-cell emission and uptake coefficients."""

    def __init__(self, membrane: Tensor, shape: tuple[int, int], learn: bool = True) -> None:
        super().__init__()
        self.register_buffer("membrane", membrane)  # (N, HW) indicator
        self.shape = shape
        self.kernel = nn.Parameter(_delta_kernel(), requires_grad=learn)

    def physical(self, L: Tensor, emission: Tensor, uptake: Tensor) -> tuple[Tensor, Tensor]:
        """(source, sink flux) fields of Phi_phys: painted emission and uptake * L."""
        src = (emission @ self.membrane).reshape(-1, *self.shape)
        sink = (uptake @ self.membrane).reshape(-1, *self.shape) * L
        return src, sink

    def forward(self, L: Tensor, emission: Tensor, uptake: Tensor) -> tuple[Tensor, Tensor]:
        """Learned flux b and the physical flux it is regularised towards."""
        src, sink = self.physical(L, emission, uptake)
        return src - _stencil(sink, self.kernel), src - sink

    def regularizer(self, learned: Tensor, physical: Tensor) -> Tensor:
        return ((learned - physical) ** 2).mean()
