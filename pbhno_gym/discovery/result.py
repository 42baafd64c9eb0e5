"""The one result type every discovery method returns: :class:`FitResult`.

A fit reports estimates of the free log-parameters with uncertainty in whichever form the
method has - a covariance (Laplace / Fisher), posterior or ensemble samples, and/or interval
bounds (profile likelihood) - plus per-method metadata. ``FitResult.intervals`` gives 95%
intervals from the best available source (explicit bounds > samples > covariance). A method
may attach a ``predictor`` (not serialised) that forecasts measurements under new controls and,
for field pathways, reconstructs the ligand field; see :class:`Predictor`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from ..physics.params import Parameters

__all__ = ["FitResult", "Predictor", "Z95"]

Z95 = 1.959963984540054


class Predictor(Protocol):
    """What a fitted model can predict (all arrays numpy, normalised measurement units).

    ``forecast(dataset)`` -> (E, T+1, C) noise-free measurement channels of ``dataset``'s
    episodes under their controls (``actions``), as the method believes them.
    ``field(dataset)`` -> (E, T+1, H, W) ligand field estimate, or None if the method has none.
    """

    def forecast(self, dataset: Any) -> np.ndarray: ...

    def field(self, dataset: Any) -> np.ndarray | None: ...


@dataclass
class FitResult:
    """Estimate and uncertainty of the free log-parameters from one method on one dataset.

    Attributes:
        method: registry name of the method.
        names: free parameter names, the order of every array below.
        log_theta: (p,) point estimate of log theta.
        cov: (p, p) covariance of the log-estimate (Laplace/Fisher/ensemble), or None.
        samples: (n, p) posterior / ensemble samples of log theta, or None.
        ci_low, ci_high: (p,) explicit interval bounds (e.g. profile likelihood), or None.
        level: coverage level of ``ci_low/ci_high`` and of :meth:`intervals`.
        success: whether the method's own convergence criterion was met.
        wall_s: wall-clock seconds of the fit.
        meta: per-method details (starts, losses, epochs, ...): JSON-serialisable.
        predictor: optional :class:`Predictor` (not serialised).
    """

    method: str
    names: tuple[str, ...]
    log_theta: np.ndarray
    cov: np.ndarray | None = None
    samples: np.ndarray | None = None
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    level: float = 0.95
    success: bool = True
    wall_s: float = 0.0
    meta: dict = field(default_factory=dict)
    predictor: Any = field(default=None, repr=False, compare=False)

    def parameters(self, base: Parameters) -> Parameters:
        """``base`` (the full parameter set, e.g. a dataset's ``prior``) with the free entries set
        to this estimate and marked free: the fit as the object models and agents take."""
        missing = [n for n in self.names if n not in base.names]
        if missing:
            raise ValueError(f"FitResult.parameters: {missing} are not in the base parameters {base.names}")
        lv = base.log_values.detach().clone().to(torch.float64)
        idx = [base.names.index(n) for n in self.names]
        lv[idx] = torch.as_tensor(self.log_theta, dtype=torch.float64)
        free = torch.zeros(len(base), dtype=torch.bool)
        free[idx] = True
        return Parameters(
            base.names, lv, base.prior_mean.to(torch.float64), base.prior_sd.to(torch.float64), free
        )

    def __post_init__(self) -> None:
        self.names = tuple(self.names)
        p = len(self.names)
        self.log_theta = np.asarray(self.log_theta, dtype=np.float64).reshape(-1)
        if self.log_theta.shape != (p,):
            raise ValueError(
                f"FitResult.log_theta must have {p} entries (one per name), got {self.log_theta.shape}"
            )
        if not np.isfinite(self.log_theta).all():
            bad = [n for n, v in zip(self.names, self.log_theta, strict=True) if not math.isfinite(v)]
            raise ValueError(f"FitResult.log_theta is not finite for {bad}")
        if self.cov is not None:
            self.cov = np.asarray(self.cov, dtype=np.float64)
            if self.cov.shape != (p, p):
                raise ValueError(f"FitResult.cov must be ({p}, {p}), got {self.cov.shape}")
        if self.samples is not None:
            self.samples = np.asarray(self.samples, dtype=np.float64)
            if self.samples.ndim != 2 or self.samples.shape[1] != p:
                raise ValueError(f"FitResult.samples must be (n, {p}), got {self.samples.shape}")
        for k in ("ci_low", "ci_high"):
            v = getattr(self, k)
            if v is not None:
                v = np.asarray(v, dtype=np.float64).reshape(-1)
                if v.shape != (p,):
                    raise ValueError(f"FitResult.{k} must have {p} entries, got {v.shape}")
                setattr(self, k, v)
        if not 0 < self.level < 1:
            raise ValueError(f"FitResult.level must be in (0, 1), got {self.level}")

    @property
    def theta(self) -> np.ndarray:
        """(p,) natural-scale estimate."""
        return np.exp(self.log_theta)

    @property
    def sd(self) -> np.ndarray | None:
        """(p,) standard deviation of the log-estimate (from cov, else samples), or None."""
        if self.cov is not None:
            return np.sqrt(np.clip(np.diag(self.cov), 0, None))
        if self.samples is not None and len(self.samples) > 1:
            return self.samples.std(0, ddof=1)
        return None

    def intervals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(low, high) log-scale intervals at ``level``: explicit bounds, else sample quantiles,
        else Wald intervals from ``cov``; None when the method gives no uncertainty."""
        if self.ci_low is not None and self.ci_high is not None:
            return self.ci_low, self.ci_high
        a = (1 - self.level) / 2
        if self.samples is not None and len(self.samples) >= 20:
            return np.quantile(self.samples, a, 0), np.quantile(self.samples, 1 - a, 0)
        if self.cov is not None:
            from scipy.stats import norm

            z = float(norm.ppf(1 - a))
            s = self.sd
            return self.log_theta - z * s, self.log_theta + z * s
        return None

    def to_dict(self, with_samples: bool = False) -> dict:
        """JSON-serialisable record (samples summarised unless ``with_samples``)."""
        iv = self.intervals()

        def arr(a):
            return None if a is None else np.asarray(a).tolist()

        d = dict(
            method=self.method,
            names=list(self.names),
            log_theta=self.log_theta.tolist(),
            cov=arr(self.cov),
            ci_low=arr(self.ci_low),
            ci_high=arr(self.ci_high),
            intervals=None if iv is None else [arr(iv[0]), arr(iv[1])],
            level=self.level,
            success=bool(self.success),
            wall_s=float(self.wall_s),
            n_samples=0 if self.samples is None else int(len(self.samples)),
            meta=self.meta,
        )
        if with_samples:
            d["samples"] = arr(self.samples)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FitResult:
        def arr(k):
            v = d.get(k)
            return None if v is None else np.asarray(v, dtype=np.float64)

        return cls(
            d["method"],
            tuple(d["names"]),
            arr("log_theta"),
            cov=arr("cov"),
            samples=arr("samples"),
            ci_low=arr("ci_low"),
            ci_high=arr("ci_high"),
            level=float(d.get("level", 0.95)),
            success=bool(d.get("success", True)),
            wall_s=float(d.get("wall_s", 0.0)),
            meta=dict(d.get("meta", {})),
        )
