#!/usr/bin/env python
"""Env-steps/s: the single env on CPU, and the native vector env vs num_envs (CPU, CUDA).

python scripts/bench_envs.py
python scripts/bench_envs.py --device cuda --num-envs 1 256 4096 16384
python scripts/bench_envs.py --compile   # also gym.make(..., compile=True), same run
"""

import argparse
import datetime

import torch

from pbhno_gym import ENV_IDS
from pbhno_gym.benchmarks.envs import single_env_steps_per_s, vector_env_steps_per_s
from pbhno_gym.benchmarks.sim import machine_description

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--device", default="cpu")
p.add_argument("--envs", nargs="+", default=list(ENV_IDS))
p.add_argument("--num-envs", nargs="+", type=int, default=[1, 16, 256])
p.add_argument("--threads", type=int, default=None)
p.add_argument("--compile", action="store_true", help="also time the compiled simulator step (same run)")
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)

rows = []
for env_id in args.envs:
    for comp in (False, True) if args.compile else (False,):
        tag = " (compile=True)" if comp else ""
        if args.device == "cpu":
            rows.append((env_id, "single env" + tag, "cpu", 1, single_env_steps_per_s(env_id, compile=comp)))
            print(rows[-1], flush=True)
        for n in args.num_envs:
            sps = vector_env_steps_per_s(env_id, n, args.device, compile=comp)
            rows.append((env_id, "vector env" + tag, args.device, n, sps))
            print(rows[-1], flush=True)

print(f"\n### Environment throughput — {machine_description(args.device)}, {datetime.date.today()}\n")
print("| env | interface | device | num_envs | env-steps/s |\n|---|---|---|---:|---:|")
for env_id, kind, dev, n, sps in rows:
    print(f"| {env_id} | {kind} | {dev} | {n} | {sps:,.0f} |")
