#!/usr/bin/env python
"""Closed-loop MPC decision time on Wnt, eager vs ``mpc.compile = true`` (issue 17).

The oracle MPC agent with the env's own agent settings (reduced-field planning model, projected
Adam, band tracking) runs the same held-out episodes in one batch, first eager, then with the
model step compiled (``CompiledModel``). Each variant runs once untimed (warm-up: torch.compile
traces and compiles there) and then ``--repeats`` times timed; ms per env per decision = wall /
(episodes x horizon), env stepping and the cold plans at episode start included. Success, final
error and the largest dose difference between the variants (every episode and step) are recorded:
compilation must not change the decisions beyond float32 round-off.

    OMP_NUM_THREADS=1 python scripts/bench_wnt_decision.py --out docs/results/wnt_decision
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pbhno_gym.control import load_config
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.evaluation import evaluate_agent, mpc_policy
from pbhno_gym.evaluation.episodes import heldout_seeds
from pbhno_gym.experiments.compare import provenance
from pbhno_gym.utils.io import atomic_write_text

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--env", default="pbhno/Wnt-v1")
p.add_argument("--episodes", type=int, default=32, help="episodes, all in one batch")
p.add_argument("--repeats", type=int, default=1, help="timed runs per variant after the warm-up")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--out", default="outputs/wnt_decision")
args = p.parse_args()
torch.set_num_threads(args.threads)
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
spec = load_spec(args.env)
seeds = heldout_seeds(args.episodes)
decisions = args.episodes * spec.horizon

rows, actions = [], {}
for compiled in (False, True):
    cfg = load_config(None, spec, compile=compiled)
    for rep in range(1 + args.repeats):
        t0 = time.perf_counter()
        agent = mpc_policy(spec, cfg, oracle=True)
        res = evaluate_agent(agent, spec, seeds, batch_size=args.episodes, record=args.episodes)
        wall = time.perf_counter() - t0
        row = dict(
            variant="compiled" if compiled else "eager",
            run="warm-up" if rep == 0 else f"timed {rep}",
            episodes=args.episodes,
            wall_s=round(wall, 2),
            ms_per_env_decision=round(1e3 * wall / decisions, 2),
            success=float(res.success.mean()),
            final_error=float(res.final_error.mean()),
        )
        rows.append(row)
        print(row, flush=True)
    actions[compiled] = res.trajectories["dose"]

eager = [r["ms_per_env_decision"] for r in rows if r["variant"] == "eager" and r["run"] != "warm-up"]
comp = [r["ms_per_env_decision"] for r in rows if r["variant"] == "compiled" and r["run"] != "warm-up"]
summary = {
    "env": args.env,
    **provenance(" ".join(["python", *sys.argv])),
    "eager_ms_per_env_decision": min(eager),
    "compiled_ms_per_env_decision": min(comp),
    "speedup": round(min(eager) / min(comp), 2),
    "max_dose_difference": float(np.abs(actions[True] - actions[False]).max()),
    "max_dose": float(np.abs(actions[False]).max()),
}
print(json.dumps(summary, indent=1))
with open(out / "runs.csv.tmp", "w", newline="") as f:
    w = csv.DictWriter(f, list(rows[0]))
    w.writeheader()
    w.writerows(rows)
(out / "runs.csv.tmp").replace(out / "runs.csv")
atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
