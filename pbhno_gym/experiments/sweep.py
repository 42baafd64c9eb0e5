"""Sweeps: seeds x noise x sparsity x method grids as independent, resumable tasks.

A :class:`Task` is one (design, seed, noise, sparsity, method) fit, optionally with a
counterfactual test (forecast under unseen controls) or a field reconstruction check. Running
a task simulates its dataset, fits the method from the registry, scores it against the truth
and writes one JSON record (atomically) to ``<out>/tasks/<task id>.json``; field arrays go to a
sibling ``.npz``. :func:`run_sweep` skips tasks whose record exists with status "ok" or "n/a"
(a killed sweep resumes where it stopped; failed tasks are retried), runs the rest in-process
(default) or on Ray (``executor="ray"``: a local Ray instance, or an existing cluster with
``ray_address``), and :func:`load_results` merges the records.

Pseudo-methods: ``"crlb"`` computes the Fisher information of the dataset at the true
parameters (autograd sensitivities) and records the Cramer-Rao bound; ``"nominal"`` reports the
prior mean (what one gets without fitting).
"""

from __future__ import annotations

import json
import re
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..utils.io import _atomic, atomic_write_json

__all__ = ["Task", "run_task", "run_sweep", "load_results", "task_grid", "PSEUDO_METHODS"]

PSEUDO_METHODS = ("crlb", "nominal")


@dataclass(frozen=True)
class Task:
    """One independent unit of a sweep (see the module docstring)."""

    design: str
    seed: int
    method: str
    noise: float | None = None
    n_times: int | None = None
    quick: bool = True
    settings: dict = field(default_factory=dict)
    counterfactual: dict | None = None  # {"pulse": {...}, "control_channels": [...]} for the test data
    field_check: bool = False
    tag: str = ""

    @property
    def id(self) -> str:
        parts = [
            self.tag or "t",
            self.design,
            self.method,
            f"noise{self.noise}",
            f"n{self.n_times}",
            f"s{self.seed}",
            "quick" if self.quick else "full",
        ]
        return re.sub(r"[^A-Za-z0-9_.=-]+", "-", "__".join(str(p) for p in parts))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


def task_grid(
    design: str,
    seeds: Sequence[int],
    methods: Sequence[str],
    noises: Sequence[float | None] = (None,),
    n_times: Sequence[int | None] = (None,),
    **kw,
) -> list[Task]:
    """The full grid of tasks (seeds x noise x sparsity x method)."""
    return [
        Task(design, int(s), m, nz, nt, **kw)
        for nz in noises
        for nt in n_times
        for s in seeds
        for m in methods
    ]


def _clean_channels(dataset) -> np.ndarray:
    """(E, T+1, C) noise-free channels of a dataset from its stored true states."""
    import torch

    from ..discovery.design import dataset_design, design_model

    model = design_model(dataset_design(dataset))
    x = torch.as_tensor(dataset["x"], dtype=torch.float64)
    L = torch.as_tensor(dataset["L"], dtype=torch.float64) if "L" in dataset.arrays else None
    return model.channels(x, L).numpy()


def run_task(task: Task, out_dir: str | Path | None = None) -> dict:
    """Run one task and return (and, with ``out_dir``, write) its record."""
    from ..discovery.design import make_dataset
    from ..discovery.designs import get_design
    from ..discovery.methods.pinn import NotApplicable
    from ..discovery.metrics import fit_errors
    from ..discovery.prior import Prior
    from ..discovery.registry import fit
    from ..discovery.result import FitResult

    t0 = time.perf_counter()
    rec: dict = {"task": task.to_dict(), "id": task.id, "status": "ok"}
    try:
        design = get_design(task.design)
        ds = make_dataset(design, task.seed, noise=task.noise, n_times=task.n_times)
        names = list(ds.meta["param_names"])
        free = list(design.free)
        true = np.asarray(ds.meta["true_log_theta"])[[names.index(n) for n in free]]
        prior = Prior.from_meta(ds.meta, free)
        rec.update(
            free=free,
            true_log_theta=true.tolist(),
            noise=ds.meta["design"]["noise"],
            n_times=ds.meta["design"]["n_times"],
        )
        if task.method == "crlb":
            from ..discovery.problem import SimulatorProblem
            from ..identifiability.practical import crlb, fisher_information

            F, _ = fisher_information(SimulatorProblem(ds), true)
            rec["crlb_sd"] = crlb(F).tolist()
            rec["posterior_bound_sd"] = crlb(F, prior.sd).tolist()
            rec["fisher_eigvals"] = np.linalg.eigvalsh(F).tolist()
        else:
            if task.method == "nominal":
                from ..discovery.predictors import MechanisticPredictor

                res = FitResult("nominal", prior.names, prior.mean, cov=np.diag(prior.sd**2))
                res.predictor = MechanisticPredictor(prior.names, prior.mean)
            else:
                res = fit(
                    task.method, ds, free, prior, seed=task.seed, quick=task.quick, settings=task.settings
                )
            rec["fit"] = res.to_dict()
            rec["metrics"] = fit_errors(res, true)
            if task.counterfactual is not None:
                cf = task.counterfactual
                test = make_dataset(
                    design,
                    task.seed,
                    noise=task.noise,
                    n_times=task.n_times,
                    stream=1,
                    pulse=cf.get("pulse"),
                    control_channels=cf.get("control_channels"),
                )
                truth = _clean_channels(test)
                pred = np.asarray(res.predictor.forecast(test))
                rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
                rec["counterfactual"] = dict(
                    rmse=rmse,
                    rel_rmse=rmse / float(np.sqrt(np.mean(truth**2))),
                    rmse_per_channel=np.sqrt(np.mean((pred - truth) ** 2, (0, 1))).tolist(),
                )
            if task.field_check:
                Lhat = res.predictor.field(ds) if res.predictor is not None else None
                if Lhat is None:
                    raise NotApplicable(f"{task.method} does not reconstruct the ligand field")
                Ltrue = ds["L"].astype(np.float64)
                rel_t = np.sqrt(
                    ((Lhat - Ltrue) ** 2).sum((-1, -2)) / np.maximum((Ltrue**2).sum((-1, -2)), 1e-30)
                )
                rec["field"] = dict(
                    rel_l2=float(np.sqrt(((Lhat - Ltrue) ** 2).sum() / (Ltrue**2).sum())),
                    rel_l2_per_time=rel_t.mean(0).tolist(),
                )
                if out_dir is not None:
                    path = Path(out_dir) / "tasks" / f"{task.id}.npz"
                    _atomic(
                        path,
                        lambda f: np.savez_compressed(
                            f, estimate=Lhat.astype(np.float32), truth=Ltrue.astype(np.float32)
                        ),
                    )
                    rec["field"]["arrays"] = path.name
    except NotApplicable as e:
        rec.update(status="n/a", message=str(e))
    except Exception as e:  # noqa: BLE001 - a failed task is recorded (and retried on resume)
        rec.update(
            status="failed", message=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-4000:]
        )
    rec["wall_s"] = time.perf_counter() - t0
    if out_dir is not None:
        atomic_write_json(Path(out_dir) / "tasks" / f"{task.id}.json", rec)
    return rec


def _done(path: Path) -> bool:
    try:
        return json.loads(path.read_text())["status"] in ("ok", "n/a")
    except (OSError, ValueError, KeyError):
        return False


def run_sweep(
    tasks: Sequence[Task],
    out_dir: str | Path,
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = True,
    resume: bool = True,
    ray_num_cpus: int | None = None,
) -> list[dict]:
    """Run the tasks not finished yet; returns the records of all ``tasks`` (merged from disk).

    Args:
        executor: "local" (in this process, one after another) or "ray".
        ray_address: an existing Ray cluster (``"auto"``, ``"ray://host:10001"``); None starts a
            local Ray instance for the run (and shuts it down afterwards).
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    todo = [t for t in tasks if not (resume and _done(out / "tasks" / f"{t.id}.json"))]
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("run_sweep: duplicate task ids (two tasks would write the same record)")
    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(todo),
        desc=f"sweep {out.name}",
        unit="task",
        disable=not progress,
    )
    if executor == "local":
        for t in todo:
            bar.set_postfix_str(t.id[-60:])
            run_task(t, out)
            bar.update(1)
    elif executor == "ray":
        try:
            import ray
        except ImportError as e:
            raise ImportError("executor='ray' needs Ray: pip install 'pbhno-gym[discovery]' (or ray)") from e
        started = not ray.is_initialized()
        if started:
            if ray_address is None:
                ray.init(num_cpus=ray_num_cpus, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=ray_address, log_to_driver=False)
        try:
            remote = ray.remote(num_cpus=1)(_run_task_dict)
            pending = [remote.remote(t.to_dict(), str(out.resolve())) for t in todo]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ray.get(done)
                bar.update(len(done))
        finally:
            if started:
                ray.shutdown()
    else:
        raise ValueError(f"run_sweep: executor must be 'local' or 'ray', got {executor!r}")
    bar.close()
    return load_results(out, ids)


def _run_task_dict(task: dict, out_dir: str) -> str:
    """Ray entry point (module-level so workers can import it): writes the record, returns its id."""
    import torch

    torch.set_num_threads(1)
    return run_task(Task(**task), out_dir)["id"]


def load_results(out_dir: str | Path, ids: Sequence[str] | None = None) -> list[dict]:
    """Records in ``<out>/tasks`` (only ``ids`` if given, in that order; missing ones skipped)."""
    d = Path(out_dir) / "tasks"
    if ids is None:
        paths = sorted(d.glob("*.json"))
    else:
        paths = [d / f"{i}.json" for i in ids]
    out = []
    for p in paths:
        if p.is_file():
            out.append(json.loads(p.read_text()))
    return out
