"""Confidence intervals for evaluation summaries: Wilson for success rates, bootstrap for means.

Both come from SciPy (``binomtest(...).proportion_ci(method="wilson")`` and ``stats.bootstrap``);
this module only fixes the conventions (95 %, percentile bootstrap with a seeded generator, so
a summary is a deterministic function of the per-episode values).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["wilson_interval", "bootstrap_mean_ci", "mean_with_ci"]


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion, within [0, 1] by construction."""
    if n <= 0:
        raise ValueError(f"wilson_interval: n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: successes must be in [0, {n}], got {successes}")
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence, method="wilson")
    return float(max(ci.low, 0.0)), float(min(ci.high, 1.0))


def bootstrap_mean_ci(
    values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean (a point interval for constant data or n = 1)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1 or np.ptp(v) == 0:
        return float(v.mean()), float(v.mean())
    res = stats.bootstrap(
        (v,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_with_ci(values: np.ndarray, **kw) -> dict[str, float]:
    """``{"mean", "lo", "hi"}`` of finite values (NaN if there are none)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    lo, hi = bootstrap_mean_ci(finite, **kw)
    return {"mean": float(finite.mean()) if finite.size else math.nan, "lo": lo, "hi": hi}
