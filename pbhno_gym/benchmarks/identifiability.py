"""Timings of the identifiability and likelihood machinery (used by scripts/bench_identifiability.py).

* Structural engines by model size: the mod-p Taylor engine vs symbolic Lie derivatives (the
  latter in a subprocess with a time limit, since it grows ~4.5x per order).
* Sensitivities of the Notch design: forward-mode autograd vs central differences, per call.
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import sympy as sp

from ..identifiability.structural import ODEModel, observability_test, pathway_ode
from ..physics import get_pathway

__all__ = ["structural_cases", "time_structural", "time_jacobians", "time_mle"]


def structural_cases() -> dict:
    """Name -> ODEModel, from 3 to 25 unknowns."""
    x, x1, x2 = sp.symbols("x x1 x2", positive=True)
    k1, k2, k01, k02, k12, k21 = sp.symbols("k1 k2 k01 k02 k12 k21", positive=True)
    u = sp.Symbol("u")
    notch = get_pathway("notch")
    five = ["k_on", "delta_N", "alpha_H", "K_H", "delta_H"]
    W = [[0.3, 0.1], [0.1, 0.3]]
    return {
        "product k1*k2": ODEModel([x], [k1, k2], [-k1 * k2 * x], [x]),
        "two-compartment": ODEModel(
            [x1, x2],
            [k01, k02, k12, k21],
            [-(k01 + k21) * x1 + k12 * x2 + u, k21 * x1 - (k02 + k12) * x2],
            [x1],
            inputs=[u],
        ),
        "MAPK, y=Z, all free": pathway_ode(get_pathway("mapk"), ["Z"])[0],
        "Notch cell, y=N,H, 5 free": pathway_ode(notch, ["N", "H"], five, controls={"gsi": 0.0})[0],
        "Notch two-cell, y=N,H, 5 free": pathway_ode(
            notch, ["N", "H"], five, controls={"gsi": 0.0}, exchange=W
        )[0],
        "Notch cell, y=N,H, all free": pathway_ode(notch, ["N", "H"])[0],
        "Notch two-cell, y=N,H, all free": pathway_ode(notch, ["N", "H"], controls={"gsi": 0.0}, exchange=W)[
            0
        ],
    }


def _run(name: str, method: str, q) -> None:
    t0 = time.perf_counter()
    r = observability_test(structural_cases()[name], method)
    q.put((time.perf_counter() - t0, r.rank))


def time_structural(timeout_s: float = 300.0, methods=("taylor", "lie")) -> list[dict]:
    """One row per (case, engine): unknowns, rank, seconds (None if over ``timeout_s``)."""
    rows = []
    ctx = mp.get_context("fork")
    for name, model in structural_cases().items():
        for m in methods:
            q = ctx.Queue()
            p = ctx.Process(target=_run, args=(name, m, q))
            p.start()
            p.join(timeout_s)
            if p.is_alive():
                p.terminate()
                p.join()
                rows.append(dict(case=name, unknowns=len(model.unknowns), method=m, seconds=None, rank=None))
            else:
                s, r = q.get()
                rows.append(dict(case=name, unknowns=len(model.unknowns), method=m, seconds=s, rank=r))
    return rows


def time_jacobians(design: str = "notch_sparse", ks=(1, 4)) -> list[dict]:
    """Seconds per batched prediction with and without Jacobian (autograd vs finite differences)."""
    from ..discovery.design import make_dataset
    from ..discovery.problem import SimulatorProblem

    ds = make_dataset(design, 0)
    rows = []
    for mode in ("autograd", "fd"):
        pr = SimulatorProblem(ds, jac_mode=mode)
        x = np.asarray(ds.meta["true_log_theta"])[pr.model.free_idx]
        for k in ks:
            X = np.tile(x, (k, 1))
            t0 = time.perf_counter()
            pr.predict(X)
            t1 = time.perf_counter()
            pr.predict(X, True)
            t2 = time.perf_counter()
            rows.append(dict(design=design, mode=mode, points=k, value_s=t1 - t0, jacobian_s=t2 - t1))
    return rows


def time_mle(design: str = "notch_sparse", n_starts: int = 3, max_nfev: int = 20) -> list[dict]:
    """One multistart MLE per Jacobian mode on the same dataset: seconds, optimum, agreement."""
    from ..discovery.design import make_dataset
    from ..discovery.methods.mle import fit_problem
    from ..discovery.problem import SimulatorProblem

    ds = make_dataset(design, 0)
    rows = []
    for mode in ("fd", "autograd"):
        pr = SimulatorProblem(ds, jac_mode=mode)
        t0 = time.perf_counter()
        r = fit_problem(pr, False, n_starts=n_starts, max_nfev=max_nfev)
        rows.append(
            dict(
                design=design,
                mode=mode,
                seconds=time.perf_counter() - t0,
                best_cost=r.meta["best_cost"],
                log_theta=r.log_theta.tolist(),
                nfev=r.meta["nfev"],
            )
        )
    return rows
