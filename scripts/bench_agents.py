#!/usr/bin/env python
"""Decision latency per agent (ms per predict call) at batch 1 and batch 32, with the zero agent as
the same-run floor.

python scripts/bench_agents.py --env pbhno/MAPK-v0
"""

import argparse
import datetime

import torch

from pbhno_gym.benchmarks.agents import decision_latency_ms
from pbhno_gym.benchmarks.sim import machine_description

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--env", default="pbhno/MAPK-v0")
p.add_argument(
    "--agents", nargs="+", default=["zero", "random", "ppo", "sac", "td3", "recurrent_ppo", "casadi_nmpc"]
)
p.add_argument("--batches", nargs="+", type=int, default=[1, 32])
p.add_argument("--device", default="cpu")
p.add_argument("--threads", type=int, default=1)
args = p.parse_args()
torch.set_num_threads(args.threads)

rows = []
for name in args.agents:
    lat = [decision_latency_ms(name, args.env, b, device=args.device) for b in args.batches]
    rows.append((name, lat))
    print(rows[-1], flush=True)
floor = dict(rows).get("zero")

print(f"\n### Decision latency, {args.env} — {machine_description(args.device)}, {datetime.date.today()}\n")
head = " | ".join(f"ms/call at batch {b} | ms/decision at batch {b}" for b in args.batches)
print(f"| agent | {head} |\n|---|" + "---:|" * (2 * len(args.batches)))
for name, lat in rows:
    cells = " | ".join(f"{v:.3g} | {v / b:.3g}" for v, b in zip(lat, args.batches, strict=True))
    print(f"| {name} | {cells} |")
if floor:
    print(f"\nfloor (zero agent, same run): {floor[0]:.3g} ms per call at batch {args.batches[0]}")
