"""Shared small datasets for the surrogate tests (built once per session)."""

import pytest
import torch

from pbhno_gym.data import collect_episodes

TRUE_MAPK = {"k5": 1.6, "k6": 0.35}
SMALL_WNT = {
    "layout": {
        "ny": 24,
        "nx": 24,
        "length_x": 96.0,
        "rows": 2,
        "cols": 2,
        "cell_size": 16.0,
        "source_width": 16.0,
    },
    "observation": {"n_ligand_samples": 8},
    "target": {"choices": [1, 2]},
}


@pytest.fixture(scope="session")
def mapk_data():
    torch.manual_seed(0)
    return collect_episodes(
        "pbhno/MAPK-v0",
        12,
        num_envs=12,
        seed=1,
        progress=False,
        horizon=20,
        true_parameters=TRUE_MAPK,
        observation={"sample_prob": 0.8},
    )


@pytest.fixture(scope="session")
def wnt_data():
    return collect_episodes("pbhno/Wnt-v1", 4, num_envs=4, seed=2, progress=False, horizon=6, **SMALL_WNT)


def quick_config(spec: dict, **kw) -> dict:
    base = dict(
        env_spec=spec, width=8, modes=6, n_layers=2, hidden=32, solver="rk4", adjoint=False, substeps=4
    )
    base.update(kw)
    return base


def small_wnt_model(spec, field_modes=None, seed: int = 0, **kw):
    """A small float64 PB-HNO on a Wnt spec (fixed-step RK4, tiny networks), seeded."""
    from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

    torch.manual_seed(seed)
    cfg = dict(
        env_spec=spec.to_dict(),
        dtype="float64",
        solver="rk4",
        adjoint=False,
        substeps=4,
        width=4,
        modes=4,
        hidden=8,
        n_layers=2,
        field_modes=field_modes,
    )
    return PBHNO(PBHNOConfig(**{**cfg, **kw}))


def misspec_problem(seed: int):
    """``mapk_feedback`` data of one seed: dataset, free names, prior, true free log theta and the
    skeleton's (misspecified) MAP fit, the baseline the model-error tests compare PB-HNO with."""
    import numpy as np

    from pbhno_gym.discovery import get_design
    from pbhno_gym.discovery.design import make_dataset
    from pbhno_gym.discovery.prior import Prior
    from pbhno_gym.discovery.registry import fit

    torch.set_num_threads(1)
    d = get_design("mapk_feedback")
    ds = make_dataset(d, seed)
    free = d.free
    prior = Prior.from_meta(ds.meta, free)
    truth = np.asarray(ds.meta["true_log_theta"])[[ds.meta["true_param_names"].index(n) for n in free]]
    skel = fit(
        "map_skeleton", ds, free, prior, seed=seed, settings={"n_starts": 3, "max_nfev": 30, "jac_mode": "fd"}
    )
    return ds, free, prior, truth, skel


@pytest.fixture(scope="session")
def misspec_fit_seed0():
    """``mapk_feedback`` seed 0 and PB-HNO fitted on it: one member, 3 alternating epochs from the
    skeleton MAP, marginal intervals (the estimates do not depend on the interval kind)."""
    from pbhno_gym.discovery.registry import fit

    ds, free, prior, truth, skel = misspec_problem(0)
    settings = dict(
        members=1,
        epochs=3,
        patience=3,
        optimizer="lbfgs",
        alternate_nfev=10,
        substeps=4,
        correction_cap=4.0,
        calibrate_nfev=0,
        start_log_theta=skel.log_theta,
        intervals="marginal",
    )
    res = fit("pbhno", ds, free, prior, seed=0, settings=settings)
    return ds, truth, skel, res


def check_resume_after_interrupt(make_trainer, tmp_path, monkeypatch, interrupt_at: int) -> None:
    """``make_trainer(run_dir)`` builds a Trainer. A run stopped by Ctrl-C at its ``interrupt_at``-th
    epoch, then resumed from its checkpoint, must end bit for bit where an uninterrupted run ends
    (weights, optimiser-driven history)."""
    from pbhno_gym.surrogate.train import Trainer

    ref = make_trainer(tmp_path / "ref")
    ref.fit(progress=False)
    original, calls = Trainer.train_epoch, {"n": 0}

    def boom(self):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", boom)
    with pytest.raises(KeyboardInterrupt):
        make_trainer(tmp_path / "cut").fit(progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    assert calls["n"] == interrupt_at  # the interruption happened mid-run
    resumed = make_trainer(tmp_path / "cut")
    resumed.fit(resume=True, progress=False)
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert [r["loss"] for r in ref.history] == [r["loss"] for r in resumed.history]
