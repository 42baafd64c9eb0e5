"""Posterior sampling with emcee's affine-invariant ensemble sampler, vectorised.

emcee (Foreman-Mackey et al. 2013) evaluates all walkers of a step together when
``vectorize=True``: with the batched simulator one step costs about one batched rollout, where
a single-chain sampler (pyPESTO's adaptive Metropolis, :mod:`.pypesto_bridge`) pays one rollout
per sample. The target is ``exp(-0.5 sum r^2)`` inside the prior box (flat prior) or times the
log-normal prior (``use_prior``).
"""

from __future__ import annotations

import numpy as np

from .problem import InverseProblem

__all__ = ["ensemble_samples"]


def ensemble_samples(
    problem: InverseProblem,
    x0: np.ndarray,
    n_steps: int = 200,
    n_walkers: int | None = None,
    use_prior: bool = True,
    seed: int = 0,
    burn: float = 0.5,
    init_scale: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """(n, p) posterior samples of log theta (the second ``1 - burn`` of every chain).

    Walkers start in a small Gaussian ball around ``x0`` (sd ``init_scale``, default 0.01).
    """
    try:
        import emcee
    except ImportError as e:  # pragma: no cover - only without the extra
        raise ImportError("MCMC uses emcee: pip install 'pbhno-gym[discovery]' (or emcee)") from e
    p = problem.p
    nw = n_walkers or max(2 * p + 2, 16)
    lb, ub = problem.prior.lower, problem.prior.upper

    def log_prob(X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        out = np.full(len(X), -np.inf)
        ok = ((X > lb) & (X < ub)).all(1)
        if ok.any():
            out[ok] = -problem.neg_log_lik(X[ok], use_prior)
        return out

    rng = np.random.default_rng(seed)
    scale = np.full(p, 0.01) if init_scale is None else np.asarray(init_scale)
    start = np.clip(x0 + scale * rng.standard_normal((nw, p)), lb + 1e-9, ub - 1e-9)
    sampler = emcee.EnsembleSampler(nw, p, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()  # noqa: NPY002 - emcee's RNG API
    sampler.run_mcmc(start, n_steps, progress=False)
    chain = sampler.get_chain()  # (steps, walkers, p)
    kept = chain[int(burn * n_steps) :].reshape(-1, p)
    info = dict(
        sampler="emcee",
        n_walkers=nw,
        n_steps=n_steps,
        acceptance=float(np.mean(sampler.acceptance_fraction)),
    )
    try:
        info["autocorr_time"] = sampler.get_autocorr_time(quiet=True).tolist()
    except Exception:  # noqa: BLE001 - emcee raises when chains are too short; report nothing
        pass
    return kept, info
