#!/usr/bin/env python
"""Compiled env steps (issue 17): the kinetics table fused into the step vs stack + matmul, same run.

Under ``torch.compile`` ``Pathway.kinetics`` applies its stoichiometry table flux by flux, so
inductor fuses the rate laws and the table into the step's kernels; before, a stack and a matmul
per stage were a materialised buffer and an external call each (MAPK-v0: 33 kernel calls per
compiled step). ``benchmarks.kinetics.matmul_table_when_compiled`` swaps the former form back in;
each variant runs in its own process (dynamo would otherwise reuse one variant's graphs for the
other), the processes alternate ``--repeats`` times, so the machine's noise hits both.

    OMP_NUM_THREADS=1 python scripts/bench_compiled_step.py --threads 1
    OMP_NUM_THREADS=1 python scripts/bench_compiled_step.py --envs pbhno/MAPK-v0 --num-envs 1 256 --repeats 5
"""

import argparse
import contextlib
import datetime
import json
import statistics
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import torch

import pbhno_gym  # noqa: F401  (registers the ids)
from pbhno_gym.benchmarks.kinetics import matmul_table_when_compiled
from pbhno_gym.benchmarks.sim import machine_description
from pbhno_gym.utils.provenance import git_state

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--envs", nargs="+", default=["pbhno/MAPK-v0", "pbhno/Wnt-v1"])
p.add_argument("--num-envs", nargs="+", type=int, default=[1, 256], help="1: the Gymnasium single env")
p.add_argument("--steps", type=int, default=200, help="timed steps per config (vector envs: / 10)")
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--out", default=None, help="write the rows as JSON here")
p.add_argument("--variant", choices=["before", "now"], default=None, help=argparse.SUPPRESS)
args = p.parse_args()
torch.set_num_threads(args.threads)


def make(env_id: str, n: int):
    """A compiled env and one step function taking no argument; two untimed steps compile it."""
    if n == 1:
        env = gym.make(env_id, compile=True)
        env.reset(seed=0)
        a = env.action_space.sample() * 0.5

        def step():
            if env.step(a)[3]:
                env.reset()

    else:
        env = gym.make_vec(
            env_id, num_envs=n, vectorization_mode="vector_entry_point", output="torch", compile=True
        )
        env.reset(seed=0)
        a = torch.as_tensor(np.tile(env.single_action_space.high * 0.5, (n, 1)))

        def step():
            env.step(a)

    step()
    step()
    return step


if args.variant is not None:  # worker: one variant, every config, one JSON line per config
    ctx = matmul_table_when_compiled if args.variant == "before" else contextlib.nullcontext
    with ctx():
        for env_id in args.envs:
            for n in args.num_envs:
                step = make(env_id, n)
                k = args.steps if n == 1 else max(args.steps // 10, 5)
                t0 = time.perf_counter()
                for _ in range(k):
                    step()
                print(
                    json.dumps(dict(env=env_id, num_envs=n, rate=n * k / (time.perf_counter() - t0))),
                    flush=True,
                )
    raise SystemExit

rates: dict[tuple, dict[str, list[float]]] = {}
for _ in range(args.repeats):
    for variant in ("before", "now"):
        cmd = [
            sys.executable,
            __file__,
            "--variant",
            variant,
            "--threads",
            str(args.threads),
            "--steps",
            str(args.steps),
        ]
        cmd += ["--envs", *args.envs, "--num-envs", *map(str, args.num_envs)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                rates.setdefault((r["env"], r["num_envs"]), {"before": [], "now": []})[variant].append(
                    r["rate"]
                )
        print(variant, out.strip().replace("\n", "; "), flush=True)

rows = []
for (env_id, n), v in rates.items():
    before, now = statistics.median(v["before"]), statistics.median(v["now"])
    rows.append(dict(env=env_id, num_envs=n, before=before, now=now, ratio=now / before, runs=v))

git = git_state()  # <hash> or <hash>-dirty
print(
    f"\n### Compiled env step, fused kinetics table - {machine_description('cpu')}, {datetime.date.today()}, "
    f"git {git}, {args.threads} thread(s), median of {args.repeats} processes\n"
)
print(
    "| env | num_envs | stack + matmul (before) env-steps/s | fused table (now) | ratio |\n"
    "|---|---:|---:|---:|---:|"
)
for r in rows:
    print(f"| {r['env']} | {r['num_envs']} | {r['before']:,.0f} | {r['now']:,.0f} | {r['ratio']:.2f}x |")
if args.out:
    with open(args.out, "w") as f:
        json.dump(
            dict(git=git, date=str(datetime.date.today()), command=" ".join(sys.argv), rows=rows),
            f,
            indent=1,
        )
