"""Surrogate benchmarks: parameter recovery, counterfactual forecasts, rollout speed.

* ``recovery``: the Notch two-cell design of the paper's Table I as we state it: the Hes reporter
  of both cells observed at ~12 irregular time points per 12 h episode (each 30-min step sampled
  with probability 0.5), 20% multiplicative + 0.02 additive Gaussian noise, random ligand/GSI
  pulse schedules, five free parameters (``FREE_NOTCH``) with the log-normal prior (sd 0.5) around
  nominal; per seed the tissue's true theta is a prior draw. Reports MAPE, median APE, mean
  log-error, variance, 95%-interval coverage with bootstrap confidence intervals over seeds.
* ``counterfactual``: train on random pulse schedules, forecast 20 steps under unseen schedules
  (steps and ramps), initial state estimated from the first 3 steps' measurements only; relative
  L2 error of the phenotype, and of the whole ligand field (never observed) for field pathways.
* ``speed``: wall time of a 20-step rollout, surrogate vs the reference simulator.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from ..control.model import SimulatorModel
from ..data import collect_episodes
from ..data.format import Dataset
from ..surrogate.discovery import combine_members, laplace_summary, theta_report
from ..surrogate.losses import LossWeights, rollout_predictions
from ..surrogate.model import PBHNO, PBHNOConfig
from ..surrogate.train import TrainConfig, Trainer

FREE_NOTCH = ["k_on", "alpha_N", "K_H", "alpha_H", "delta_H"]
NOTCH_DESIGN = {
    "horizon": 24,
    "observation": {"sample_prob": 0.5, "multiplicative_noise": 0.2, "additive_noise": 0.02},
}


def bootstrap_ci(x: np.ndarray, stat=np.mean, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    reps = [stat(rng.choice(x, len(x))) for _ in range(n)]
    return float(np.percentile(reps, 2.5)), float(np.percentile(reps, 97.5))


def recovery_seed(
    seed: int,
    n_episodes: int,
    epochs: int,
    model_kw: dict,
    run_dir,
    weights: LossWeights | None = None,
    free: list[str] = FREE_NOTCH,
) -> dict:
    """One seed of the Table-I design: draw the truth, collect, fit, report."""
    probe = SimulatorModel("pbhno/Notch-v0")
    g = torch.Generator().manual_seed(10_000 + seed)
    idx = [probe.param_names.index(n) for n in free]
    lt = probe.prior_mean.clone()
    lt[idx] = lt[idx] + probe.prior_sigma[idx] * torch.randn(len(idx), generator=g)
    truth = {n: float(math.exp(lt[probe.param_names.index(n)])) for n in free}
    ds = collect_episodes(
        "pbhno/Notch-v0",
        n_episodes,
        num_envs=n_episodes,
        seed=100 * seed,
        progress=False,
        true_parameters=truth,
        **NOTCH_DESIGN,
    )
    torch.manual_seed(seed)
    model = PBHNO(PBHNOConfig(env_spec=ds.meta["spec"], free_params=free, **model_kw))
    tc = TrainConfig(
        epochs=epochs,
        batch_size=8,
        sens_every=max(epochs // 4, 1),
        tensorboard=False,
        patience=max(epochs // 3, 5),
        seed=seed,
        weights=weights or LossWeights(),
    )
    tr = Trainer(model, ds, tc, run_dir)
    model = tr.fit(progress=False)
    rep = theta_report(combine_members([laplace_summary(model, ds, tr.delta)]), ds)
    log_err = [abs(math.log(r["estimate"] / r["true"])) for r in rep["parameters"]]
    return {
        "seed": seed,
        "mape": rep["mape"],
        "median_ape": rep["median_ape"],
        "coverage": rep["coverage"],
        "mean_log_error": float(np.mean(log_err)),
        "parameters": rep["parameters"],
    }


def summarise_recovery(rows: list[dict]) -> dict:
    mape = np.array([r["mape"] for r in rows])
    med = np.array([r["median_ape"] for r in rows])
    cov = np.array([r["coverage"] for r in rows])
    lerr = np.array([r["mean_log_error"] for r in rows])
    ests = np.array([[p["estimate"] / p["true"] for p in r["parameters"]] for r in rows])
    return {
        "n_seeds": len(rows),
        "mape": float(mape.mean()),
        "mape_ci": bootstrap_ci(mape),
        "median_ape": float(np.median(med)),
        "median_ape_ci": bootstrap_ci(med, np.median),
        "coverage": float(cov.mean()),
        "coverage_ci": bootstrap_ci(cov),
        "mean_log_error": float(lerr.mean()),
        "var_rel_estimate": float(ests.var(0).mean()),
    }


def step_and_ramp_schedules(model, n: int, T: int, seed: int = 0) -> torch.Tensor:
    """Unseen control families: a step to a random level at a random time, or a linear ramp."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = model.control_low.cpu(), model.control_high.cpu()
    U = torch.zeros(n, T, len(lo))
    for i in range(n):
        level = lo + (hi - lo) * 0.5 * torch.rand(len(lo), generator=g)
        if i % 2 == 0:
            t0 = int(torch.randint(0, T // 2, (1,), generator=g))
            U[i, t0:] = level
        else:
            U[i] = torch.linspace(0, 1, T)[:, None] * level
    return U


def counterfactual(
    model: PBHNO,
    env_id: str,
    n: int = 8,
    T: int = 20,
    prefix: int = 3,
    seed: int = 0,
    truth_log_theta: torch.Tensor | None = None,
) -> dict:
    """Forecast error of ``model`` vs the true simulator under step/ramp schedules."""
    spec = dataclasses.replace(model.spec, horizon=T)
    truth = SimulatorModel(dataclasses.replace(spec, substeps=spec.substeps), dtype=torch.float32)
    lt_true = truth.prior_mean if truth_log_theta is None else truth_log_theta
    U = step_and_ramp_schedules(model, n, T, seed)
    with torch.no_grad():
        states, ph_true = truth.rollout(truth.initial_state(n, lt_true), U, lt_true)
        meas_true = torch.stack([truth.measure(s) for s in states], 1)
    # estimate the initial-state offsets from the first `prefix` steps' noise-free measurements
    delta = torch.zeros(n, model.n_cells, len(model.pathway.species), requires_grad=True)
    opt = torch.optim.Adam([delta], lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        pred = rollout_predictions(model, U[:, :prefix], delta)
        ((pred - meas_true[:, : prefix + 1]) ** 2).mean().backward()
        opt.step()
    with torch.no_grad():
        from ..physics.simulator import SimState

        z = model.initial_state(n)
        z = SimState(z.x * torch.exp(delta), z.L, z.t)
        zs, ph = model.rollout(z, U)
    out = {"phenotype_rel_l2": float((ph - ph_true).norm() / ph_true.norm())}
    if states[0].L is not None:
        Lt = torch.stack([s.L for s in states], 1)
        Lp = torch.stack([s.L for s in zs], 1)
        out["field_rel_l2"] = float((Lp - Lt).norm() / Lt.norm())
    return out


def rollout_speed(model: PBHNO, batch: int = 1, T: int = 20, repeats: int = 3) -> dict:
    truth = SimulatorModel(model.spec)
    U = (0.5 * (truth.control_low + truth.control_high)).expand(batch, T, -1).contiguous()

    def timeit(m) -> float:
        best = math.inf
        with torch.no_grad():
            for _ in range(repeats):
                t0 = time.perf_counter()
                m.rollout(m.initial_state(batch), U)
                best = min(best, time.perf_counter() - t0)
        return best

    ts, tm = timeit(truth), timeit(model)
    return {"batch": batch, "simulator_s": ts, "surrogate_s": tm, "speedup": ts / tm}


def fit_for_forecast(
    env_id: str, n_episodes: int, epochs: int, model_kw: dict, run_dir, seed: int = 0, **overrides
) -> tuple[PBHNO, Dataset]:
    ds = collect_episodes(
        env_id, n_episodes, num_envs=min(n_episodes, 16), seed=seed, progress=False, **overrides
    )
    torch.manual_seed(seed)
    model = PBHNO(PBHNOConfig(env_spec=ds.meta["spec"], **model_kw))
    tc = TrainConfig(
        epochs=epochs, batch_size=8, sens_every=0, tensorboard=False, patience=max(epochs // 3, 5), seed=seed
    )
    return Trainer(model, ds, tc, run_dir).fit(progress=False), ds
