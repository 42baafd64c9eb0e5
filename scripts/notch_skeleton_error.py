"""How far PB-HNO's mechanistic skeleton is from the simulator on ``notch_sparse`` (issue 15).

PB-HNO with untrained networks *is* its skeleton: the cells by fixed-step RK4, coupled to the
ligand field in ``field_substeps`` ETD-RK2 sub-intervals, the field on the grid or in its lowest
``field_modes`` cosine modes. Rolled out at the true parameters on a design's controls, its
observed species are compared with the simulator's noise-free states that generated the data
(``Dataset["x"]``): relative rms error per observed species (rms difference over the mean level).

    python scripts/notch_skeleton_error.py            # seed 0, the settings in the table below
    python scripts/notch_skeleton_error.py --objectives 3   # both objectives at both estimates

``--objectives SEED``: the negative log posterior of that seed's data under the true model
(the MAP's problem, float64 simulator) and under PB-HNO's skeleton (the calibration's problem,
8 x 8 modes, K = 8, float32 and float64), each at the true-model MAP's and at PB-HNO's estimate
from ``docs/results/misspec/notch_sparse/records.csv``: which point each problem prefers.
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np
import torch

from pbhno_gym.discovery import get_design
from pbhno_gym.discovery.design import make_dataset
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

# (field_modes, field_substeps, cell substeps, dtype); "auto" cell steps: RK4 steps <= 1 / fastest rate
SETTINGS = [
    (8, 1, "auto", "float64"),
    (8, 2, "auto", "float64"),
    (8, 8, "auto", "float64"),
    (8, 8, "auto", "float32"),  # what scripts/misspec.py --design notch_sparse fits with
    (8, 16, "auto", "float64"),
    (8, 32, "auto", "float64"),
    (None, 8, "auto", "float32"),
    (16, 32, "auto", "float64"),
]


def objectives(design, seed: int, records: str) -> None:
    from pbhno_gym.discovery.prior import Prior
    from pbhno_gym.discovery.problem import SimulatorProblem
    from pbhno_gym.surrogate.calibrate import ModelProblem
    from pbhno_gym.surrogate.data import EpisodeTensors
    from pbhno_gym.surrogate.method import _with_noise

    free = list(design.free)
    ds = _with_noise(make_dataset(design, seed))
    prior = Prior.from_meta(ds.meta, free)
    est: dict[str, dict[str, float]] = {}
    with open(records) as f:
        for r in csv.DictReader(f):
            if int(r["seed"]) == seed and r["method"] in ("map_generator", "pbhno"):
                est.setdefault(r["method"], {})[r["parameter"]] = float(r["estimate"])
    pts = np.array([[est[m][n] for n in free] for m in ("map_generator", "pbhno")])
    print(f"seed {seed}: -log posterior at (true-model MAP, PB-HNO estimate)")
    print("| problem | at the MAP | at PB-HNO's | prefers |\n|---|---:|---:|---|")

    def row(name: str, v: np.ndarray) -> None:
        print(f"| {name} | {v[0]:.3f} | {v[1]:.3f} | {'the MAP' if v[0] < v[1] else 'PB-HNO'} |", flush=True)

    row("true model (float64 simulator)", SimulatorProblem(ds, free, prior).neg_log_lik(pts, use_prior=True))
    for dtype in ("float32", "float64"):
        cfg = PBHNOConfig(
            env_spec=ds.meta["spec"],
            free_params=free,
            solver="rk4",
            adjoint=False,
            field_substeps=8,
            field_modes=8,
            correction_form="modulation",
            gate_rest=True,
            dtype=dtype,
            design=ds.meta["design"],
        )
        model = PBHNO(cfg)
        with torch.no_grad():  # the design's prior, as fit_pbhno sets it
            model.prior_mean[model.free_index] = torch.as_tensor(prior.mean, dtype=model.dtype)
            model.prior_sigma[model.free_index] = torch.as_tensor(prior.sd, dtype=model.dtype)
        data = EpisodeTensors.from_dataset(ds, dtype=model.dtype)
        x0 = model.initial_state(1).x
        delta = torch.zeros(data.actions.shape[0], *x0.shape[1:], dtype=model.dtype)
        skeleton = ModelProblem(model, data, delta)
        row(f"PB-HNO skeleton, 8 x 8 modes, K = 8, {dtype}", skeleton.neg_log_lik(pts, use_prior=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--design", default="notch_sparse")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--objectives", type=int, default=None, metavar="SEED")
    p.add_argument("--records", default="docs/results/misspec/notch_sparse/records.csv")
    args = p.parse_args()
    torch.set_num_threads(1)
    design = get_design(args.design)
    if args.objectives is not None:
        objectives(design, args.objectives, args.records)
        return
    ds = make_dataset(design, args.seed)
    truth = torch.as_tensor(ds["x"], dtype=torch.float64)  # (E, T + 1, N, S), noise-free
    species = " | ".join(design.observed)
    print(f"| field modes | coupled sub-steps K | cell RK4 steps | dtype | {species} | s |")
    print("|---|---:|---:|---|" + "---:|" * len(design.observed) + "---:|")
    for modes, K, sub, dtype in SETTINGS:
        cfg = PBHNOConfig(
            env_spec=ds.meta["spec"],
            free_params=list(design.free),
            solver="rk4",
            adjoint=False,
            substeps=sub,
            field_substeps=K,
            field_modes=modes,
            correction_form="modulation",
            gate_rest=True,
            dtype=dtype,
            design=ds.meta["design"],
        )
        model = PBHNO(cfg)
        lt = model.log_theta.detach().clone()
        lt[model.free_index] = torch.as_tensor(ds["log_theta"][0], dtype=lt.dtype)[model.free_index]
        u = torch.as_tensor(ds["actions"], dtype=model.dtype)
        t0 = time.perf_counter()
        with torch.no_grad():
            states, _ = model.rollout(model.initial_state(u.shape[0], lt), u, lt)
        x = torch.stack([z.x for z in states], 1).double()
        errs = []
        for name in design.observed:
            i = model.pathway.species.index(name)
            errs.append(float(((x[..., i] - truth[..., i]) ** 2).mean().sqrt() / truth[..., i].abs().mean()))
        cells = " | ".join(f"{100 * e:.2f}%" for e in errs)
        wall = time.perf_counter() - t0
        row = f"| {modes or 'grid'} | {K} | {model.cell_substeps} | {dtype} | {cells} | {wall:.1f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
