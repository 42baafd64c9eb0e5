"""How far PB-HNO's mechanistic skeleton is from the simulator on ``notch_sparse`` (issue 15).

PB-HNO with untrained networks *is* its skeleton: the cells by fixed-step RK4, coupled to the
ligand field in ``field_substeps`` ETD-RK2 sub-intervals, the field on the grid or in its lowest
``field_modes`` cosine modes. Rolled out at the true parameters on a design's controls, its
observed species are compared with the simulator's noise-free states that generated the data
(``Dataset["x"]``): relative rms error per observed species (rms difference over the mean level).

    python scripts/notch_skeleton_error.py            # seed 0, the settings in the table below
"""

from __future__ import annotations

import argparse
import time

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--design", default="notch_sparse")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    design = get_design(args.design)
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
