#!/usr/bin/env python
"""PB-HNO benchmarks: Notch parameter recovery over seeds, counterfactual forecasts, rollout speed.

    python scripts/bench_surrogate.py --quick                 # CPU-sized: 3 seeds, short training
    python scripts/bench_surrogate.py --quick --seeds 30 --ray --recovery-settings '{"epochs": 4}'
    python scripts/bench_surrogate.py --seeds 30 --ray         # full settings (a GPU job)
    python scripts/bench_surrogate.py --quick --parts counterfactual --episodes 8 --epochs 20
The counterfactual part fits a model per env (--envs) on random-pulse episodes, forecasts unseen
step/ramp schedules, and times a rollout against the simulator at matched accuracy.
Recovery is the ``table1`` reproduction (PB-HNO beside the true-model MAP, the Cramer-Rao bound and
the prior mean, bootstrap intervals over seeds; resumable); its report goes to
``<out>/results/table1/<setting>/``. Results (JSON per part) go to --out; paste the markdown
summary into docs/benchmarks.md.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from pbhno_gym.benchmarks.sim import machine_description
from pbhno_gym.benchmarks.surrogate import counterfactual, fit_for_forecast, rollout_speed
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.experiments.compare import provenance
from pbhno_gym.experiments.reproduce import reproduce
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig
from pbhno_gym.utils.io import atomic_write_json

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--quick", action="store_true")
p.add_argument("--seeds", type=int, default=None, help="recovery seeds (default: 3 quick, 30 full)")
p.add_argument("--recovery-methods", nargs="+", default=["map", "pbhno"])
p.add_argument("--recovery-settings", default="{}", help="PB-HNO setting overrides for recovery, as JSON")
p.add_argument("--ray", action="store_true", help="run recovery tasks on a local Ray instance")
p.add_argument("--episodes", type=int, default=32)
p.add_argument("--epochs", type=int, default=300)
PARTS = ["recovery", "counterfactual", "speed"]  # speed: untrained models (the skeleton), no fitting
p.add_argument("--parts", nargs="+", default=PARTS[:2], choices=PARTS)
p.add_argument("--envs", nargs="+", default=["pbhno/Wnt-v1", "pbhno/Notch-v1"], help="counterfactual envs")
p.add_argument("--batches", nargs="+", type=int, default=None, help="rollout batches (default 1 8 or 1 64)")
p.add_argument(
    "--field-modes",
    type=int,
    default=0,
    help="field envs: PB-HNO with the field in its lowest m x m cosine modes (2 coupled sub-steps, RK4 x 2)",
)
p.add_argument(
    "--hidden",
    type=int,
    nargs="+",
    default=None,
    help="speed: cell-MLP widths to time, each against the simulator in the same run (default: the "
    "setting's own, 64 quick / 128 full; the comparison's PB-HNO MPC uses 16)",
)
p.add_argument("--out", default="outputs/bench_surrogate")
p.add_argument("--threads", type=int, default=None)
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
args = p.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
if args.quick:
    args.episodes, args.epochs = min(args.episodes, 12), min(args.epochs, 40)
# quick: CPU-sized networks; full: Table II (width 32, 32 cosine modes, 4 layers, MLP 128)
model_kw = {"solver": "rk4", "adjoint": False, "substeps": 16}
sizes = {"width": 16, "modes": 12, "hidden": 64} if args.quick else {"width": 32, "modes": 32, "hidden": 128}
model_kw |= sizes
# Notch: field and cells together in 8 ETD-RK2 sub-steps of the 30-min interval (docs/surrogate.md).
# Wnt: theta calibration costs 2p+1 field rollouts per evaluation on the 64x64 grid, so its
# quick setting fits four transport/readout rates (Wnt) and Table I's five (Notch).
per_env = {
    "pbhno/Wnt-v1": {"free_params": None if not args.quick else ["D_L", "lambda_L", "s0", "k_dc"]},
    "pbhno/Notch-v1": {
        "substeps": 32,
        "field_substeps": 8,
        "free_params": None if not args.quick else ["k_on", "delta_N", "alpha_H", "K_H", "delta_H"],
    },
}
if args.field_modes:  # the modal form, as agents/mpc_surrogate.toml plans Wnt with it
    for env_id in args.envs:
        if load_spec(env_id).layout.kind != "none":
            per_env[env_id] = {
                **per_env.get(env_id, {}),
                "field_modes": args.field_modes,
                "field_substeps": 2,
                "substeps": 2,
            }
out = Path(args.out)
summary: dict = {
    **provenance(" ".join(["python", *sys.argv])),  # git hash with a dirty flag, packages, date, command
    "machine": machine_description(args.device),  # the device's description (GPU name on a GPU)
    "args": vars(args),
}

if "recovery" in args.parts:
    summary["recovery"] = reproduce(
        "table1",
        quick=args.quick,
        methods=args.recovery_methods,
        seeds=args.seeds,
        results_dir=out / "results",
        runs_dir=out / "runs" / "reproduce",
        executor="ray" if args.ray else "local",
        method_settings={"pbhno": {"device": args.device, **json.loads(args.recovery_settings)}},
    )
    print(json.dumps(summary["recovery"], indent=2, default=str))

if "counterfactual" in args.parts:
    res = {}
    for env_id in args.envs:
        extra = per_env.get(env_id, {})
        model, _ = fit_for_forecast(
            env_id,
            args.episodes,
            args.epochs,
            {**model_kw, **extra},
            out / "runs" / env_id.replace("/", "_"),
            device=args.device,
            horizon=24,
        )
        res[env_id] = counterfactual(model, env_id)
        for b in args.batches or (1, 8):
            res[env_id][f"speed_b{b}"] = rollout_speed(model, b)
        print(env_id, json.dumps(res[env_id], indent=2))
    summary["counterfactual"] = res

if "speed" in args.parts:  # rollout wall time at matched accuracy; weights do not change the cost
    res = {}
    for env_id in args.envs:
        for hidden in args.hidden or [model_kw["hidden"]]:
            kw = {**model_kw, **per_env.get(env_id, {}), "free_params": None, "hidden": hidden}
            model = PBHNO(PBHNOConfig(env_spec=load_spec(env_id).to_dict(), **kw), device=args.device)
            key = env_id if not args.hidden else f"{env_id} hidden={hidden}"
            res[key] = {f"b{b}": rollout_speed(model, b) for b in args.batches or (1, 64)}
            print(key, json.dumps(res[key], indent=2))
    summary["speed"] = res

atomic_write_json(out / "summary.json", summary)
print(json.dumps(summary, indent=2, default=str))
