"""MPC benchmarks: replanning latency, solver convergence, optimality gap, closed-loop quality.

Planning problems are taken from the environments themselves: B episodes are reset with
seeds and driven by random pulse schedules for a few steps, then the planner starts from their
states with their target previews and remaining doses, exactly as in closed loop.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from ..control.model import ControlModel, SimulatorModel
from ..control.planner import Planner, PlanProblem, preview_targets, shift_plan, stage_weights
from ..data.policies import RandomPulsePolicy
from ..envs.core import PathwayCore
from ..envs.spec import load_spec
from ..utils.rng import seed_to_key

__all__ = ["env_problems", "latency", "convergence", "reference_gap"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def env_problems(
    env_id: str,
    batch: int,
    horizon: int = 20,
    warmup: int = 8,
    seed: int = 0,
    model: ControlModel | None = None,
) -> tuple[PlanProblem, ControlModel]:
    """B planning problems from env episodes after ``warmup`` random-pulse steps (true theta and
    world: on an Unknown task the drawn parameters and the hidden mechanism)."""
    spec = load_spec(env_id)
    core = PathwayCore(spec, batch)
    core.reset(keys=torch.tensor([seed_to_key(seed + i) for i in range(batch)], dtype=torch.int64))
    pol = RandomPulsePolicy(core.low.numpy(), core.high.numpy(), seed=seed)
    pol.reset(batch, [seed + i for i in range(batch)])
    for _ in range(warmup):
        core.step(torch.as_tensor(pol.act(batch)))
    # the true world (hidden mechanisms included), as the oracle plans; floor as the agents plan
    model = model or SimulatorModel(spec, state_floor=1e-6, world=True)
    dev, dt = model.device, model.dtype
    st = core.state.to(dtype=dt, device=dev)
    frac = core.dose_left()
    dose = torch.where(torch.isinf(core.budget), core.budget, frac * torch.nan_to_num(core.budget, posinf=0))
    prob = PlanProblem(
        st,
        preview_targets(core.goal(), horizon).to(dtype=dt, device=dev),
        core.log_theta.to(dtype=dt, device=dev),
        dose.to(dtype=dt, device=dev),
        stage_weights(core.t, spec.horizon, horizon, dt).to(dev),
    )
    return prob, model


def latency(
    model: ControlModel,
    prob: PlanProblem,
    solver: str,
    iterations: int,
    repeats: int = 3,
    warm_iterations: int = 8,
    tol: float = 1e-2,
) -> dict[str, Any]:
    """Timings of one batch of problems.

    * cold: a solve of exactly ``iterations`` iterations (tol = 0, no early stop): the cost per
      iteration;
    * warm replan: the next closed-loop step after a plan converged to ``tol``: apply its first
      control, re-plan from the next state warm-started from the shifted plan, with the
      closed-loop tolerance and ``warm_iterations`` cap (the agent's configuration).
    """
    T = prob.target.shape[1]
    dev = prob.target.device
    p = Planner(model, T, solver=solver, iterations=iterations, tol=0.0, lr=0.1, patience=10**9)
    p.solve(prob, iterations=1)  # warm-up (allocations, compilation)
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(repeats):
        cold = p.solve(prob)
    _sync(dev)
    t_cold = (time.perf_counter() - t0) / repeats
    pw = Planner(model, T, solver=solver, iterations=warm_iterations, tol=tol, lr=0.1)
    conv = Planner(model, T, solver=solver, iterations=40 if solver == "gn" else 200, tol=tol, lr=0.1).solve(
        prob, S0=cold.S
    )
    with torch.no_grad():
        nxt = model.step(prob.z0, conv.U[:, 0], prob.log_theta)
    prob2 = PlanProblem(nxt, prob.target, prob.log_theta, prob.dose_left, prob.weight)
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(repeats):
        warm = pw.solve(prob2, S0=shift_plan(conv.S))
    _sync(dev)
    t_warm = (time.perf_counter() - t0) / repeats
    B = prob.batch
    U0 = cold.U.detach()
    with torch.no_grad():  # baseline of the same run: one plain T-step rollout at this batch
        model.rollout(prob.z0, U0, prob.log_theta)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.rollout(prob.z0, U0, prob.log_theta)
        _sync(dev)
    t_roll = (time.perf_counter() - t0) / repeats
    return dict(
        rollout_ms=1e3 * t_roll,
        batch=B,
        solver=solver,
        iterations=iterations,
        cold_ms=1e3 * t_cold,
        ms_per_iteration=1e3 * t_cold / max(int(cold.iterations.max()), 1),
        warm_ms=1e3 * t_warm,
        warm_ms_per_problem=1e3 * t_warm / B,
        warm_iterations_mean=float(warm.iterations.float().mean()),
    )


def convergence(
    model: ControlModel,
    prob: PlanProblem,
    gn_iterations: int = 30,
    adam_iterations: int = 200,
    lrs=(0.03, 0.1, 0.3),
) -> dict[str, Any]:
    """Iterations (and seconds) each solver needs to come within 1% and 0.1% of the best cost.

    The reference optimum per problem is the best cost any solver reached. Iteration counts are
    medians over problems (a solver that never gets there counts as its iteration limit + 1).
    """
    T = prob.target.shape[1]
    runs: dict[str, Any] = {}
    t0 = time.perf_counter()
    runs["gn"] = (
        Planner(model, T, solver="gn", iterations=gn_iterations, tol=0.0).solve(prob, history=True),
    )
    runs["gn"] += (time.perf_counter() - t0,)
    for lr in lrs:
        t0 = time.perf_counter()
        r = Planner(
            model, T, solver="adam", iterations=adam_iterations, tol=0.0, lr=lr, patience=10**6
        ).solve(prob, history=True)
        runs[f"adam lr={lr:g}"] = (r, time.perf_counter() - t0)
    best = torch.stack([r.history.min(0).values for r, _ in runs.values()]).min(0).values
    out = {}
    for name, (r, secs) in runs.items():
        h = r.history  # (K+1, B)
        K = h.shape[0] - 1
        row: dict[str, Any] = dict(iterations_run=K, s_per_iteration=secs / max(K, 1))
        for rel in (1e-2, 1e-3):
            ok = h <= best * (1 + rel) + 1e-9
            first = torch.where(
                ok.any(0), ok.float().argmax(0), torch.full_like(best, K + 1, dtype=torch.long)
            )
            row[f"median_iters_{rel:g}"] = float(first.float().median())
            row[f"frac_reached_{rel:g}"] = float(ok.any(0).float().mean())
        row["final_gap"] = float(((h[-1] - best) / best.clamp_min(1e-12)).mean())
        out[name] = row
    return out


def reference_gap(model: ControlModel, prob: PlanProblem, gn_iterations: int = 15, tol: float = 1e-4) -> dict:
    """GN (as configured for closed loop) vs a converged SciPy SLSQP solve of the same problem
    (float64 model, exact torch gradients, ftol 1e-12, box and dose constraints)."""
    from scipy.optimize import minimize

    T, n_u = prob.target.shape[1], model.n_controls
    p = Planner(model, T, solver="gn", iterations=gn_iterations, tol=tol)
    t0 = time.perf_counter()
    gn = p.solve(prob)
    t_gn = time.perf_counter() - t0
    gaps, t_ref = [], 0.0
    dt = model.dt
    for b in range(prob.batch):
        sub = prob.index(torch.tensor([b]))

        def f(s, sub=sub):
            x = torch.tensor(s, dtype=torch.float64).reshape(1, T, n_u).requires_grad_(True)
            c = p.objective(x, sub)[0].sum()
            (g,) = torch.autograd.grad(c, x)
            return float(c.detach()), g.reshape(-1).numpy()

        cap = (sub.dose_left[0] / dt - T * p.low) / p.span
        cons = []
        for j in range(n_u):
            if math.isfinite(float(cap[j])):
                a = np.zeros((T, n_u))
                a[:, j] = 1
                cons.append(
                    {
                        "type": "ineq",
                        "fun": lambda s, a=a, c=float(cap[j]): c - a.ravel() @ s,
                        "jac": lambda s, a=a: -a.ravel(),
                    }
                )
        t0 = time.perf_counter()
        best = None
        for s0 in (gn.S[b].reshape(-1).numpy(), np.zeros(T * n_u)):  # warm and cold starts
            r = minimize(
                f,
                s0,
                jac=True,
                bounds=[(0, 1)] * (T * n_u),
                constraints=cons,
                method="SLSQP",
                options={"ftol": 1e-12, "maxiter": 1000},
            )
            best = r.fun if best is None else min(best, r.fun)
        t_ref += time.perf_counter() - t0
        gaps.append((float(gn.cost[b]) - best) / max(best, 1e-12))
    g = np.asarray(gaps)
    return dict(
        problems=prob.batch,
        mean_rel_gap=float(g.mean()),
        max_rel_gap=float(g.max()),
        median_rel_gap=float(np.median(g)),
        gn_s=t_gn,
        gn_iterations_mean=float(gn.iterations.float().mean()),
        slsqp_s_per_problem=t_ref / prob.batch,
    )
