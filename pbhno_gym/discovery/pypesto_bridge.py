"""pyPESTO for profile likelihoods and MCMC (the field's tool; an optional extra).

An :class:`~.problem.InverseProblem` becomes a pyPESTO least-squares problem (residuals and
their Jacobian, bounds = the prior box), on which pyPESTO computes profile likelihoods
(``parameter_profile``: re-optimising the other parameters along each one) and samples the
posterior (adaptive Metropolis). Install with ``pip install "pbhno-gym[discovery]"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .problem import InverseProblem

__all__ = ["require_pypesto", "to_pypesto", "profile_intervals", "mcmc_samples"]


def require_pypesto():
    try:
        import pypesto  # noqa: F401
        import pypesto.profile  # noqa: F401
        import pypesto.sample  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "profile likelihoods and MCMC use pyPESTO: pip install 'pbhno-gym[discovery]' (or pypesto)"
        ) from e
    import pypesto

    return pypesto


class _Cached:
    """Residuals (and, when asked, the Jacobian) cached per point: pyPESTO asks for them
    separately; the sampler needs values only, so Jacobians are computed on demand."""

    def __init__(self, problem: InverseProblem, use_prior: bool) -> None:
        self.problem, self.use_prior = problem, use_prior
        self.x: np.ndarray | None = None
        self.r = self.J = None
        self.n_evals = 0

    def _eval(self, x: np.ndarray, jac: bool) -> None:
        x = np.asarray(x, dtype=np.float64)
        same = self.x is not None and np.array_equal(x, self.x)
        if same and (self.J is not None or not jac):
            return
        r, J = self.problem.residuals(x[None], jac, self.use_prior)
        self.x, self.r, self.J = x.copy(), r[0], (None if J is None else J[0])
        self.n_evals += 1

    def res(self, x):
        self._eval(x, False)
        return self.r

    def sres(self, x):
        self._eval(x, True)
        return self.J

    def fun(self, x):
        self._eval(x, False)
        return 0.5 * float(self.r @ self.r)

    def grad(self, x):
        self._eval(x, True)
        return self.J.T @ self.r


def to_pypesto(problem: InverseProblem, use_prior: bool):
    """A ``pypesto.Problem`` whose objective is ``0.5 * sum r^2`` (negative log likelihood or,
    with ``use_prior``, posterior, up to a constant), bounded by the prior box."""
    pypesto = require_pypesto()
    c = _Cached(problem, use_prior)
    obj = pypesto.objective.Objective(
        fun=c.fun, grad=c.grad, res=c.res, sres=c.sres, x_names=list(problem.names)
    )
    pp = pypesto.Problem(obj, lb=problem.prior.lower, ub=problem.prior.upper, x_names=list(problem.names))
    return pp


def _result_at(pypesto, pproblem, x_hat: np.ndarray):
    """A pyPESTO Result holding one optimum (our multistart's best point)."""
    from pypesto.result import OptimizerResult, Result

    fval = float(pproblem.objective(x_hat))
    res = Result(pproblem)
    res.optimize_result.append(OptimizerResult(id="0", x=np.asarray(x_hat, float), fval=fval))
    return res


def profile_intervals(
    problem: InverseProblem,
    x_hat: np.ndarray,
    use_prior: bool = False,
    level: float = 0.95,
    indices: Sequence[int] | None = None,
    scales: np.ndarray | None = None,
) -> dict:
    """Profile-likelihood intervals of the free log-parameters (pyPESTO).

    Each parameter is profiled with steps adapted to its scale (``scales``, default the Laplace
    sd at ``x_hat``): 0.2 sd by default, between 0.02 and 1 sd.

    Returns ``{"low": (p,), "high": (p,), "bounded": (p, 2) bool (interval end hit the prior
    box: not practically identifiable on that side), "profiles": {name: (xs, 2*delta nll)}}``;
    parameters not in ``indices`` get NaN.
    """
    pypesto = require_pypesto()
    from pypesto.optimize import ScipyOptimizer
    from pypesto.profile import (
        ProfileOptions,
        calculate_approximate_ci,
        chi2_quantile_to_ratio,
        parameter_profile,
    )

    pp = to_pypesto(problem, use_prior)
    x_hat = np.asarray(x_hat, dtype=np.float64)
    if scales is None:
        _, J = problem.residuals(x_hat[None], True, use_prior)
        H = J[0].T @ J[0]
        scales = np.sqrt(np.clip(np.diag(np.linalg.pinv(H, hermitian=True)), 1e-8, None))
    scales = np.minimum(np.asarray(scales, dtype=np.float64), problem.prior.upper - problem.prior.lower)
    idx = list(range(problem.p)) if indices is None else list(indices)
    conf = float(chi2_quantile_to_ratio(level))
    p = problem.p
    low, high = np.full(p, np.nan), np.full(p, np.nan)
    bounded = np.zeros((p, 2), bool)
    profiles = {}
    for i in idx:
        sc = float(scales[i])
        opts = ProfileOptions(
            default_step_size_absolute=0.2 * sc,
            max_step_size_absolute=sc,
            min_step_size_absolute=0.02 * sc,
            default_step_size_relative=0.0,
            max_step_size_relative=0.0,
            min_step_size_relative=0.0,
            ratio_min=conf * 0.5,
            step_size_precheck_mode="off",
        )
        result = parameter_profile(
            pp,
            _result_at(pypesto, pp, x_hat),
            ScipyOptimizer(method="ls_trf", options={"max_nfev": 50}),
            profile_index=[i],
            profile_options=opts,
            progress_bar=False,
        )
        prof = result.profile_result.list[0][i]
        xs, ratios = prof.x_path[i], prof.ratio_path
        lo, hi = calculate_approximate_ci(xs, ratios, conf)
        low[i], high[i] = lo, hi
        bounded[i] = [lo <= problem.prior.lower[i] + 1e-6, hi >= problem.prior.upper[i] - 1e-6]
        fmin = float(np.min(prof.fval_path))
        profiles[problem.names[i]] = (
            np.asarray(xs).tolist(),
            (2 * (np.asarray(prof.fval_path) - fmin)).tolist(),
        )
    return {"low": low, "high": high, "bounded": bounded, "profiles": profiles}


def mcmc_samples(
    problem: InverseProblem, x0: np.ndarray, n_samples: int, use_prior: bool = True, seed: int = 0
) -> tuple[np.ndarray, dict]:
    """Posterior samples (n, p) of log theta by pyPESTO's adaptive Metropolis sampler, burn-in
    removed by the Geweke test; ``use_prior=False`` samples the likelihood within the prior box."""
    require_pypesto()
    from pypesto.sample import AdaptiveMetropolisSampler, geweke_test, sample

    pp = to_pypesto(problem, use_prior)
    state = np.random.get_state()  # noqa: NPY002 - pyPESTO's samplers use numpy's global RNG
    np.random.seed(seed)  # noqa: NPY002 - pyPESTO's samplers draw from numpy's global RNG
    try:
        res = sample(
            pp, n_samples, AdaptiveMetropolisSampler(options={"show_progress": False}), x0=np.asarray(x0)
        )
        burn = int(geweke_test(res))
    finally:
        np.random.set_state(state)  # noqa: NPY002
    trace = np.asarray(res.sample_result.trace_x[0])
    kept = trace[burn:] if burn < len(trace) - 10 else trace[len(trace) // 2 :]
    return kept, {"burn_in": burn, "n_total": int(len(trace))}
