"""Gauss-Newton calibration of theta: batched per-row theta, MAP recovery, trainer stages, resume."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from pbhno_gym.surrogate.calibrate import ModelProblem, calibrate_theta
from pbhno_gym.surrogate.data import EpisodeTensors
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig
from pbhno_gym.surrogate.train import TrainConfig, Trainer

from .conftest import TRUE_MAPK, quick_config


def _model(ds, **kw):
    torch.manual_seed(0)
    return PBHNO(PBHNOConfig(**quick_config(ds.meta["spec"], **{"free_params": ["k5", "k6"], **kw})))


def _problem(model, ds):
    data = EpisodeTensors.from_dataset(ds, model.device, model.dtype)
    delta = torch.zeros(data.n_episodes, model.n_cells, len(model.pathway.species), dtype=model.dtype)
    return ModelProblem(model, data, delta), data, delta


def test_batched_rows_equal_one_theta_at_a_time(wnt_data):
    """Rows with different theta in one rollout give each row's own prediction (field pathway).

    In float64: a float32 rollout's round-off depends on the batch composition and on the CPU's
    kernels (AVX2 vs AVX-512), and the central difference divides it by 2h = 2e-2, so float32 rows
    differ by ~1e-3 relative there; in float64 both checks hold to ~1e-10."""
    free = list(_model(wnt_data, free_params=None, dtype="float64").free_names)
    model = _model(wnt_data, free_params=free[:3], dtype="float64")
    prob, _, _ = _problem(model, wnt_data)
    x0 = model.log_theta_free.detach().double().numpy()
    X = np.stack([x0, x0 + 0.3, x0 - 0.2])
    batched, J = prob.predict(X, jac=np.array([True, False, False]))
    for k in range(3):
        single, _ = prob.predict(X[k : k + 1])
        np.testing.assert_allclose(batched[k], single[0], rtol=1e-9, atol=1e-12)
    assert not np.allclose(batched[0], batched[1])
    h = 1e-2  # the Jacobian is the central difference it claims to be
    e0 = np.eye(3)[0]
    fd = (prob.predict((x0 + h * e0)[None])[0] - prob.predict((x0 - h * e0)[None])[0])[0] / (2 * h)
    np.testing.assert_allclose(J[0][:, 0], fd, rtol=1e-6, atol=1e-8)


def test_calibration_reaches_the_map_of_the_frozen_model(mapk_data):
    """Least squares lands on the minimiser SciPy's BFGS finds for the same posterior."""
    model = _model(mapk_data)
    prob, data, delta = _problem(model, mapk_data)
    x_prior = model.log_theta_free.detach().double().numpy()
    info = calibrate_theta(model, data, delta, max_nfev=30)
    x = model.log_theta_free.detach().double().numpy()
    assert info["improved"] and info["after"] < 0.5 * info["before"]

    def f(v):
        return float(prob.neg_log_lik(v, use_prior=True)[0])

    ref = minimize(f, x_prior, method="Nelder-Mead", options=dict(xatol=1e-5, fatol=1e-6, maxiter=400))
    assert f(x) <= ref.fun + 1e-3 * abs(ref.fun)
    np.testing.assert_allclose(x, ref.x, atol=5e-3)
    est = dict(zip(model.free_names, np.exp(x), strict=True))
    for k, v in TRUE_MAPK.items():
        assert abs(est[k] - v) / v < 0.1, (k, est[k], v)
    before = model.log_theta_free.detach().clone()  # at the optimum nothing improves: unchanged
    again = calibrate_theta(model, data, delta, max_nfev=3)
    assert again["after"] <= again["before"] and torch.allclose(model.log_theta_free, before, atol=1e-4)


def _trainer(ds, run_dir, **tc):
    cfg = TrainConfig(epochs=3, batch_size=12, tensorboard=False, patience=100, sens_every=0, seed=0, **tc)
    return Trainer(_model(ds), ds, cfg, run_dir)


def test_trainer_calibrates_first_polishes_last_and_resumes_without_redoing(mapk_data, tmp_path, monkeypatch):
    tr = _trainer(mapk_data, tmp_path / "a", calibrate_nfev=15, polish_nfev=5)
    model = tr.fit(progress=False)
    cal = tr.calibration
    assert set(cal) == {"calibrate", "polish"} and cal["calibrate"]["improved"]
    est = model.theta_dict()
    for k, v in TRUE_MAPK.items():
        assert abs(est[k] - v) / v < 0.1, (k, est[k], v)
    assert PBHNO.load(tmp_path / "a" / "model.pt") is not None
    saved = torch.load(tmp_path / "a" / "model.pt", weights_only=False)
    assert set(saved["extra"]["calibration"]) == {"calibrate", "polish"}

    # interrupted in the first epoch, after the calibration: the resumed run does not redo it
    calls = {"n": 0}
    original = Trainer.train_epoch

    def boom(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train_epoch", boom)
    cut = _trainer(mapk_data, tmp_path / "b", calibrate_nfev=15, polish_nfev=5)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    import pbhno_gym.surrogate.calibrate as cmod

    real = cmod.calibrate_theta

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(cmod, "calibrate_theta", counting)
    resumed = _trainer(mapk_data, tmp_path / "b", calibrate_nfev=15, polish_nfev=5)
    resumed.fit(resume=True, progress=False)
    assert calls["n"] == 1  # only the polish ran again
    for k, v in tr.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k
