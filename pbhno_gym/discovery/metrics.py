"""Parameter-recovery metrics, shared by every experiment.

Per fit (free parameters j, true ``log theta_j``, estimate ``log theta_hat_j``):

* absolute log error ``|log theta_hat_j - log theta_j|`` (MAE is its mean over parameters: a
  scale-free error, ~ the relative error for small values);
* absolute percentage error ``APE_j = 100 |theta_hat_j / theta_j - 1|`` (MAPE its mean);
* coverage: whether the 95% interval of the method contains the truth.

Over seeds: MAE/MAPE mean and std across seeds (the paper's "mean (std)"), Var = the variance
across seeds of the log errors averaged over parameters, the median APE, the coverage rate,
and percentile-bootstrap 95% intervals of the means (resampling seeds).
"""

from __future__ import annotations

import numpy as np

from .result import FitResult

__all__ = ["fit_errors", "aggregate", "bootstrap_ci"]


def fit_errors(result: FitResult, true_log_theta: np.ndarray) -> dict:
    """Errors of one fit against the truth (per parameter lists, plus means)."""
    lt = np.asarray(true_log_theta, dtype=np.float64)
    err = result.log_theta - lt
    ape = 100 * np.abs(np.expm1(err))
    out = dict(
        err=err.tolist(),
        abs_err=np.abs(err).tolist(),
        ape=ape.tolist(),
        mae=float(np.abs(err).mean()),
        mape=float(ape.mean()),
    )
    iv = result.intervals()
    if iv is not None and np.all(np.isfinite(iv[0])) and np.all(np.isfinite(iv[1])):
        cov = (iv[0] <= lt) & (lt <= iv[1])
        out["covered"] = cov.tolist()
        out["coverage"] = float(cov.mean())
        out["interval_width"] = float(np.mean(iv[1] - iv[0]))
    return out


def bootstrap_ci(
    x: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``x`` (resampling its entries)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def aggregate(records: list[dict]) -> dict:
    """Summary over seeds of :func:`fit_errors` records (one per seed)."""
    if not records:
        return {"n": 0}
    mae = np.array([r["mae"] for r in records])
    mape = np.array([r["mape"] for r in records])
    err = np.array([r["err"] for r in records])  # (n, p)
    ape = np.array([r["ape"] for r in records])
    out = dict(
        n=len(records),
        mae=float(mae.mean()),
        mae_std=float(mae.std(ddof=1)) if len(mae) > 1 else 0.0,
        mae_ci=bootstrap_ci(mae),
        mape=float(mape.mean()),
        mape_std=float(mape.std(ddof=1)) if len(mape) > 1 else 0.0,
        mape_ci=bootstrap_ci(mape),
        var=float(err.var(0, ddof=1).mean()) if len(err) > 1 else 0.0,
        median_ape=float(np.median(ape)),
        per_param_mae=np.abs(err).mean(0).tolist(),
        per_param_bias=err.mean(0).tolist(),
    )
    cov = [r["covered"] for r in records if "covered" in r]
    if cov:
        c = np.array(cov, dtype=float)
        out["coverage"] = float(c.mean())
        out["coverage_n"] = int(c.size)
    return out
