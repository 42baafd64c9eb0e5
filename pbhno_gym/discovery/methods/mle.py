"""True-model maximum likelihood and MAP: the statistical reference for every learned method.

Multistart bounded least squares (``scipy.optimize.least_squares``, trust-region reflective)
on the free log-parameters through the float64 simulator of the dataset's design, Jacobians
by forward-mode autograd (:class:`~pbhno_gym.discovery.problem.SimulatorProblem`). The K starts
(the prior mean, then prior draws) run in lockstep threads whose residual requests are answered
by one batched rollout (:mod:`~pbhno_gym.discovery.batching`).

Uncertainty: the Laplace covariance ``(J^T J)^-1`` at the optimum (inverse observed Fisher
information, with the prior precision for MAP) gives Wald intervals; optionally pyPESTO's
profile-likelihood intervals (``profile=True``) and posterior samples (``mcmc_steps=n``: emcee's
ensemble sampler, all walkers in one batched rollout per step, or pyPESTO's adaptive
Metropolis with ``mcmc_sampler="pypesto"``). The waterfall (sorted final objective of every
start) and the number of
starts that reached the best optimum are in ``meta``.

Datasets: a design's (``meta['design']``: :class:`SimulatorProblem`) or a user's measurement
table (:class:`SpecProblem`: the environment spec's simulator, measurements at arbitrary times and
replicates, the same table ``pbhno fit --measurements`` reads).

MLE: ``0.5 * sum ((h(theta) - y) / sigma)^2`` within the prior box (mean +- 3 sd). MAP adds the
Gaussian prior on log theta.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ...data.format import Dataset
from ..method import Method
from ..optimize import laplace_cov, multistart
from ..predictors import MechanisticPredictor
from ..prior import Prior
from ..problem import InverseProblem, SimulatorProblem, SpecProblem
from ..result import FitResult

__all__ = ["multistart", "fit_problem", "fit_mle", "fit_map", "fit_map_skeleton", "laplace_cov"]


def fit_problem(
    problem: InverseProblem,
    use_prior: bool,
    seed: int = 0,
    n_starts: int = 4,
    max_nfev: int = 50,
    profile: bool | Sequence[str] = False,
    mcmc_steps: int = 0,
    mcmc_sampler: str = "emcee",
    method: str = "mle",
) -> FitResult:
    """Multistart fit of any :class:`InverseProblem` with Laplace, profile and MCMC uncertainty."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    prior = problem.prior
    starts = np.concatenate([prior.mean[None], prior.sample(max(0, n_starts - 1), rng)], 0)[:n_starts]
    runs = multistart(problem, starts, use_prior, max_nfev)
    costs = np.array([r["cost"] for r in runs])
    best = int(np.argmin(costs))
    x = runs[best]["x"]
    if not np.isfinite(costs[best]):
        raise RuntimeError(f"{method}: every start failed ({runs[0]['message']})")
    cov = laplace_cov(problem, x, use_prior)
    meta = dict(
        objective="neg_log_posterior" if use_prior else "neg_log_likelihood",
        best_cost=float(costs[best]),
        waterfall=np.sort(costs).tolist(),
        n_starts=len(runs),
        n_at_best=int((costs - costs[best] < 0.5).sum()),
        nfev=[r["nfev"] for r in runs],
        status=[r["status"] for r in runs],
        starts_x=[np.asarray(r["x"]).tolist() for r in runs],
        at_bounds=[
            bool(v) for v in (np.isclose(x, prior.lower, atol=1e-6) | np.isclose(x, prior.upper, atol=1e-6))
        ],
        n_data=problem.n_data,
    )
    res = FitResult(method, problem.names, x, cov=cov, success=runs[best]["status"] > 0, meta=meta)
    if profile:
        from ..pypesto_bridge import profile_intervals

        idx = None if profile is True else [problem.names.index(n) for n in profile]
        pr = profile_intervals(problem, x, use_prior, indices=idx)
        res.ci_low, res.ci_high = pr["low"], pr["high"]
        if idx is not None:  # Wald intervals for parameters not profiled
            sd = res.sd
            for i in set(range(problem.p)) - set(idx):
                res.ci_low[i], res.ci_high[i] = x[i] - 1.96 * sd[i], x[i] + 1.96 * sd[i]
        meta["profile"] = {"bounded": pr["bounded"].tolist(), "profiles": pr["profiles"]}
    if mcmc_steps:
        if mcmc_sampler == "emcee":
            from ..sampling import ensemble_samples

            res.samples, info = ensemble_samples(
                problem,
                x,
                mcmc_steps,
                use_prior=use_prior,
                seed=seed,
                init_scale=0.1 * np.maximum(res.sd, 1e-3),
            )
        elif mcmc_sampler == "pypesto":
            from ..pypesto_bridge import mcmc_samples

            res.samples, info = mcmc_samples(problem, x, mcmc_steps, use_prior, seed)
        else:
            raise ValueError(f"mcmc_sampler must be 'emcee' or 'pypesto', got {mcmc_sampler!r}")
        meta["mcmc"] = info
    res.wall_s = time.perf_counter() - t0
    meta["n_sim_rows"] = getattr(problem, "n_sim_rows", None)
    return res


def _fit(
    dataset: Dataset,
    free: Sequence[str] | None,
    prior: Prior | None,
    use_prior: bool,
    seed: int,
    settings: dict | None,
    method: str,
    skeleton: bool = False,
) -> FitResult:
    s = dict(settings or {})
    jac_mode = s.pop("jac_mode", "autograd")
    s.pop("cache_dir", None)
    if "design" not in dataset.meta and "conditions" in dataset.meta:
        # a user's measurement table (surrogate.petab): the spec's simulator, central differences
        problem: InverseProblem = SpecProblem(dataset, free, prior)
    else:  # a design's dataset (env rollouts, with randomised unknown starts, are refused there)
        problem = SimulatorProblem(dataset, free, prior, jac_mode=jac_mode, skeleton=skeleton)
    res = fit_problem(problem, use_prior, seed=seed, method=method, **s)
    if "design" in dataset.meta:
        res.predictor = MechanisticPredictor(problem.names, res.log_theta, skeleton=skeleton)
        res.meta["model"] = problem.model.pathway.name  # which model the fit used, e.g. "mapk+erk_feedback"
    return res


def fit_mle(
    dataset: Dataset,
    free: Sequence[str] | None = None,
    prior: Prior | None = None,
    *,
    seed: int = 0,
    settings: dict | None = None,
) -> FitResult:
    """True-model maximum likelihood within the prior box (see the module docstring).

    ``dataset``: one made by a design (``meta['design']``) or read from a measurement table
    (:func:`pbhno_gym.surrogate.petab.read_measurements`: arbitrary times, replicates). ``free``
    and ``prior`` default to the design's (or every spec parameter) and the dataset's prior."""
    return _fit(dataset, free, prior, False, seed, settings, "mle")


def fit_map(
    dataset: Dataset,
    free: Sequence[str] | None = None,
    prior: Prior | None = None,
    *,
    seed: int = 0,
    settings: dict | None = None,
) -> FitResult:
    """True-model maximum a posteriori with the Gaussian prior on log theta."""
    return _fit(dataset, free, prior, True, seed, settings, "map")


def fit_map_skeleton(
    dataset: Dataset, free: Sequence[str], prior: Prior, *, seed: int = 0, settings: dict | None = None
) -> FitResult:
    """MAP of the design's skeleton: its hidden mechanisms left out (the misspecified model
    every other method is handed); equal to :func:`fit_map` on designs without model error."""
    return _fit(dataset, free, prior, True, seed, settings, "map_skeleton", skeleton=True)


# The registered settings use central differences in the batched simulator for the optimiser's
# Jacobians: on a CPU, torch's forward-mode AD pays ~0.3 ms per op that mixes dual and plain
# tensors, which made one Notch MLE 16x slower (748 s vs 47 s, identical optimum and Laplace
# covariance to 1e-10; tests/discovery/test_recovery.py compares both).
# ``settings={"jac_mode": "autograd"}`` selects exact forward-mode AD; the Fisher information /
# CRLB always use autograd.
_QUICK = {"n_starts": 3, "max_nfev": 20, "jac_mode": "fd"}
_FULL = {"n_starts": 8, "max_nfev": 60, "jac_mode": "fd"}

#: the methods this module adds to :mod:`pbhno_gym.discovery.registry`
METHODS = (
    Method(
        "mle",
        fit_mle,
        "true-model maximum likelihood (multistart least squares, Laplace intervals)",
        family="statistical",
        quick=_QUICK,
        full=_FULL,
        provides=("forecast", "field", "intervals"),
    ),
    Method(
        "map",
        fit_map,
        "true-model MAP with the log-normal prior (multistart least squares, Laplace intervals)",
        family="statistical",
        quick=_QUICK,
        full=_FULL,
        provides=("forecast", "field", "intervals"),
    ),
    Method(
        "map_skeleton",
        fit_map_skeleton,
        "MAP of the design's skeleton (hidden mechanisms left out: misspecified where the data have them)",
        family="statistical",
        quick=_QUICK,
        full=_FULL,
        provides=("forecast", "field", "intervals"),
        in_default=False,  # the same fit as map unless the design hides mechanisms: named only
    ),
)
