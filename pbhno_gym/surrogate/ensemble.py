"""Deep ensembles of PB-HNO models: independent fits from different seeds and starting theta.

Member m trains with seed ``seed + m`` (network initialisation, minibatch order, validation
split) and, for m > 0, starts theta from a draw of the prior, so the spread of the members'
estimates reflects both optimisation and model uncertainty. Each member keeps its own run
directory and checkpoint, so an interrupted ensemble resumes member by member.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..data.format import Dataset
from .discovery import combine_members, laplace_summary
from .model import PBHNO, PBHNOConfig
from .train import TrainConfig, Trainer

__all__ = ["fit_ensemble"]


def fit_ensemble(
    dataset: Dataset,
    run_dir: str | Path,
    n_members: int = 5,
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = False,
    device=None,
    progress: bool = True,
) -> tuple[list[PBHNO], dict]:
    """Train ``n_members`` models; returns them and the pooled parameter summary."""
    run_dir = Path(run_dir)
    tc = train_config or TrainConfig()
    models, summaries = [], []
    for m in range(n_members):
        mdir = run_dir / f"member{m}"
        cfg = PBHNOConfig(env_spec=dataset.meta["spec"], **(model_config or {}))
        if m > 0 and cfg.init_log_theta is None:
            base = PBHNO(cfg, device=device)
            g = torch.Generator().manual_seed(tc.seed + 1000 + m)
            start = base.prior_mean + base.prior_sigma * torch.randn(len(base.param_names), generator=g)
            fixed = ~torch.isin(torch.arange(len(base.param_names)), base.free_index.cpu())
            start[fixed] = base.prior_mean[fixed]
            cfg.init_log_theta = start.tolist()
        torch.manual_seed(tc.seed + m)
        model = PBHNO(cfg, device=device)
        trainer = Trainer(model, dataset, dataclasses.replace(tc, seed=tc.seed + m), mdir)
        done = (mdir / "model.pt").exists() and resume
        if done:
            model = PBHNO.load(mdir / "model.pt", device=device)
            trainer.load_checkpoint()
        else:
            model = trainer.fit(resume=resume and trainer.ckpt_path.exists(), progress=progress)
        models.append(model)
        summaries.append(laplace_summary(model, dataset, trainer.delta))
    return models, combine_members(summaries)
