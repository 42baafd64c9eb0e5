"""The prior and bounds of the free parameters of an inverse problem, in log space.

Every discovery method (true-model MLE/MAP, SBINN, PINN, plain FNO, PB-HNO) receives the same
:class:`Prior`: names of the free parameters, Gaussian prior on ``log theta`` (mean, sd) and a box
``[mean - width * sd, mean + width * sd]`` used as optimisation bounds (MLE, SBINN squashing) and
to draw multistart points. Parameters not named stay fixed at ``fixed`` (natural units in the
dataset's pathway order) - by default the dataset's prior mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Prior"]


@dataclass(frozen=True)
class Prior:
    """Log-normal prior of the free parameters: ``log theta_j ~ N(mean_j, sd_j^2)``.

    Attributes:
        names: free parameter names (a subset of the pathway's, in any order).
        mean: (p,) prior mean of log theta.
        sd: (p,) prior sd of log theta.
        width: half-width of the bounds box in prior sds.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray
    width: float = 3.0
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        sd = np.asarray(self.sd, dtype=np.float64).reshape(-1)
        names = tuple(self.names)
        if len(set(names)) != len(names):
            raise ValueError(f"Prior.names has duplicates: {names}")
        if mean.shape != (len(names),) or sd.shape != (len(names),):
            raise ValueError(
                f"Prior.mean and Prior.sd must have one entry per name ({len(names)}), "
                f"got {mean.shape} and {sd.shape}"
            )
        for n, m, s in zip(names, mean, sd, strict=True):
            if not math.isfinite(m):
                raise ValueError(f"Prior.mean of {n!r} is not finite")
            if not (s > 0 and math.isfinite(s)):
                raise ValueError(f"Prior.sd of {n!r} must be > 0, got {s}")
        if not self.width > 0:
            raise ValueError(f"Prior.width must be > 0, got {self.width}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "sd", sd)

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def lower(self) -> np.ndarray:
        return self.mean - self.width * self.sd

    @property
    def upper(self) -> np.ndarray:
        return self.mean + self.width * self.sd

    @classmethod
    def from_meta(cls, meta: dict, free: Sequence[str], width: float = 3.0) -> Prior:
        """The prior a dataset records (``meta['prior_mean']``, ``meta['prior_sigma']``) for ``free``."""
        names = list(meta["param_names"])
        unknown = [n for n in free if n not in names]
        if unknown:
            raise ValueError(f"free parameter(s) {unknown} not in the dataset's parameters {names}")
        idx = [names.index(n) for n in free]
        mean = np.asarray(meta["prior_mean"], dtype=np.float64)[idx]
        sd = np.asarray(meta["prior_sigma"], dtype=np.float64)[idx]
        return cls(tuple(free), mean, sd, width)

    def sample(self, n: int, rng: np.random.Generator, truncate: bool = True) -> np.ndarray:
        """(n, p) draws of log theta (clipped into the bounds when ``truncate``)."""
        z = rng.standard_normal((n, self.size))
        out = self.mean + z * self.sd
        return np.clip(out, self.lower, self.upper) if truncate else out

    def log_density(self, log_theta: np.ndarray) -> np.ndarray:
        """Gaussian log density of log theta (up to a constant), summed over parameters."""
        return -0.5 * (((np.asarray(log_theta) - self.mean) / self.sd) ** 2).sum(-1)

    def to_dict(self) -> dict:
        return dict(names=list(self.names), mean=self.mean.tolist(), sd=self.sd.tolist(), width=self.width)

    @classmethod
    def from_dict(cls, d: dict) -> Prior:
        return cls(tuple(d["names"]), np.asarray(d["mean"]), np.asarray(d["sd"]), float(d.get("width", 3.0)))
