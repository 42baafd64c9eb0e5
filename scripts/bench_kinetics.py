#!/usr/bin/env python
"""Kinetics overhead (issue 17): batched kinetics vs the former per-reaction formulation, same run.

Old and new are timed alternately in one process (``benchmarks.kinetics.per_reaction_kinetics``
swaps the former implementation back in), so machine noise hits both; ratios are of medians.

    python scripts/bench_kinetics.py --threads 1
    python scripts/bench_kinetics.py --threads 1 --batches 1 32 --repeats 5
"""

import argparse
import datetime
import statistics

import gymnasium as gym
import torch

from pbhno_gym.benchmarks.kinetics import (
    aten_ops_per_call,
    autograd_nodes,
    env_steps_per_s,
    mpc_decision,
    paired,
    per_reaction_kinetics,
)
from pbhno_gym.benchmarks.sim import machine_description
from pbhno_gym.physics.simulator import SimState

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--envs", nargs="+", default=["pbhno/MAPK-v0", "pbhno/Wnt-v1"])
p.add_argument("--mpc-env", default="pbhno/MAPK-v0")
p.add_argument("--batches", nargs="*", type=int, default=[1, 32], help="MPC decision batch sizes")
p.add_argument("--repeats", type=int, default=5, help="alternating old/new timings per row")
args = p.parse_args()
torch.set_num_threads(args.threads)
med = statistics.median
rows = []


def row(what, unit, old, new, higher_is_better, note=""):
    ratio = (new / old) if higher_is_better else (old / new)
    rows.append((what, unit, old, new, ratio, note))
    print(rows[-1], flush=True)


for env_id in args.envs:
    env = gym.make(env_id)
    env.reset(seed=0)
    core = env.unwrapped.core
    sim, st, lt = core.sim, core.state, core.log_theta
    u = (core.low + 0.5 * (core.high - core.low)).reshape(1, -1)  # mid-range controls

    def sim_step(sim=sim, st=st, lt=lt, u=u):
        return sim.step(st, u, lt)

    def graph(sim=sim, st=st, lt=lt, u=u):  # as in planning: state, controls and theta differentiable
        z = SimState(*(None if a is None else a.detach().requires_grad_(True) for a in (st.x, st.L)), st.t)
        return autograd_nodes(sim.step(z, u.requires_grad_(True), lt.detach().requires_grad_(True)).x)

    with torch.no_grad():
        with per_reaction_kinetics():
            old = aten_ops_per_call(sim_step)
        row(f"{env_id} aten ops / sim step", "ops", old, aten_ops_per_call(sim_step), False)
    with per_reaction_kinetics():
        old = graph()
    row(f"{env_id} autograd nodes / sim step", "nodes", old, graph(), False)
    timer = env_steps_per_s(env_id, steps=200 if "MAPK" in env_id else 20)
    timer()
    o, n = paired(timer, args.repeats)
    row(f"{env_id} single env", "env-steps/s", med(o), med(n), True)

for b in args.batches:
    timer, costs = mpc_decision(args.mpc_env, b)
    with per_reaction_kinetics():
        c_old = costs()
    c_new = costs()
    rel = float(((c_new - c_old).abs() / c_old.abs().clamp_min(1e-12)).max())
    print(f"MPC batch {b}: largest relative plan-cost difference old vs new {rel:.2e}", flush=True)
    timer()
    o, n = paired(timer, args.repeats)
    note = f"plan costs agree to {rel:.0e}"
    row(f"{args.mpc_env} MPC decision, batch {b}", "ms", 1e3 * med(o), 1e3 * med(n), False, note)

print(f"\n### Kinetics overhead — {machine_description('cpu')}, {datetime.date.today()}\n")
print("| measurement | unit | per-reaction (old) | batched (new) | speed-up | note |")
print("|---|---|---:|---:|---:|---|")
for what, unit, old, new, ratio, note in rows:
    fmt = ",.0f" if unit in ("ops", "nodes") else ",.1f"
    print(f"| {what} | {unit} | {old:{fmt}} | {new:{fmt}} | {ratio:.2f}x | {note} |")
