#!/usr/bin/env python
"""Simulator throughput vs batch size per pathway (CPU, and CUDA when present).

python scripts/bench_sim.py                       # CPU, batches 1..1024
python scripts/bench_sim.py --device cuda --batches 1 64 1024 16384 --compile --bandwidth 4800
"""

import argparse
import datetime

import torch

from pbhno_gym.benchmarks.sim import CONFIGS, machine_description, time_config, to_markdown

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--device", default="cpu")
p.add_argument("--pathways", nargs="+", default=list(CONFIGS))
p.add_argument("--batches", nargs="+", type=int, default=[1, 16, 256, 1024])
p.add_argument("--steps", type=int, default=5)
p.add_argument("--compile", action="store_true", help="also time torch.compile")
p.add_argument("--bandwidth", type=float, default=None, help="device memory bandwidth in GB/s, for the bound")
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)

results = []
for name in args.pathways:
    for b in args.batches:
        for mode in ["eager"] + (["compile"] if args.compile else []):
            r = time_config(name, b, args.device, mode, steps=args.steps, gbytes_per_s=args.bandwidth)
            results.append(r)
            rate = f"{r.steps_per_s:12,.0f} steps/s  {r.ms_per_step:9.2f} ms/step"
            print(f"{name:14s} {mode:7s} batch {b:6d}: {rate}", flush=True)

print(f"\n### Simulator throughput — {machine_description(args.device)}, {datetime.date.today()}\n")
print(f"Command: `python scripts/bench_sim.py {' '.join(__import__('sys').argv[1:])}`\n")
print(to_markdown(results))
