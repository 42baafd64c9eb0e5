"""PB-HNO's field blocks when the ligand field is carried in its lowest cosine modes
(``PBHNOConfig.field_modes``): the learned operators of eq. (6) and the PDE correction of eq. (4)
acting on the coefficients ``c`` (B, my, mx) of :class:`~pbhno_gym.physics.reduced.ReducedFieldSimulator`.

Why: on the grid, every planned step of PB-HNO costs two 2-D cosine transforms and an FNO over
all H x W points, so planning through it on Wnt was slower than through the simulator. In the
modal form its cost is O(P m) per step (P membrane pixels, m = my mx modes), like the reduced
simulator's, and with every mode kept and the networks at their initial (identity) values it is
the grid PB-HNO to round-off (tests/surrogate/test_modal.py).

The grid blocks learn 3 x 3 stencils; a symmetric stencil with zero-flux walls is (nearly)
diagonal in the cosine basis, so here each operator learns one factor per mode:

* :class:`ModalAveraging`: ``ell = A_geom Phi ((1 + w_A) c)``;
* :class:`ModalBoundary`: ``b = em (M Phi) - (1 + w_B) Phi_P^T ((up M_P) (Phi_P c))`` (the
  membrane sink evaluated on the P membrane pixels only);
* :class:`ModalCorrection`: an MLP from the flattened modal inputs to a correction of the
  next coefficients (zero at initialisation), the reduced counterpart of the FNO.

Both regularisers are in the grid's units (Parseval: the basis is orthonormal, so a sum of
squared coefficients is a sum of squared pixels).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..physics.reduced import ReducedFieldSimulator

__all__ = ["ModalAveraging", "ModalBoundary", "ModalCorrection"]


class ModalAveraging(nn.Module):
    """ell (B, N) = A_r ((1 + w) c), clamped at zero; ``w`` (my, mx) learnable when ``learn``."""

    def __init__(self, red: ReducedFieldSimulator, learn: bool = True) -> None:
        super().__init__()
        self.register_buffer("a_r", red.A_r.clone())  # (N, m) = A_geom Phi
        self.weight = nn.Parameter(torch.zeros(red.modes, dtype=red.dtype), requires_grad=learn)

    def forward(self, c: Tensor) -> Tensor:
        return ((c * (1 + self.weight)).flatten(1) @ self.a_r.T).clamp_min(0)

    def regularizer(self) -> Tensor:
        """||A - A_geom||_F^2 = sum_k w_k^2 ||A_r[:, k]||^2 (exact)."""
        return (self.weight.flatten() ** 2 * (self.a_r**2).sum(0)).sum()


class ModalBoundary(nn.Module):
    """Membrane flux coefficients (B, my, mx) from per-cell emission and uptake coefficients."""

    def __init__(self, red: ReducedFieldSimulator, learn: bool = True) -> None:
        super().__init__()
        self.modes = red.modes
        self.register_buffer("m_r", red.M_r.clone())  # (N, m) emission onto the membranes
        self.register_buffer("phi_mem", red.phi_mem.clone())  # (P, m) the basis on membrane pixels
        self.register_buffer("m_mem", red.M_mem.clone())  # (N, P)
        self.weight = nn.Parameter(torch.zeros(red.modes, dtype=red.dtype), requires_grad=learn)

    def physical(self, c: Tensor, emission: Tensor, uptake: Tensor) -> tuple[Tensor, Tensor]:
        """(source, sink) coefficients of Phi_phys: painted emission and the projected uptake * L."""
        B = c.shape[0]
        src = (emission @ self.m_r).reshape(B, *self.modes)
        sink = ((uptake @ self.m_mem) * (c.flatten(1) @ self.phi_mem.T)) @ self.phi_mem
        return src, sink.reshape(B, *self.modes)

    def forward(self, c: Tensor, emission: Tensor, uptake: Tensor) -> tuple[Tensor, Tensor]:
        """Learned flux and the physical flux it is regularised towards."""
        src, sink = self.physical(c, emission, uptake)
        return src - (1 + self.weight) * sink, src - sink

    def regularizer(self, learned: Tensor, physical: Tensor) -> Tensor:
        """Squared difference summed over the modes (= over the grid's pixels, Parseval), mean
        over the batch: PB-HNO divides it by its coefficient scale ``ls^2 H W``, which makes it
        the grid operator's mean per pixel over ``ls^2``."""
        return ((learned - physical) ** 2).sum((-2, -1)).mean()


class ModalCorrection(nn.Module):
    """(B, C, my, mx) -> (B, 1, my, mx): an MLP over all modes of the C input fields.

    Args:
        in_channels: input fields (as the FNO's: L, the ETD step, the flux and the source).
        modes: (my, mx).
        hidden: MLP width.
        n_layers: hidden layers.
        zero_init: start the output layer at zero, so the correction starts at zero.
    """

    def __init__(
        self, in_channels: int, modes: tuple[int, int], hidden: int, n_layers: int, zero_init: bool = True
    ) -> None:
        super().__init__()
        self.modes = tuple(modes)
        m = self.modes[0] * self.modes[1]
        layers: list[nn.Module] = []
        d = in_channels * m
        for _ in range(n_layers):
            layers += [nn.Linear(d, hidden), nn.GELU()]
            d = hidden
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(d, m)
        if zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.net(x.flatten(1))).reshape(x.shape[0], 1, *self.modes)
