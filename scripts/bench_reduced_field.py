#!/usr/bin/env python
"""Reduced-field planning model (issue 17): truncation error, plan speed and memory on Wnt.

The planning model keeps the ligand field in its lowest m x m cosine modes
(:class:`pbhno_gym.physics.reduced.ReducedFieldSimulator`, ``mpc.field_modes``), optionally at
fewer coupled sub-steps (``mpc.substeps``). Three measurements, all against the full simulator
in the same run:

1. accuracy: max and mean |phenotype error| (normalised, 0-1) over ``--steps`` control steps of
   ``--episodes`` random piecewise-constant dose schedules, float64 (truncation alone);
2. speed: one warm re-plan (the agents' Wnt settings: projected Adam, ``warm_iterations``,
   horizon 20, band tracking) at each batch, ms per problem, float32, one thread;
3. memory: peak resident memory added by the first (cold) plan at batch 8, autograd graph
   included (a fresh process per model, after building the model and the problem).

    OMP_NUM_THREADS=1 python scripts/bench_reduced_field.py --out docs/results/reduced_field
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from pbhno_gym.control import SimulatorModel, load_config
from pbhno_gym.control.planner import Planner, PlanProblem
from pbhno_gym.envs.factory import build, build_simulator
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.experiments.compare import provenance
from pbhno_gym.physics.reduced import ReducedFieldSimulator
from pbhno_gym.utils.io import atomic_write_text

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--env", default="pbhno/Wnt-v1")
p.add_argument("--modes", nargs="+", type=int, default=[4, 6, 8, 10, 12, 16])
p.add_argument("--substeps", nargs="+", type=int, default=[10, 5, 3])
p.add_argument("--episodes", type=int, default=8)
p.add_argument("--steps", type=int, default=48)
p.add_argument("--batches", nargs="+", type=int, default=[1, 32])
p.add_argument("--plan", nargs="+", default=["0:0", "8:5", "8:10"], help="modes:substeps (0: full / spec)")
p.add_argument("--memory-batch", type=int, default=8)
p.add_argument(
    "--parts", nargs="+", default=["accuracy", "speed", "memory"], choices=["accuracy", "speed", "memory"]
)
p.add_argument("--out", default="outputs/reduced_field")
p.add_argument("--_memory", help=argparse.SUPPRESS)  # internal: one memory measurement
args = p.parse_args()
torch.set_num_threads(1)
spec = load_spec(args.env)


def planning_model(modes: int, substeps: int) -> SimulatorModel:
    s = dataclasses.replace(spec, substeps=substeps) if substeps else spec
    return SimulatorModel(s, state_floor=1e-6, field_modes=modes or None)


def planner_and_problem(model: SimulatorModel, B: int, seed: int = 0) -> tuple[Planner, PlanProblem, int]:
    cfg = load_config(None, spec)
    g = torch.Generator().manual_seed(seed)
    N = model.n_cells
    on = torch.rand(B, 1, N, generator=g) < 0.5  # random on/off patterns
    tgt = torch.where(on, spec.target.on_level, spec.target.off_level).expand(B, cfg.horizon, N).clone()
    z = model.initial_state(B)
    lt = model.theta.log_values.expand(B, -1).clone()
    prob = PlanProblem(z, tgt, lt, torch.full((B, model.n_controls), float("inf")))
    band = (spec.target.off_level, spec.target.on_level) if cfg.tracking == "band" else None
    pl = Planner(
        model, cfg.horizon, solver=cfg.solver, iterations=cfg.iterations, lr=cfg.lr, tol=0.0, band=band
    )
    return pl, prob, cfg.warm_iterations


def _status_mb(field: str) -> float:
    """A /proc/self/status memory field (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


if args._memory:  # child process: peak RSS added by one cold plan (Linux /proc)
    modes, sub = (int(v) for v in args._memory.split(":"))
    model = planning_model(modes, sub)
    pl, prob, _ = planner_and_problem(model, args.memory_batch)
    # reset the high-water mark (a fork-exec'd child inherits its parent's ru_maxrss)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_mb("VmRSS")  # model and problem built, no plan yet
    pl.solve(prob)
    peak = _status_mb("VmHWM")
    print(json.dumps({"peak_rss_mb": peak, "added_mb": peak - before}))
    sys.exit(0)

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
res = {"env": args.env, **provenance(" ".join(["python", *sys.argv]))}

# 1. accuracy (float64): truncation and sub-steps against the full simulator
if "accuracy" in args.parts:
    parts = build(spec, dtype=torch.float64)
    sim, om = parts.sim, parts.obs_model
    g = torch.Generator().manual_seed(0)
    hold = 8
    S = torch.rand(args.episodes, -(-args.steps // hold), sim.n_controls, generator=g, dtype=torch.float64)
    U = sim.control_low + S.repeat_interleave(hold, 1)[:, : args.steps] * (sim.control_high - sim.control_low)

    def phenotypes(model) -> torch.Tensor:
        z, ph = model.initial_state(None, args.episodes), []
        for u in U.unbind(1):
            z = model.step(z, u)
            ph.append(om.phenotype(z.x))
        return torch.stack(ph, 1)

    ref = phenotypes(sim)
    rows = ["modes,substeps,max_error,mean_error"]
    for k in args.substeps:
        s_k = build_simulator(dataclasses.replace(spec, substeps=k), dtype=torch.float64)
        for m in args.modes:
            err = (phenotypes(ReducedFieldSimulator(s_k, m)) - ref).abs()
            rows.append(f"{m},{k},{float(err.max()):.5f},{float(err.mean()):.6f}")
            print("accuracy", rows[-1], flush=True)
    atomic_write_text(out / "accuracy.csv", "\n".join(rows) + "\n")

# 2. speed of one warm re-plan
if "speed" in args.parts:
    speed = ["model,batch,ms_per_plan,ms_per_problem,speedup_vs_full"]
    full_ms: dict[int, float] = {}
    for key in args.plan:
        modes, sub = (int(v) for v in key.split(":"))
        model = planning_model(modes, sub)
        for B in args.batches:
            pl, prob, warm = planner_and_problem(model, B)
            pl.solve(prob, iterations=1)  # first-call overheads out of the timing
            t0 = time.perf_counter()
            pl.solve(prob, iterations=warm)
            ms = 1e3 * (time.perf_counter() - t0)
            if modes == 0 and sub == 0:
                full_ms[B] = ms
            ratio = full_ms.get(B, float("nan")) / ms
            speed.append(f"{key},{B},{ms:.1f},{ms / B:.2f},{ratio:.2f}")
            print("speed", speed[-1], flush=True)
    atomic_write_text(out / "speed.csv", "\n".join(speed) + "\n")

# 3. memory of one cold plan (a fresh process per model)
if "memory" in args.parts:
    mem = ["model,batch,peak_rss_mb,added_mb"]
    for key in args.plan:
        r = subprocess.run(
            [sys.executable, __file__, "--env", args.env, "--memory-batch", str(args.memory_batch)]
            + ["--_memory", key],
            capture_output=True,
            text=True,
            check=True,
        )
        m = json.loads(r.stdout.strip().splitlines()[-1])
        mem.append(f"{key},{args.memory_batch},{m['peak_rss_mb']:.0f},{m['added_mb']:.0f}")
        print("memory", mem[-1], flush=True)
    atomic_write_text(out / "memory.csv", "\n".join(mem) + "\n")
atomic_write_text(out / f"run_{'_'.join(args.parts)}.json", json.dumps(res, indent=1, default=str) + "\n")
