#!/usr/bin/env python
"""FNO layout (issue 17): PB-HNO rollouts with the channels-last FNO vs ``Conv2d`` 1x1 layers.

``FNO2d.forward`` runs channels-last (each 1x1 convolution one matmul over the channels);
``FNO2d.forward_reference`` is the same map with ``Conv2d`` layers, the former implementation.
Both are timed in the same process, alternating, on an untrained PB-HNO (speed does not depend on
the weights) of ``--env`` at the Table II size (width 32, 32 modes, 4 layers) and the CPU size
(width 16, 12 modes): a T-step no-grad rollout (what MPC evaluates) and a T-step rollout with its
backward pass (what training and gradient planning pay), best of ``--repeats``. The FNO's last
layer is drawn non-zero (it starts at zero) and the phenotype difference between the layouts is
recorded (float32 round-off).

    OMP_NUM_THREADS=1 python scripts/bench_fno_layout.py --out docs/results/fno_layout
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch

from pbhno_gym.benchmarks.surrogate import step_and_ramp_schedules
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.experiments.compare import provenance
from pbhno_gym.surrogate.fno import FNO2d
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig
from pbhno_gym.utils.io import atomic_write_text

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--env", default="pbhno/Wnt-v1")
p.add_argument("--batches", nargs="+", type=int, default=[1, 32])
p.add_argument("--steps", type=int, default=10, help="control steps per rollout")
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--out", default="outputs/fno_layout")
args = p.parse_args()
torch.set_num_threads(args.threads)
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
spec = load_spec(args.env, {"horizon": args.steps})
SIZES = {"table_ii": dict(width=32, modes=32, hidden=128), "cpu": dict(width=16, modes=12, hidden=64)}
LAYOUTS = {"channels_last": FNO2d.forward, "conv2d_reference": FNO2d.forward_reference}


def timed(model: PBHNO, U: torch.Tensor, grad: bool) -> tuple[float, torch.Tensor]:
    z0 = model.initial_state(U.shape[0])
    t0 = time.perf_counter()
    if grad:
        _, ph = model.rollout(z0, U.requires_grad_())
        ph.square().sum().backward()
    else:
        with torch.no_grad():
            _, ph = model.rollout(z0, U)
    return time.perf_counter() - t0, ph.detach()


rows = []
for size, kw in SIZES.items():
    torch.manual_seed(0)
    cfg = PBHNOConfig(spec.to_dict(), solver="rk4", substeps=4, adjoint=False, **kw)
    model = PBHNO(cfg)
    for m in model.modules():  # a non-zero FNO output (its last layer starts at zero), so the
        if isinstance(m, FNO2d):  # phenotype difference between the layouts measures something
            torch.nn.init.normal_(m.proj2.weight, std=0.05)
    for B in args.batches:
        U = step_and_ramp_schedules(model, B, args.steps, 0)
        for grad in (False, True):
            best, ph = {}, {}
            for _ in range(args.repeats):  # alternate the layouts
                for name, fwd in LAYOUTS.items():
                    FNO2d.forward = fwd
                    t, ph[name] = timed(model, U.clone(), grad)
                    best[name] = min(best.get(name, float("inf")), t)
            FNO2d.forward = LAYOUTS["channels_last"]
            row = dict(
                size=size,
                batch=B,
                pass_="forward+backward" if grad else "forward",
                channels_last_s=round(best["channels_last"], 4),
                conv2d_s=round(best["conv2d_reference"], 4),
                speedup=round(best["conv2d_reference"] / best["channels_last"], 2),
                max_phenotype_diff=float((ph["channels_last"] - ph["conv2d_reference"]).abs().max()),
            )
            rows.append(row)
            print(row, flush=True)

with open(out / "runs.csv.tmp", "w", newline="") as f:
    w = csv.DictWriter(f, list(rows[0]))
    w.writeheader()
    w.writerows(rows)
(out / "runs.csv.tmp").replace(out / "runs.csv")
meta = {"env": args.env, "steps": args.steps, **provenance(" ".join(["python", *sys.argv]))}
atomic_write_text(out / "provenance.json", json.dumps(meta, indent=1) + "\n")
