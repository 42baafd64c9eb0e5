"""Training: theta recovery, exact resume after an interruption, refusing bad files, reports, CLI."""

from functools import partial

import numpy as np
import pytest
import torch

from pbhno_gym.data import DatasetError, collect_episodes
from pbhno_gym.surrogate.discovery import combine_members, laplace_summary, theta_report, write_report
from pbhno_gym.surrogate.model import PBHNO, CheckpointError, PBHNOConfig
from pbhno_gym.surrogate.train import TrainConfig, Trainer

from .conftest import TRUE_MAPK, check_resume_after_interrupt, quick_config


def _trainer(ds, run_dir, epochs, seed=0, **tc):
    torch.manual_seed(seed)
    m = PBHNO(PBHNOConfig(**quick_config(ds.meta["spec"], free_params=["k5", "k6"])))
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=12,
        lr_theta=0.05,
        sens_every=5,
        tensorboard=False,
        patience=1000,
        seed=seed,
        **tc,
    )
    return Trainer(m, ds, cfg, run_dir)


def test_small_fit_recovers_mapk_theta_and_reports_uncertainty(mapk_data, tmp_path):
    tr = _trainer(mapk_data, tmp_path, epochs=30)
    model = tr.fit(progress=False)
    est = model.theta_dict()
    for k, v in TRUE_MAPK.items():  # nominal start: k5 = 1.0, k6 = 0.5
        assert abs(est[k] - v) / v < 0.15, (k, est[k], v)
    report = theta_report(combine_members([laplace_summary(model, mapk_data, tr.delta)]), mapk_data)
    assert report["mape"] < 0.15 and 0 <= report["coverage"] <= 1
    for row in report["parameters"]:
        assert row["ci95"][0] < row["estimate"] < row["ci95"][1] and row["sd_log"] < 0.5
    j, md = write_report(report, tmp_path)
    assert "k5" in md.read_text() and j.exists()
    assert (tmp_path / "log.csv").read_text().count("\n") == 31 and (tmp_path / "model.pt").exists()
    loaded = PBHNO.load(tmp_path / "model.pt")
    assert loaded.theta_dict() == pytest.approx(est)


def test_resume_after_interrupt_equals_uninterrupted(mapk_data, tmp_path, monkeypatch):
    make = partial(_trainer, mapk_data, epochs=4)  # make(run_dir)
    check_resume_after_interrupt(make, tmp_path, monkeypatch, interrupt_at=3)


def test_bad_checkpoints_and_datasets_are_refused(mapk_data, wnt_data, tmp_path):
    tr = _trainer(mapk_data, tmp_path, epochs=1)
    tr.fit(progress=False)
    raw = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        PBHNO.load(tmp_path / "trunc.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a PB-HNO checkpoint"):
        PBHNO.load(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        PBHNO.load(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="a saved model, not a training checkpoint"):
        tr.load_checkpoint(tmp_path / "model.pt")
    other = collect_episodes("pbhno/MAPK-v0", 12, num_envs=12, seed=9, progress=False, horizon=20)
    with pytest.raises(CheckpointError, match="different dataset"):
        _trainer(other, tmp_path, epochs=2).fit(resume=True, progress=False)
    m = PBHNO(PBHNOConfig(**quick_config(mapk_data.meta["spec"])))
    with pytest.raises(DatasetError, match="dataset is for 'pbhno/Wnt-v1'"):
        Trainer(m, wnt_data, TrainConfig(epochs=1), tmp_path / "x")


def test_cli_fit(mapk_data, tmp_path):
    from pbhno_gym.cli import main
    from pbhno_gym.data import save_dataset

    save_dataset(tmp_path / "d.npz", mapk_data.arrays, mapk_data.meta)
    assert (
        main(
            [
                "fit",
                "--data",
                str(tmp_path / "d.npz"),
                "--out",
                str(tmp_path / "run"),
                "--free",
                "k5,k6",
                "--epochs",
                "2",
                "--quick",
                "--batch-size",
                "12",
            ]
        )
        == 0
    )
    assert (tmp_path / "run" / "theta.md").exists() and (tmp_path / "run" / "model.pt").exists()
    assert np.isfinite(PBHNO.load(tmp_path / "run" / "model.pt").log_theta.detach().numpy()).all()


def test_non_finite_steps_are_skipped_and_theta_stays_in_the_prior_box(mapk_data, tmp_path, monkeypatch):
    import pbhno_gym.surrogate.train as train_mod

    tr = _trainer(mapk_data, tmp_path, epochs=1)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    real = train_mod.objective

    def nan_objective(*a, **k):
        loss, logs = real(*a, **k)
        return loss * float("nan"), logs

    monkeypatch.setattr(train_mod, "objective", nan_objective)
    tr.train_epoch()
    assert tr.skipped == len(tr._batches()) >= 1
    for k, v in tr.model.state_dict().items():  # nothing moved, nothing became NaN
        assert torch.equal(v, before[k]), k
    m = tr.model
    with torch.no_grad():
        m.log_theta_free.add_(10.0)
    m.project_theta_()
    idx = m.free_index
    hi = m.prior_mean[idx] + m.config.theta_box * m.prior_sigma[idx]
    assert torch.allclose(m.log_theta_free, hi)


def test_untrained_model_is_kept_when_training_does_not_improve_held_out_episodes(mapk_data, tmp_path):
    """The pre-training model is the first early-stopping candidate: wild network steps (lr 1) that
    worsen the validation misfit leave the learned correction at its zero initialisation."""
    torch.manual_seed(0)
    m = PBHNO(PBHNOConfig(**quick_config(mapk_data.meta["spec"], free_params=["k5", "k6"])))
    cfg = TrainConfig(
        epochs=3, batch_size=12, lr=1.0, lr_theta=0.0, val_frac=0.25, sens_every=0, tensorboard=False, seed=0
    )
    tr = Trainer(m, mapk_data, cfg, tmp_path)
    model = tr.fit(progress=False)
    assert len(tr.history) == 3 and all(r["val_y"] > tr.best_val for r in tr.history)
    last = model.cells.net[-1]
    assert torch.count_nonzero(last.weight) == 0 and torch.count_nonzero(last.bias) == 0


def test_first_adam_steps_on_the_fno_keep_the_skeleton_fit(wnt_data):
    """Regression: with a unit gain on the FNO's residual, Adam's first step (every weight moves by
    ~lr whatever its gradient) raised this loss ~4x; ``residual_scale`` keeps the step small."""
    from pbhno_gym.surrogate.data import EpisodeTensors
    from pbhno_gym.surrogate.losses import LossWeights, objective

    losses = {}
    for rs in (1.0, 0.01):
        torch.manual_seed(0)
        m = PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"], residual_scale=rs)))
        data = EpisodeTensors.from_dataset(wnt_data, m.device, m.dtype)
        delta = torch.zeros(data.n_episodes, m.n_cells, len(m.pathway.species))
        args = (data, delta, data.n_episodes, float(data.mask.sum()), LossWeights(), 0.05)
        opt = torch.optim.Adam(m.fno.parameters(), lr=1e-3)
        before, worst = objective(m, *args)[1]["y"], 0.0
        for _ in range(3):
            opt.zero_grad()
            objective(m, *args)[0].backward()
            opt.step()
            worst = max(worst, objective(m, *args)[1]["y"])
        losses[rs] = (before, worst)
    assert losses[1.0][1] > 1.5 * losses[1.0][0]  # the failure this guards against
    assert losses[0.01][1] <= 1.01 * losses[0.01][0]


class _RunsCode:
    """A pickle payload that would run code when unpickled (it must never be)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoints_load_weights_only_and_refuse_pickled_code(mapk_data, tmp_path):
    marker = tmp_path / "pwned"
    torch.save(
        {"format": "pbhno-model", "version": 1, "config": {}, "state_dict": {}, "x": _RunsCode(marker)},
        tmp_path / "evil.pt",
    )
    with pytest.raises(CheckpointError, match="pickled Python objects.*refusing to unpickle"):
        PBHNO.load(tmp_path / "evil.pt")
    tr = _trainer(mapk_data, tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        tr.load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    # a saved model and a training checkpoint round-trip through weights_only loading
    m = PBHNO(PBHNOConfig(**quick_config(mapk_data.meta["spec"], free_params=["k5"])))
    m.save(tmp_path / "m.pt", extra={"n": np.int64(3), "x": np.float64(0.5), "v": np.ones(2)})
    back = PBHNO.load(tmp_path / "m.pt")
    assert back.config == m.config
    for k, v in m.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    tr.save_checkpoint()
    tr.load_checkpoint()
    with pytest.raises(TypeError, match="not a tensor or plain value"):
        m.save(tmp_path / "bad.pt", extra={"obj": object()})


def test_fit_says_what_it_is_doing_before_calibration_and_quiet_stays_silent(
    mapk_data, tmp_path, capsys, monkeypatch
):
    import pbhno_gym.surrogate.calibrate as cmod
    from pbhno_gym.surrogate.fit import fit

    real, seen = cmod.calibrate_theta, {}

    def spy(*args, **kwargs):
        seen["err"] = capsys.readouterr().err  # what was on stderr when calibration started
        seen["progress"] = kwargs.get("progress")
        return real(*args, **kwargs)

    monkeypatch.setattr(cmod, "calibrate_theta", spy)
    tc = TrainConfig(epochs=1, batch_size=12, tensorboard=False, calibrate_nfev=1, sens_every=0)
    mc = quick_config(mapk_data.meta["spec"], free_params=["k5", "k6"])
    del mc["env_spec"]  # fit() takes it from the dataset
    fit(mapk_data, tmp_path / "loud", mc, tc, progress=True)
    assert "pbhno fit: building PB-HNO for pbhno/MAPK-v0" in seen["err"]
    assert "pbhno fit: theta calibration" in seen["err"] and seen["progress"] is True
    err = capsys.readouterr().err
    assert "pbhno fit: training: epochs 1..1" in err and "fit PB-HNO" in err and "theta report" in err
    fit(mapk_data, tmp_path / "quiet", mc, tc, progress=False)
    assert capsys.readouterr().err == ""
