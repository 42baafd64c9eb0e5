"""Multistart bounded least squares on any :class:`~.problem.InverseProblem`.

SciPy's trust-region reflective ``least_squares`` from K starts inside the prior box, the K
optimisers running in lockstep threads whose residual requests are answered by one batched
call (:mod:`.batching`); and the Gauss-Newton Laplace covariance at an optimum. Used by the
true-model MLE/MAP baselines and by PB-HNO's mechanistic calibration of theta.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from .batching import LockstepBatcher, run_lockstep
from .problem import InverseProblem

__all__ = ["multistart", "laplace_cov"]


def multistart(
    problem: InverseProblem,
    starts: np.ndarray,
    use_prior: bool,
    max_nfev: int = 50,
    tol: float = 1e-8,
) -> list[dict]:
    """Run ``least_squares`` from every row of ``starts`` (K, p) in lockstep; one dict per start
    (x, cost, nfev, status, message) - ``cost`` is 0.5 * sum r^2 (inf if the start failed)."""
    lb, ub = problem.prior.lower, problem.prior.upper
    starts = np.clip(np.atleast_2d(starts), lb, ub)

    def batched(X):
        return problem.residuals(X, True, use_prior)

    batcher = LockstepBatcher(batched, len(starts))

    def job(i: int):
        return least_squares(
            batcher.fun(i),
            starts[i],
            jac=batcher.jac(i),
            bounds=(lb, ub),
            method="trf",
            x_scale="jac",
            max_nfev=max_nfev,
            ftol=tol,
            xtol=tol,
            gtol=tol,
        )

    out = []
    for i, r in enumerate(run_lockstep(batcher, [job] * len(starts))):
        if isinstance(r, BaseException):
            out.append(dict(x=starts[i], cost=np.inf, nfev=0, status=-99, message=f"failed: {r}"))
        else:
            out.append(
                dict(x=r.x, cost=float(r.cost), nfev=int(r.nfev), status=int(r.status), message=r.message)
            )
    return out


def laplace_cov(problem: InverseProblem, x: np.ndarray, use_prior: bool) -> np.ndarray:
    """(p, p) inverse Gauss-Newton Hessian of the objective at ``x`` (pseudo-inverse if singular)."""
    _, J = problem.residuals(x[None], True, use_prior)
    H = J[0].T @ J[0]
    return np.linalg.pinv(H, rcond=1e-12, hermitian=True)
