"""Pilot of PB-HNO variants on ``mapk_feedback`` (issue 15): per-seed log-MAE, log-k1 error and
counterfactual RMSE of each variant next to the correct-model and skeleton MAPs of the same run.

    python scripts/misspec_pilot.py --seeds 0 1 2 3 --variants base mod_gate

Variants (settings on top of scripts/misspec.py's quick PB-HNO settings): see ``VARIANTS``.
Writes one CSV row per (seed, method) to --out.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import time

import numpy as np

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
p.add_argument("--variants", nargs="+", default=["base", "mod_gate"])
p.add_argument("--epochs", type=int, default=12)
p.add_argument("--workers", type=int, default=1)
p.add_argument("--out", default="misspec_pilot.csv")
args = p.parse_args()

QUICK = dict(  # scripts/misspec.py --quick
    members=1,
    epochs=12,
    patience=12,
    lr=1e-2,
    substeps=4,
    correction_cap=4.0,
    calibrate_nfev=0,
    sens_every=10,
)
ADDITIVE = {"correction_form": "additive", "gate_rest": False}
VARIANTS = {
    "base": ADDITIVE,  # the old default: additive ungated correction, orth 30
    "base_e40": {**ADDITIVE, "epochs": 40, "patience": 40},
    "add_gate": {**ADDITIVE, "gate_rest": True},  # additive, zero at the rest state
    "mod_gate": {"correction_form": "modulation", "gate_rest": True, "loss": {"orth": 0.0}},
    "mod_gate_orth": {"correction_form": "modulation", "gate_rest": True},
    "mod": {"correction_form": "modulation", "loss": {"orth": 0.0}},
    "mod_gate_orth_e40": {"correction_form": "modulation", "gate_rest": True, "epochs": 40, "patience": 40},
    "mod_gate_e40": {
        "correction_form": "modulation",
        "gate_rest": True,
        "loss": {"orth": 0.0},
        "epochs": 40,
        "patience": 40,
    },
}


def run_seed(seed: int) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    from pbhno_gym.discovery import get_design
    from pbhno_gym.discovery.design import design_model, make_dataset
    from pbhno_gym.discovery.prior import Prior
    from pbhno_gym.discovery.registry import fit

    design = get_design("mapk_feedback")
    ds = make_dataset(design, seed)
    cf = make_dataset(design, seed, stream=1, pulse={"p_on": 0.5, "p_off": 0.3})
    truth_cf = design_model(design).channels(torch.as_tensor(cf["x"], dtype=torch.float64), None).numpy()
    free = design.free
    prior = Prior.from_meta(ds.meta, free)
    truth = np.asarray(ds.meta["true_log_theta"])[[ds.meta["true_param_names"].index(n) for n in free]]
    rows = []

    def record(label, res, kept=""):
        err = res.log_theta - truth
        rmse = float(np.sqrt(((res.predictor.forecast(cf) - truth_cf) ** 2).mean()))
        rows.append(
            dict(
                seed=seed,
                method=label,
                mae=f"{np.abs(err).mean():.4f}",
                k1_err=f"{err[0]:+.4f}",
                cf_rmse=f"{rmse:.4f}",
                kept=kept,
                wall_s=f"{res.wall_s:.1f}",
                errs=" ".join(f"{e:+.3f}" for e in err),
            )
        )
        print(rows[-1], flush=True)

    ms = {"n_starts": 3, "max_nfev": 30, "jac_mode": "fd"}
    record("map_generator", fit("map", ds, free, prior, seed=seed, settings=ms))
    skel = fit("map_skeleton", ds, free, prior, seed=seed, settings=ms)
    record("map_skeleton", skel)
    for v in args.variants:
        s = {**QUICK, "epochs": args.epochs, "patience": args.epochs, **VARIANTS[v]}
        res = fit("pbhno", ds, free, prior, seed=seed, settings={**s, "start_log_theta": skel.log_theta})
        record(f"pbhno_{v}", res, str(int(np.mean(res.meta["networks_kept"]) >= 0.5)))
    return rows


t0 = time.perf_counter()
rows: list[dict] = []
with mp.get_context("fork").Pool(args.workers) as pool:
    for r in pool.imap_unordered(run_seed, args.seeds):
        rows += r
        rows.sort(key=lambda d: (d["seed"], d["method"]))
        with open(args.out, "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(rows)
print(f"{(time.perf_counter() - t0) / 60:.1f} min", flush=True)
