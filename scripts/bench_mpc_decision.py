#!/usr/bin/env python
"""MPC decision speed (issue 17): eager vs compiled closed-loop MPC on MAPK, same episodes.

For each agent (oracle: true state + theta; nominal: MHE state; adaptive: MHE state + theta) and
each batch, runs the same closed-loop episodes twice in one process, once with the default eager
model (one-step Jacobians by replicated reverse mode) and once with ``compile = true``
(torch.compile'd step and forward-mode Jacobians, :class:`pbhno_gym.control.CompiledModel`), and
reports per-decision wall time (``predict`` call, MHE + plan), their same-run ratio, and the
closed-loop cost of both (relative difference per episode). ``--modes ... aot`` adds
``compile_backend = "aot"`` (AOTInductor step-Jacobian libraries, cached under
``~/.cache/pbhno_gym/aot``). The CasADi/IPOPT NMPC baseline is
timed on the same episodes at batch 1. Compilation happens in an untimed warm-up episode
(minutes on a small CPU the first time; torch's on-disk cache makes reruns faster).

    OMP_NUM_THREADS=1 python scripts/bench_mpc_decision.py --threads 1
    python scripts/bench_mpc_decision.py --agents oracle --batches 1 256 --episodes 4
    OMP_NUM_THREADS=1 python scripts/bench_mpc_decision.py --threads 1 --agents oracle --batches 1 \
        --modes eager compiled aot
"""

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pbhno_gym.benchmarks.sim import machine_description
from pbhno_gym.control.config import load_config
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.evaluation import evaluate_agent, mpc_policy
from pbhno_gym.utils.io import atomic_write_json
from pbhno_gym.utils.provenance import git_state

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--env", default="pbhno/MAPK-Unknown-v0")
p.add_argument("--agents", nargs="+", default=["oracle", "nominal", "adaptive"])
p.add_argument("--batches", nargs="+", type=int, default=[1, 32])
p.add_argument("--episodes", type=int, default=16, help="episodes per batch > 1 (batch 1: --episodes-b1)")
p.add_argument("--episodes-b1", type=int, default=1)
p.add_argument("--seed", type=int, default=10_000)
p.add_argument(
    "--modes",
    nargs="+",
    choices=["eager", "compiled", "aot"],
    default=["eager", "compiled"],
    help="compiled: torch.compile (inductor); aot: AOTInductor step-Jacobian libraries",
)
p.add_argument("--no-casadi", action="store_true")
p.add_argument("--threads", type=int, default=None)
p.add_argument("--device", default="cpu", help="the MPC agents' device (the env and CasADi stay on the CPU)")
p.add_argument("--out", default="outputs/bench_mpc_decision.json")
p.add_argument(
    "--kinetics-table",
    choices=["fused", "matmul"],
    default="fused",
    help="matmul: compiled models assemble the kinetics by stack + matmul, the form before the fused "
    "table (benchmarks.kinetics.matmul_table_when_compiled), for a before/after in separate processes",
)
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
if args.kinetics_table == "matmul":
    from pbhno_gym.benchmarks.kinetics import matmul_table_when_compiled

    matmul_table_when_compiled().__enter__()  # for the whole process
spec = load_spec(args.env)
out_path = Path(args.out)
res = {
    "machine": machine_description(args.device),
    "env": args.env,
    "date": str(datetime.date.today()),
    "git": git_state(),  # <hash> or <hash>-dirty
    "command": "python " + " ".join(sys.argv),
    "torch": torch.__version__,
    "kinetics_table": args.kinetics_table,
    "rows": {},
}


def make(agent: str, mode: str):
    cfg = load_config(
        None,
        spec,
        compile=mode != "eager",
        compile_backend="aot" if mode == "aot" else "inductor",
        device=args.device,
        estimation={"estimate_theta": agent == "adaptive"},
    )
    return mpc_policy(spec, cfg, oracle=agent == "oracle")


def run(policy, n: int, batch: int) -> dict:
    """Closed loop on episodes seed .. seed + n - 1 in batches of ``batch``."""
    t0 = time.perf_counter()
    r = evaluate_agent(policy, spec, range(args.seed, args.seed + n), batch_size=batch)
    wall = time.perf_counter() - t0
    calls = np.asarray(r.call_s)
    return dict(
        wall_s=wall,
        decision_ms=1e3 * float(calls.mean()),
        decision_ms_per_problem=1e3 * float(calls.mean()) / batch,
        cost=(-np.asarray(r.returns)).tolist(),
        mean_cost=float(-np.mean(r.returns)),
    )


def save(key: str, row: dict) -> None:
    res["rows"][key] = row
    atomic_write_json(out_path, res)
    print(key, json.dumps({k: v for k, v in row.items() if k != "cost"}, default=float), flush=True)


policies = {}
for agent in args.agents:
    for mode in args.modes:
        pol = policies[agent, mode] = make(agent, mode)
        if mode != "eager":  # warm-up, untimed: compiles every batch bucket a timed run meets
            t0 = time.perf_counter()
            if 1 in args.batches:
                evaluate_agent(pol, spec, [args.seed - 1], batch_size=1)
            big = max(args.batches)
            if big > 1:  # a closed loop at the largest batch: active sets shrink through every bucket
                evaluate_agent(pol, spec, [args.seed - 2 - k for k in range(big)], batch_size=big)
            print(f"warm-up {agent} {mode}: {time.perf_counter() - t0:.0f} s", flush=True)
    for B in args.batches:
        n = args.episodes_b1 if B == 1 else max(args.episodes, B)
        for mode in args.modes:
            save(f"{agent} {mode} B={B}", run(policies[agent, mode], n, B) | dict(batch=B, episodes=n))
        for mode in (m for m in args.modes if m != "eager" and "eager" in args.modes):
            e, c = res["rows"][f"{agent} eager B={B}"], res["rows"][f"{agent} {mode} B={B}"]
            ce, cc = np.asarray(e["cost"]), np.asarray(c["cost"])
            save(
                f"{agent} B={B} {mode} vs eager",
                dict(
                    speedup=e["decision_ms"] / c["decision_ms"],
                    wall_speedup=e["wall_s"] / c["wall_s"],
                    mean_cost_rel_diff=float(cc.mean() / ce.mean() - 1),
                    max_episode_cost_rel_diff=float(np.max(np.abs(cc / ce - 1))),
                ),
            )

if not args.no_casadi:
    from pbhno_gym.agents.casadi_nmpc import CasadiNMPCAgent

    cas = CasadiNMPCAgent()
    cas.train(spec, budget=0, seed=0, run_dir=None, progress=False)
    evaluate_agent(cas, spec, [args.seed - 1], batch_size=1)  # warm-up, untimed
    save("casadi B=1", run(cas, args.episodes_b1, 1) | dict(batch=1, episodes=args.episodes_b1))

print(f"\n### MPC decision speed — {res['machine']}, {res['date']}, {args.env}\n")
print("| agent | mode | batch | episodes | ms per decision (call) | ms per problem | wall s | mean cost |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for k, v in res["rows"].items():
    if "vs" in k:
        continue
    parts = k.split(" ")
    agent, mode = (parts[0], parts[1]) if len(parts) == 3 else (parts[0], "-")
    print(
        f"| {agent} | {mode} | {v['batch']} | {v['episodes']} | {v['decision_ms']:.1f} | "
        f"{v['decision_ms_per_problem']:.2f} | {v['wall_s']:.1f} | {v['mean_cost']:.5f} |"
    )
print("\n| agent | batch | mode | speed-up over eager (per decision) | wall | mean cost rel. diff | max |")
print("|---|---:|---|---:|---:|---:|---:|")
for k, v in res["rows"].items():
    if "vs" in k:
        agent, b, mode = k.split(" ")[:3]
        print(
            f"| {agent} | {b[2:]} | {mode} | {v['speedup']:.1f}x | {v['wall_speedup']:.1f}x | "
            f"{v['mean_cost_rel_diff']:+.2e} | {v['max_episode_cost_rel_diff']:.2e} |"
        )
