"""A compact Fourier neural operator (Li et al., ICLR 2021) for fields with zero-flux boundaries.

Hand-written rather than taken from the ``neuraloperator`` package (which brings wandb and test
tools as runtime dependencies and was no faster on CPU). Zero-flux (Neumann) boundaries are
handled honestly: every spectral layer mirrors its input about the domain edges (even extension to
2H x 2W), so the FFT acts as a cosine transform and the layer's output has zero normal derivative
at the walls; nothing pretends the tissue is periodic.

Modes: ``modes`` Fourier modes are kept *per sign* along y (``2 * modes`` of the 2H rows) and
``modes`` non-negative frequencies along the rfft axis x. On a 64-point grid the even extension
has 128 points per axis, so ``modes = 32`` keeps a quarter of each axis' extended spectrum; every
cosine mode k <= 32 of the 64-point grid is representable.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SpectralConv2d", "FNO2d", "even_extension"]


def even_extension(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W) mirrored about the right and top edges."""
    x = torch.cat([x, x.flip(-1)], dim=-1)
    return torch.cat([x, x.flip(-2)], dim=-2)


class SpectralConv2d(nn.Module):
    """Fourier layer: FFT, multiply the lowest modes by learned complex weights, inverse FFT.

    Args:
        in_channels, out_channels: channel counts.
        modes: kept modes per sign along y and along the rfft axis x.
        even: mirror-extend the input first (zero-flux boundary), else treat it as periodic.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int, even: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.modes, self.even = in_channels, out_channels, modes, even
        scale = 1.0 / (in_channels * out_channels)
        self.w_pos = nn.Parameter(scale * torch.randn(in_channels, out_channels, modes, modes, 2))
        self.w_neg = nn.Parameter(scale * torch.randn(in_channels, out_channels, modes, modes, 2))

    def forward(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        xe = even_extension(x) if self.even else x
        He, We = xe.shape[-2:]
        xf = torch.fft.rfft2(xe, norm="ortho")
        my, mx = min(self.modes, He // 2), min(self.modes, We // 2 + 1)
        out = torch.zeros(B, self.out_channels, He, We // 2 + 1, dtype=xf.dtype, device=x.device)
        wp = torch.view_as_complex(self.w_pos[:, :, :my, :mx].contiguous())
        wn = torch.view_as_complex(self.w_neg[:, :, :my, :mx].contiguous())
        out[:, :, :my, :mx] = torch.einsum("bixy,ioxy->boxy", xf[:, :, :my, :mx], wp)
        out[:, :, -my:, :mx] = torch.einsum("bixy,ioxy->boxy", xf[:, :, -my:, :mx], wn)
        y = torch.fft.irfft2(out, s=(He, We), norm="ortho")
        return y[..., :H, :W] if self.even else y


class FNO2d(nn.Module):
    """Lift (1x1 conv), ``n_layers`` x [spectral conv + 1x1 conv, GELU], project (1x1 convs).

    Args:
        in_channels: input channels (coordinates are appended internally).
        out_channels: output channels.
        width: hidden channels.
        modes: spectral modes per sign (see module docstring).
        n_layers: spectral layers (Table II: 4).
        zero_init: start the last projection at zero, so a residual FNO begins as the identity.
    """

    def __init__(self, in_channels: int, out_channels: int = 1, width: int = 32, modes: int = 32,
                 n_layers: int = 4, even: bool = True, zero_init: bool = True) -> None:
        super().__init__()
        self.lift = nn.Conv2d(in_channels + 2, width, 1)
        self.spectral = nn.ModuleList([SpectralConv2d(width, width, modes, even) for _ in range(n_layers)])
        self.pointwise = nn.ModuleList([nn.Conv2d(width, width, 1) for _ in range(n_layers)])
        self.proj1 = nn.Conv2d(width, 4 * width, 1)
        self.proj2 = nn.Conv2d(4 * width, out_channels, 1)
        if zero_init:
            nn.init.zeros_(self.proj2.weight)
            nn.init.zeros_(self.proj2.bias)
        self._grid: dict = {}

    def _coords(self, x: Tensor) -> Tensor:
        B, _, H, W = x.shape
        key = (H, W, x.device, x.dtype)
        if key not in self._grid:
            gy = torch.linspace(0, 1, H, device=x.device, dtype=x.dtype)
            gx = torch.linspace(0, 1, W, device=x.device, dtype=x.dtype)
            self._grid[key] = torch.stack(torch.meshgrid(gy, gx, indexing="ij"))[None]
        return self._grid[key].expand(B, -1, -1, -1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.lift(torch.cat([x, self._coords(x)], 1))
        for k, (sc, pw) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            h = sc(h) + pw(h)
            if k < len(self.spectral) - 1:
                h = nn.functional.gelu(h)
        return self.proj2(nn.functional.gelu(self.proj1(h)))
