#!/usr/bin/env python
"""Counter RNG on CPU (issue 17): the words hashed in numpy vs in torch, same process, alternating.

A single env draws its observation noise every step from per-env counter streams
(``pbhno_gym.utils.rng``): ~40 tiny integer ops per draw. On CPU they now run in numpy's uint64
(the same words); ``words_torch`` is the former path (and what other devices run). Times one
observation draw and single-env steps (eager and ``compile=True``) with each, alternating.

    OMP_NUM_THREADS=1 python scripts/bench_rng.py --threads 1
"""

import argparse
import datetime
import json
import statistics
import time

import gymnasium as gym
import torch

import pbhno_gym  # noqa: F401  (registers the ids)
import pbhno_gym.utils.rng as rng_mod
from pbhno_gym.benchmarks.sim import machine_description
from pbhno_gym.utils.provenance import git_state

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--envs", nargs="+", default=["pbhno/MAPK-v0", "pbhno/Wnt-v1"])
p.add_argument("--steps", type=int, default=200)
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--out", default=None, help="write the rows as JSON here")
args = p.parse_args()
torch.set_num_threads(args.threads)
HASH = {"torch (before)": rng_mod.words_torch, "numpy (now)": rng_mod.words_numpy}


def timed(fn, n: int) -> float:
    """Calls per second of ``fn`` over ``n`` calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


rows = []
for env_id in args.envs:
    for compiled in (False, True):
        env = gym.make(env_id, compile=compiled)
        env.reset(seed=0)
        a = env.action_space.sample() * 0.5
        core = env.unwrapped.core

        def step(env=env, a=a):
            if env.step(a)[3]:
                env.reset()

        for _ in range(3):  # compiles (compile=True), warms caches
            step()
        cases = {"env step": (step, args.steps if compiled else args.steps // 4)}
        if not compiled:  # the draw is the same eager code either way
            cases["observation draw"] = (lambda core=core: core.obs_model.draw(core.rng), 10 * args.steps)
        for what, (fn, n) in cases.items():
            rates = {k: [] for k in HASH}
            for _ in range(args.repeats):
                for name, words in HASH.items():
                    rng_mod.words_numpy = words  # CounterRNG.bits looks the CPU hash up here
                    rates[name].append(timed(fn, n))
            rng_mod.words_numpy = HASH["numpy (now)"]
            med = {k: statistics.median(v) for k, v in rates.items()}
            row = dict(
                env=env_id, compile=compiled, what=what, before=med["torch (before)"], now=med["numpy (now)"]
            )
            row["ratio"] = row["now"] / row["before"]
            rows.append(row)
            print(json.dumps(row), flush=True)

git = git_state()  # <hash> or <hash>-dirty
print(
    f"\n### CPU counter RNG - {machine_description('cpu')}, {datetime.date.today()}, git {git}"
    f", {args.threads} thread(s), medians of {args.repeats} alternating runs\n"
)
print(
    "| env | compile | measured | hash in torch (before) per s | in numpy (now) | ratio |\n"
    "|---|---|---|---:|---:|---:|"
)
for r in rows:
    print(
        f"| {r['env']} | {r['compile']} | {r['what']} | {r['before']:,.0f} | {r['now']:,.0f} "
        f"| {r['ratio']:.2f}x |"
    )
if args.out:
    with open(args.out, "w") as f:
        json.dump(dict(git=git, date=str(datetime.date.today()), rows=rows), f, indent=1)
