"""RGB frames: the ligand field with cell outlines coloured by their reporter (the biologist's view).

Field envs: the ligand concentration (magma colour map, normalised by ``ligand_scale``) upsampled
to about 384 px; each cell's membrane drawn in the colour of its normalised phenotype (viridis:
dark = off, yellow = on) and its interior tinted by its target (light = on, dark = off). MAPK:
bars of X, Y, Z (active fractions) with the target line for Z.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps

__all__ = ["render_rgb"]

_MAGMA = (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
_VIRIDIS = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def _lut(lut: np.ndarray, v: np.ndarray) -> np.ndarray:
    return lut[np.clip((v * 255).astype(int), 0, 255)]


def render_rgb(core, row: int = 0, size: int = 384) -> np.ndarray:
    """(H, W, 3) uint8 frame of env ``row``."""
    p = core.phenotype()[row].detach().cpu().numpy()
    goal = core.goal()[row, 0].detach().cpu().numpy()
    if core.state.L is None:
        return _bars(core.state.x[row, 0].detach().cpu().numpy(), goal[0], size)
    L = core.state.L[row].detach().cpu().numpy() / core.spec.observation.ligand_scale
    img = _lut(_MAGMA, np.clip(L, 0, 1))
    lay = core.sim.layout
    memb, inner = lay.membranes.numpy(), lay.interiors.numpy()
    tgt_on = goal > 0.5 * (core.spec.target.on_level + core.spec.target.off_level)
    for i in range(lay.n_cells):
        img[inner[i]] = (0.6 * img[inner[i]] + 0.4 * (220 if tgt_on[i] else 40)).astype(np.uint8)
        img[memb[i]] = _lut(_VIRIDIS, np.array([np.clip(p[i], 0, 1)]))[0]
    k = max(1, size // max(img.shape[:2]))
    img = np.repeat(np.repeat(img, k, 0), k, 1)
    return np.ascontiguousarray(img[::-1])  # y up


def _bars(x: np.ndarray, target: float, size: int) -> np.ndarray:
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    w = size // (2 * len(x) + 1)
    colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]
    for i, v in enumerate(np.clip(x, 0, 1)):
        h = int(v * (size - 20))
        c0 = (2 * i + 1) * w
        img[size - 10 - h : size - 10, c0 : c0 + w] = colors[i % 3]
    ty = size - 10 - int(np.clip(target, 0, 1) * (size - 20))
    img[max(ty - 1, 0) : ty + 2, :] = (200, 0, 0)
    return img


def frames_to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames))
