"""PB-HNO: the physics-biology hybrid neural operator surrogate (FNO field block + neural ODE cells).

``fit(dataset, run_dir, ...)`` trains one (``pbhno fit``); ``load(path)`` reads a saved one back,
a ControlModel to plan through (``pbhno plan --model``).
"""

from __future__ import annotations

from pathlib import Path

from .fit import PBHNOFit, fit
from .model import PBHNO, PBHNOConfig
from .train import TrainConfig

__all__ = ["PBHNO", "PBHNOConfig", "PBHNOFit", "TrainConfig", "fit", "load"]


def load(path: str | Path, device=None) -> PBHNO:
    """The PB-HNO saved at ``path`` (``model.pt`` from ``fit``), rebuilt on ``device``."""
    return PBHNO.load(path, device=device)
