"""``fit``: the one entry point that turns an episode dataset into a trained PB-HNO and its theta
report (``pbhno fit``, ``pbhno_gym.surrogate.fit``). It sits above the trainer and the ensemble,
which know nothing of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import load_dataset
from ..data.format import Dataset
from .discovery import combine_members, laplace_summary, theta_report, write_report
from .ensemble import fit_ensemble
from .model import PBHNO, PBHNOConfig
from .train import TrainConfig, Trainer, stage

__all__ = ["QUICK_MODEL", "PBHNOFit", "fit"]


QUICK_MODEL: dict[str, Any] = {
    "width": 16,
    "modes": 12,
    "solver": "rk4",
    "adjoint": False,
    "substeps": "auto",
}
"""Small CPU-sized model with a fixed-step solver (``pbhno fit --quick``)."""


@dataclass
class PBHNOFit:
    """What :func:`fit` produced: the trained model(s), the pooled theta summary and its report."""

    models: list[PBHNO]
    summary: dict[str, Any]
    model_path: Path  # the (first member's) saved model, for ``pbhno plan --model``
    report: dict[str, Any] | None = None  # :func:`.discovery.theta_report`
    report_paths: tuple[Path, Path] | None = None  # its JSON and Markdown files

    @property
    def model(self) -> PBHNO:
        """The (first member's) trained model."""
        return self.models[0]


def fit(
    dataset: Dataset | str | Path,
    run_dir: str | Path,
    model_config: dict[str, Any] | None = None,
    train_config: TrainConfig | None = None,
    *,
    ensemble: int = 1,
    quick: bool = False,
    resume: bool = False,
    device=None,
    progress: bool = True,
    report: bool = True,
) -> PBHNOFit:
    """Build PB-HNO for the dataset's environment, train it and report theta (``pbhno fit``).

    Args:
        dataset: a :class:`Dataset` or the path of one (``.npz`` from ``pbhno collect``).
        run_dir: checkpoints, logs, ``model.pt`` (``member<m>/`` per member with ``ensemble > 1``)
            and the theta report (``theta.json``/``theta.md``).
        model_config: :class:`PBHNOConfig` fields (the spec comes from the dataset).
        ensemble: deep-ensemble members (> 1: :func:`.ensemble.fit_ensemble`).
        quick: start from :data:`QUICK_MODEL` (``model_config`` still wins).
        report: write the theta report (Laplace intervals pooled over members).
    """
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    if not isinstance(dataset, Dataset):
        stage(f"loaded {dataset}", progress)
    mcfg = {**(QUICK_MODEL if quick else {}), **(model_config or {})}
    tcfg = train_config or TrainConfig()
    out = Path(run_dir)
    stage(
        f"building PB-HNO for {ds.meta['spec'].get('id', '?')} "
        f"({ds.n_episodes} episodes{', quick model' if quick else ''}"
        f"{f', ensemble of {ensemble}' if ensemble > 1 else ''}) -> {out}",
        progress,
    )
    if ensemble > 1:
        models, summary = fit_ensemble(
            ds, out, ensemble, mcfg, tcfg, resume=resume, device=device, progress=progress
        )
        model_path = out / "member0" / "model.pt"
    else:
        model = PBHNO(PBHNOConfig(env_spec=ds.meta["spec"], **mcfg), device=device)
        trainer = Trainer(model, ds, tcfg, out)
        models = [trainer.fit(resume=resume, progress=progress)]
        stage("Laplace intervals for theta (Gauss-Newton Hessian at the estimate)", progress)
        summary = combine_members([laplace_summary(models[0], ds, trainer.delta)])
        model_path = out / "model.pt"
    res = PBHNOFit(models, summary, model_path)
    if report:
        stage(f"writing the theta report ({out / 'theta.json'}, {out / 'theta.md'})", progress)
        res.report = theta_report(summary, ds)
        res.report_paths = write_report(res.report, out)
    return res
