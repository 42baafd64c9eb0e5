#!/usr/bin/env python
"""Unknown-world baselines: zero action, nominal-model MPC and oracle MPC per task, over world
seeds x episodes, one CSV row per (task, world, agent) with success rate and final error.

The nominal MPC plans through the skeleton at the prior mean (what an agent is told); the oracle
plans through the true world (drawn parameters and hidden mechanism). Smoke test:

    python scripts/bench_worlds.py --worlds 1 --episodes 2 --tasks pbhno/MAPK-Unknown-v0
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from pbhno_gym.agents.reference import ZeroAgent
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.evaluation import evaluate_agent, mpc_policy
from pbhno_gym.evaluation.episodes import heldout_seeds

TASKS = ["pbhno/MAPK-Unknown-v0", "pbhno/Wnt-Unknown-v0", "pbhno/Notch-Unknown-v0"]
FIELDS = ["task", "world_seed", "agent", "episodes", "success_rate", "final_error", "return", "seconds"]


def agents(spec):
    """(name, policy) of the three baselines for one world's spec."""
    zero = ZeroAgent()
    zero.train(spec, budget=0, seed=0, run_dir=None)
    return [
        ("zero", zero),
        ("nominal_mpc", mpc_policy(spec)),
        ("oracle_mpc", mpc_policy(spec, oracle=True)),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--worlds", type=int, default=8, help="world seeds 0 .. worlds-1")
    p.add_argument("--episodes", type=int, default=8, help="held-out episode seeds per world")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="docs/results/worlds/baselines.csv")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seeds = heldout_seeds(a.episodes)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for task in a.tasks:
            for k in range(a.worlds):
                spec = load_spec(task, {"world_seed": k})
                for name, agent in agents(spec):
                    t0 = time.perf_counter()
                    res = evaluate_agent(agent, spec, seeds, desc=f"{task} w{k} {name}")
                    s = res.summary()
                    row = dict(
                        task=task,
                        world_seed=k,
                        agent=name,
                        episodes=res.n,
                        success_rate=s["success_rate"],
                        final_error=float(np.mean(res.final_error)),
                        **{"return": s["return"]},
                        seconds=round(time.perf_counter() - t0, 2),
                    )
                    w.writerow(row)
                    f.flush()
                    print(row, flush=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
