"""Designs generate valid, reproducible datasets; the shared result/prior/registry types validate."""

import threading

import numpy as np
import pytest

from pbhno_gym.data import load_dataset, save_dataset
from pbhno_gym.discovery.batching import LockstepBatcher, run_lockstep
from pbhno_gym.discovery.design import make_dataset, simulate_prior
from pbhno_gym.discovery.designs import get_design
from pbhno_gym.discovery.prior import Prior
from pbhno_gym.discovery.registry import Method, available_methods, get_method, register_method
from pbhno_gym.discovery.result import FitResult


def test_dataset_matches_design_and_roundtrips(tmp_path):
    d = get_design("notch_sparse")
    ds = make_dataset(d, 3)
    E, T1, C = ds["meas_mask"].shape
    assert (E, T1, C) == (d.n_traj, 49, 2 * len(d.observed))  # two cells x (N, H)
    # 12 irregular times per trajectory, every channel measured at them, none at t = 0
    per_traj = ds["meas_mask"].any(-1)
    assert (per_traj.sum(1) == 12).all() and not per_traj[:, 0].any()
    assert not np.array_equal(per_traj[0], per_traj[1])
    assert np.isnan(ds["meas_values"][~ds["meas_mask"]]).all()
    # the noise is the recorded additive sd: residuals about the clean channels ~ N(0, 0.2^2)
    from pbhno_gym.experiments.sweep import _clean_channels

    res = (ds["meas_values"] - _clean_channels(ds))[ds["meas_mask"]]
    assert ds.meta["noise_sd"] == [0.2] * C and 0.12 < res.std() < 0.28
    true = np.asarray(ds.meta["true_log_theta"])
    names = ds.meta["param_names"]
    free_idx = [names.index(n) for n in d.free]
    fixed = np.setdiff1d(np.arange(len(names)), free_idx)
    np.testing.assert_allclose(true[fixed], np.asarray(ds.meta["prior_mean"])[fixed])
    assert np.all(np.abs(true[free_idx] - np.asarray(ds.meta["prior_mean"])[free_idx]) <= 2 * 0.5 + 1e-9)
    save_dataset(tmp_path / "d.npz", ds.arrays, ds.meta)
    back = load_dataset(tmp_path / "d.npz")
    np.testing.assert_array_equal(back["meas_mask"], ds["meas_mask"])
    assert back.meta["design"]["name"] == "notch_sparse" and back.meta["design"]["seed"] == 3


def test_seeds_streams_and_common_random_numbers():
    a, b = make_dataset("mapk_smooth", 5), make_dataset("mapk_smooth", 5)
    np.testing.assert_array_equal(a["meas_values"], b["meas_values"])
    c = make_dataset("mapk_smooth", 6)
    assert not np.allclose(a["log_theta"], c["log_theta"])
    lo = make_dataset("mapk_smooth", 5, noise=0.001)  # same system, controls and times, less noise
    np.testing.assert_array_equal(lo["log_theta"], a["log_theta"])
    np.testing.assert_array_equal(lo["meas_mask"], a["meas_mask"])
    test = make_dataset("mapk_smooth", 5, stream=1)  # new experiment, same system
    np.testing.assert_array_equal(test["log_theta"], a["log_theta"])
    assert not np.allclose(test["actions"], a["actions"])
    prior = simulate_prior(get_design("mapk_smooth"), [4, 5])
    np.testing.assert_allclose(
        prior["meas_values"][1], a["meas_values"], rtol=1e-5, atol=1e-6, equal_nan=True
    )
    with pytest.raises(ValueError, match="n_times"):
        make_dataset("mapk_smooth", 0, n_times=99)
    with pytest.raises(ValueError, match="Design.free"):
        make_dataset(get_design("mapk_smooth").replace(free=("k1", "nope")), 0)
    with pytest.raises(ValueError, match="Design.noise"):
        get_design("mapk_smooth", noise=-1.0)


def test_result_prior_and_registry_validate():
    with pytest.raises(ValueError, match="log_theta"):
        FitResult("m", ("a", "b"), [0.0])
    with pytest.raises(ValueError, match="cov"):
        FitResult("m", ("a",), [0.0], cov=np.eye(2))
    with pytest.raises(ValueError, match="not finite for \\['b'\\]"):
        FitResult("m", ("a", "b"), [0.0, np.nan])
    r = FitResult("m", ("a", "b"), [0.0, 1.0], cov=np.diag([0.25, 1.0]))
    lo, hi = r.intervals()
    np.testing.assert_allclose(hi - lo, 2 * 1.959964 * np.array([0.5, 1.0]), rtol=1e-5)
    r2 = FitResult.from_dict(r.to_dict())
    np.testing.assert_allclose(r2.cov, r.cov)
    s = FitResult("m", ("a",), [0.0], samples=np.linspace(-1, 1, 101)[:, None])
    assert s.intervals()[0][0] == pytest.approx(-0.95)
    assert FitResult("m", ("a",), [0.0]).intervals() is None
    with pytest.raises(ValueError, match="Prior.sd of 'b'"):
        Prior(("a", "b"), [0, 0], [1, 0])
    with pytest.raises(ValueError, match="not in the dataset"):
        Prior.from_meta({"param_names": ["a"], "prior_mean": [0], "prior_sigma": [1]}, ["zz"])
    assert {"mle", "map", "sbinn", "pinn_ode", "pinn_pde", "fno"} <= set(available_methods())
    with pytest.raises(ValueError, match="unknown discovery method 'nope'"):
        get_method("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_method(Method("mle", lambda *a, **k: None, "dup"))
    with pytest.raises(ValueError, match="family"):
        Method("x", lambda: None, "x", family="magic")


def test_lockstep_batcher_batches_all_workers():
    calls = []

    def batched(X):
        calls.append(len(X))
        return X**2, np.stack([np.diag(2 * x) for x in X])

    b = LockstepBatcher(batched, 4)
    steps = [1, 3, 2, 3]  # workers finish at different times

    def job(i):
        out = []
        for k in range(steps[i]):
            out.append(b.fun(i)(np.array([float(i + k)]))[0])
            b.jac(i)(np.array([float(i + k)]))  # cached: no extra batch
        return out

    res = run_lockstep(b, [job] * 4)
    assert res[2] == [4.0, 9.0] and res[3] == [9.0, 16.0, 25.0]
    assert calls == [4, 3, 2] and threading.active_count() >= 1
