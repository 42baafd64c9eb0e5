"""The paper's experiments (section V), one command each: ``pbhno reproduce <name>``.

One module per experiment (:mod:`.table1`, :mod:`.fig1`, :mod:`.fig3`,
:mod:`.counterfactual`) on the shared :mod:`.base`; :data:`EXPERIMENTS` maps names to them.
Every experiment is a sweep of independent tasks (:mod:`..sweep`) over the methods of the
discovery registry - the baselines and, once registered, PB-HNO and its ablations - plus a
report: a markdown table, a CSV and a PNG in ``docs/results/<name>/<setting>/`` next to
``config.json`` (the exact configuration, seeds, versions and the design). Task records live
in ``runs/reproduce/<name>/<setting>/tasks`` so an interrupted run resumes.

* ``table1``: Notch two-cell, 12 irregular time points, 20% noise (the ``notch_sparse``
  design): MAE (std), MAPE (std), Var over the first 10 seeds as the paper reports them, and
  over all seeds bootstrap intervals, median APE, coverage of the 95% intervals, the Cramer-Rao
  bound, beside the paper's numbers.
* ``fig1``: parameter MAE vs observation noise (log y) for the same methods, with the CRLB.
* ``fig3``: the Wnt ligand field reconstructed from 16 edge samples (``wnt_edges``) vs the
  truth, the error map and the relative L2 error per method.
* ``counterfactual``: forecast error under unseen control inputs (long, strong pulses never
  seen in training) per method.

``quick=True`` runs minutes-scale settings on a CPU; the full settings are for a long run or a GPU.
"""

from __future__ import annotations

import datetime
import platform
from pathlib import Path

import numpy as np

from ...utils.io import atomic_write_json
from ..sweep import Task, load_results, run_sweep
from .base import Experiment
from .counterfactual import CF_TEST, Counterfactual
from .fig1 import Fig1
from .fig3 import Fig3
from .table1 import PAPER_TABLE1, Table1

__all__ = ["CF_TEST", "EXPERIMENTS", "Experiment", "PAPER_TABLE1", "load_task_records", "reproduce"]

EXPERIMENTS: dict[str, Experiment] = {
    "table1": Table1("table1", "Notch parameter recovery, 12 irregular points, 20% noise (paper Table I)"),
    "fig1": Fig1("fig1", "parameter MAE vs observation noise (paper Fig. 1)"),
    "fig3": Fig3("fig3", "Wnt ligand field from sparse boundary observations (paper Fig. 3)"),
    "counterfactual": Counterfactual("counterfactual", "forecast error under unseen control inputs"),
}


def reproduce(
    name: str,
    quick: bool = True,
    methods: list[str] | None = None,
    seeds: int | None = None,
    results_dir: str | Path = "docs/results",
    runs_dir: str | Path = "runs/reproduce",
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = True,
    design: str | None = None,
    method_settings: dict[str, dict] | None = None,
    report_only: bool = False,
) -> dict:
    """Run (or resume) one experiment and write its report; returns paths and a summary.

    Args:
        design: run the experiment on another design than its own (e.g. a tiny one in tests).
        method_settings: per-method setting overrides on top of the quick/full settings.
        report_only: run nothing; report from the task records written so far (a partial or
            killed run; missing tasks are listed in config.json).
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    exp = EXPERIMENTS[name]
    setting = "quick" if quick else "full"
    cfg = exp.config(quick, methods, seeds)
    if design is not None:
        cfg["design"] = design
    cfg["method_settings"] = dict(method_settings or {})
    # amortised models (the plain FNO) are cached on disk, so experiments sharing a design train once
    fno = {"cache_dir": str(Path(runs_dir) / "cache"), **cfg["method_settings"].get("fno", {})}
    cfg["method_settings"]["fno"] = fno
    from ...discovery.designs import get_design
    from ...discovery.registry import available_methods

    design = get_design(cfg["design"])
    cfg["free"] = list(design.free)
    task_dir = Path(runs_dir) / name / setting
    cfg["task_dir"] = str(task_dir / "tasks")
    out = Path(results_dir) / name / setting
    tasks = [
        Task(**{**t.to_dict(), "settings": cfg["method_settings"].get(t.method, t.settings)})
        for t in exp.tasks(cfg)
    ]
    avail = available_methods()
    import torch

    cfg_record = dict(
        experiment=name,
        setting=setting,
        config={k: v for k, v in cfg.items() if k != "task_dir"},
        design=design.to_dict(),
        method_settings={
            m: avail[m].settings(quick, cfg["method_settings"].get(m))
            for m in cfg.get("methods", [])
            if m in avail
        },
        tasks=[t.to_dict() for t in tasks],
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions=dict(python=platform.python_version(), numpy=np.__version__, torch=torch.__version__),
        machine=platform.platform(),
        command=f"pbhno reproduce {name}{' --quick' if quick else ''}",
    )
    if report_only:
        results = load_results(task_dir, [t.id for t in tasks])
    else:
        results = run_sweep(tasks, task_dir, executor=executor, ray_address=ray_address, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    failed = [r for r in results if r["status"] == "failed"]
    cfg_record["failed_tasks"] = [dict(id=r["id"], message=r.get("message", "")) for r in failed]
    done = {r["id"] for r in results}
    cfg_record["missing_tasks"] = [t.id for t in tasks if t.id not in done]
    atomic_write_json(out / "config.json", cfg_record)
    summary = exp.report(results, cfg, out)
    return dict(
        out=str(out),
        n_tasks=len(tasks),
        n_failed=len(failed),
        n_missing=len(cfg_record["missing_tasks"]),
        **summary,
    )


def load_task_records(name: str, quick: bool = True, runs_dir: str | Path = "runs/reproduce") -> list[dict]:
    return load_results(Path(runs_dir) / name / ("quick" if quick else "full"))
