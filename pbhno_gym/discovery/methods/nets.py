"""Small batched networks for the physics-informed baselines.

:class:`BatchedMLP` holds G independent MLPs (one per trajectory and ensemble member) as stacked
weight tensors, so every model trains in the same batched matmuls. For scalar-time inputs it
propagates the time derivative alongside the value (exact forward-mode through tanh layers), so
an ODE residual needs no extra backward pass.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["BatchedMLP", "time_features"]


def time_features(tau: Tensor, n_features: int) -> tuple[Tensor, Tensor]:
    """SBINN's feature layer on normalised time tau (..., 1): [tau, sin(k pi tau)], k = 1..n, and
    its derivative with respect to tau."""
    if n_features == 0:
        return tau, torch.ones_like(tau)
    k = torch.arange(1, n_features + 1, dtype=tau.dtype, device=tau.device) * math.pi
    f = torch.cat([tau, torch.sin(k * tau)], -1)
    df = torch.cat([torch.ones_like(tau), k * torch.cos(k * tau)], -1)
    return f, df


class BatchedMLP(nn.Module):
    """G MLPs ``d_in -> width (x depth, tanh) -> d_out`` with Glorot-initialised stacked weights."""

    def __init__(
        self,
        n_models: int,
        d_in: int,
        d_out: int,
        width: int = 64,
        depth: int = 3,
        generator: torch.Generator | None = None,
        dtype=torch.float32,
    ) -> None:
        super().__init__()
        dims = [d_in] + [width] * depth + [d_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            lim = math.sqrt(6.0 / (a + b))
            w = (torch.rand(n_models, a, b, generator=generator, dtype=dtype) * 2 - 1) * lim
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n_models, 1, b, dtype=dtype)))

    def forward(self, x: Tensor) -> Tensor:
        """(G, M, d_in) -> (G, M, d_out)."""
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < n - 1:
                x = torch.tanh(x)
        return x

    def forward_dt(self, x: Tensor, dx: Tensor) -> tuple[Tensor, Tensor]:
        """Value and directional derivative: inputs (G, M, d_in) and their d/dtau (G, M, d_in)."""
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            dx = torch.bmm(dx, w)
            if i < n - 1:
                x = torch.tanh(x)
                dx = (1 - x * x) * dx
        return x, dx
