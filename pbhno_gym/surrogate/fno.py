"""A compact Fourier neural operator (Li et al., ICLR 2021) for fields with zero-flux boundaries.

Hand-written rather than taken from the ``neuraloperator`` package (which brings wandb and test
tools as runtime dependencies and was no faster on CPU). Zero-flux (Neumann) boundaries are built
in, not approximated: each spectral layer works in the cosine (DCT-II) basis of the grid, the
eigenbasis of the Neumann Laplacian (``pbhno_gym.physics.transport.dct_basis``), with real
channel-mixing weights on the lowest ``modes x modes`` cosine modes. Its output is a combination of
Neumann eigenmodes, so it has exactly zero normal flux at the walls and commutes with mirroring
the domain. (An FFT layer on an even extension does not guarantee this: complex weights make
the kernel asymmetric.) The transforms are dense matmuls with shared matrices, fast on a GPU.

Modes: ``modes`` cosine modes per dimension, all non-negative frequencies (a cosine mode k is the
pair of Fourier modes +-k). On a 64-point grid ``modes = 32`` keeps half of each axis' spectrum;
``modes = 64`` keeps every mode.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..physics.transport import dct_basis

__all__ = ["CosineSpectralConv2d", "FNO2d"]


class CosineSpectralConv2d(nn.Module):
    """Spectral layer in the DCT-II basis: transform, mix channels per mode, transform back.

    Args:
        in_channels, out_channels: channel counts.
        modes: cosine modes kept per dimension (clipped to the grid size).
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.modes = in_channels, out_channels, modes
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.randn(in_channels, out_channels, modes, modes))
        self._basis: dict = {}

    def _bases(self, H: int, W: int, like: Tensor) -> tuple[Tensor, Tensor]:
        key = (H, W, like.device, like.dtype)
        if key not in self._basis:
            vy, _ = dct_basis(H, 1.0, dtype=like.dtype, device=like.device)
            vx, _ = dct_basis(W, 1.0, dtype=like.dtype, device=like.device)
            self._basis[key] = (
                vy[:, : min(self.modes, H)].contiguous(),
                vx[:, : min(self.modes, W)].contiguous(),
            )
        return self._basis[key]

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        vy, vx = self._bases(H, W, x)
        my, mx = vy.shape[1], vx.shape[1]
        coef = vy.T @ x @ vx  # (B, Ci, my, mx): the lowest cosine modes
        mixed = torch.einsum("bixy,ioxy->boxy", coef, self.weight[:, :, :my, :mx])
        return vy @ mixed @ vx.T


class FNO2d(nn.Module):
    """Lift (1x1 conv), ``n_layers`` x [cosine spectral conv + 1x1 conv, GELU], project (1x1 convs).

    Args:
        in_channels: input channels (normalised coordinates are appended internally).
        out_channels: output channels.
        width: hidden channels.
        modes: cosine modes per dimension (Table II: 32).
        n_layers: spectral layers (Table II: 4).
        zero_init: start the last projection at zero, so a residual FNO begins as the identity.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        width: int = 32,
        modes: int = 32,
        n_layers: int = 4,
        zero_init: bool = True,
    ) -> None:
        super().__init__()
        self.lift = nn.Conv2d(in_channels + 2, width, 1)
        self.spectral = nn.ModuleList([CosineSpectralConv2d(width, width, modes) for _ in range(n_layers)])
        self.pointwise = nn.ModuleList([nn.Conv2d(width, width, 1) for _ in range(n_layers)])
        self.proj1 = nn.Conv2d(width, 4 * width, 1)
        self.proj2 = nn.Conv2d(4 * width, out_channels, 1)
        if zero_init:
            nn.init.zeros_(self.proj2.weight)
            nn.init.zeros_(self.proj2.bias)
        self._grid: dict = {}

    def _coords(self, x: Tensor) -> Tensor:
        """Cosine positional channels cos(pi y), cos(pi x): mirror-symmetric like the layers."""
        B, _, H, W = x.shape
        key = (H, W, x.device, x.dtype)
        if key not in self._grid:
            gy = torch.cos(torch.pi * (torch.arange(H, device=x.device, dtype=x.dtype) + 0.5) / H)
            gx = torch.cos(torch.pi * (torch.arange(W, device=x.device, dtype=x.dtype) + 0.5) / W)
            self._grid[key] = torch.stack(torch.meshgrid(gy, gx, indexing="ij"))[None]
        return self._grid[key].expand(B, -1, -1, -1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.lift(torch.cat([x, self._coords(x)], 1))
        for k, (sc, pw) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            h = sc(h) + pw(h)
            if k < len(self.spectral) - 1:
                h = nn.functional.gelu(h)
        return self.proj2(nn.functional.gelu(self.proj1(h)))
