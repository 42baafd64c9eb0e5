#!/usr/bin/env python
"""PB-HNO benchmarks: Notch parameter recovery over seeds, counterfactual forecasts, rollout speed.

    python scripts/bench_surrogate.py --quick            # CPU-sized: few seeds, short training
    python scripts/bench_surrogate.py --seeds 30 --epochs 300 --episodes 32 --device cuda   # full
Results (JSON per part) go to --out; paste the markdown summary into docs/benchmarks.md.
"""

import argparse
import datetime
import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pbhno_gym.benchmarks.sim import machine_description
from pbhno_gym.benchmarks.surrogate import (
    counterfactual,
    fit_for_forecast,
    recovery_seed,
    rollout_speed,
    summarise_recovery,
)
from pbhno_gym.utils.io import atomic_write_json

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--quick", action="store_true")
p.add_argument("--seeds", type=int, default=30)
p.add_argument("--episodes", type=int, default=32)
p.add_argument("--epochs", type=int, default=300)
p.add_argument("--parts", nargs="+", default=["recovery", "counterfactual", "speed"])
p.add_argument("--out", default="outputs/bench_surrogate")
p.add_argument("--threads", type=int, default=None)
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
if args.quick:
    args.seeds, args.episodes, args.epochs = min(args.seeds, 4), min(args.episodes, 12), min(args.epochs, 40)
model_kw = {"solver": "rk4", "adjoint": False, "substeps": 16, "width": 16, "modes": 12, "hidden": 64}
out = Path(args.out)
summary: dict = {
    "machine": machine_description("cpu"),
    "date": str(datetime.date.today()),
    "args": vars(args),
}

if "recovery" in args.parts:
    rows = []
    for s in tqdm(range(args.seeds), desc="recovery seeds"):
        path = out / "recovery" / f"seed{s}.json"
        if path.exists():  # resume: finished seeds are kept
            rows.append(json.loads(path.read_text()))
            continue
        rows.append(recovery_seed(s, args.episodes, args.epochs, model_kw, out / "runs" / f"seed{s}"))
        atomic_write_json(path, rows[-1])
    summary["recovery"] = summarise_recovery(rows)
    print(json.dumps(summary["recovery"], indent=2))

if "counterfactual" in args.parts:
    res = {}
    for env_id, kw in [("pbhno/Wnt-v0", {"horizon": 24}), ("pbhno/Notch-v0", {"horizon": 24})]:
        model, _ = fit_for_forecast(
            env_id, args.episodes, args.epochs, model_kw, out / "runs" / env_id.replace("/", "_"), **kw
        )
        res[env_id] = counterfactual(model, env_id)
        res[env_id]["speed_b1"] = rollout_speed(model, 1)
        res[env_id]["speed_b64"] = rollout_speed(model, 64)
        print(env_id, json.dumps(res[env_id], indent=2))
    summary["counterfactual"] = res

atomic_write_json(out / "summary.json", summary)
print(json.dumps(summary, indent=2, default=str))
