"""Moving-horizon estimation: recovery of a known state (and theta) from the measurements."""

import pytest
import torch

from pbhno_gym.control import SimulatorModel
from pbhno_gym.control.jacobian import batched_jacobian
from pbhno_gym.control.mhe import MHEWindow, MovingHorizonEstimator
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.physics.simulator import SimState

from .helpers import F64, mapk_model


@pytest.fixture(scope="module")
def model():
    return mapk_model()


def _data(model, B, steps, seed, log_theta=None, warmup=15):
    """A trajectory under random controls: states z_0..z_steps and noise-free measurements."""
    g = torch.Generator().manual_seed(seed)
    lt = model.theta.log_values.expand(B, -1).clone() if log_theta is None else log_theta
    U = torch.rand(B, warmup + steps, 2, generator=g, dtype=F64) * model.control_high * torch.tensor([1, 0.3])
    z = model.initial_state(B, lt)
    for k in range(warmup):
        z = model.step(z, U[:, k], lt)
    zs = [z]
    for k in range(steps):
        zs.append(model.step(zs[-1], U[:, warmup + k], lt))
    y = torch.stack([model.measure(s) for s in zs], 1)
    return zs, y, U[:, warmup:], lt


def test_mhe_recovers_a_known_state_from_noise_free_data(model):
    W, B = 8, 3
    zs, y, U, lt = _data(model, B, W, seed=0)
    fresh = torch.rand(y.shape, generator=torch.Generator().manual_seed(1)) < 0.7  # irregular sampling
    fresh[:, -1] = fresh[:, 0] = fresh[2, W - 4] = True  # the windows' ends are measured
    n_steps = torch.tensor([W, W, 4])  # problem 2: a younger episode, window starts at slot W - 4
    win = MHEWindow(y, fresh, U, n_steps)
    start_true = zs[0].x.clone()
    start_true[2] = zs[W - 4].x[2]
    prior = SimState(start_true * torch.tensor([1.3, 0.7, 1.25], dtype=F64), None, zs[0].t)  # 25-30% off
    est = MovingHorizonEstimator(model, iterations=25, tol=1e-14)
    res = est.estimate(win, prior, torch.full((B,), 10.0, dtype=F64), lt)  # a weak prior
    torch.testing.assert_close(res.z_end.x, zs[-1].x, rtol=2e-3, atol=2e-4)
    torch.testing.assert_close(res.z_start.x[..., 2], start_true[..., 2], rtol=1e-3, atol=1e-4)  # measured
    # X, Y are observed only through Z: recovered, less precisely, from far-off priors
    err, err_prior = (res.z_start.x - start_true).abs(), (prior.x - start_true).abs()
    assert float(err.sum()) < 0.3 * float(err_prior.sum()) and float(err.max()) < 0.08


def test_mhe_condensed_jacobian_equals_replicated_rows(model):
    W, B = 5, 2
    zs, y, U, lt = _data(model, B, W, seed=2)
    win = MHEWindow(y, torch.ones_like(y, dtype=torch.bool), U, torch.tensor([W, 3]))
    est = MovingHorizonEstimator(model, estimate_theta=True)
    prior, sig = zs[0], torch.full((B,), 0.3, dtype=F64)
    eps = est._eps(prior)
    v = 0.1 * torch.randn(B, 3 + 7, generator=torch.Generator().manual_seed(0), dtype=F64)
    v[:, 3:] += lt
    args = (win, prior, sig, eps, lt, model.theta.log_values, model.theta.prior_sd)
    r1 = est._residuals(v, torch.arange(B), *args)
    _, J1 = batched_jacobian(lambda x, rep: est._residuals(x, rep, *args), v, r1.shape[1])
    r2, J2 = est._condensed(v, torch.arange(B), *args)
    torch.testing.assert_close(r1, r2)
    torch.testing.assert_close(J1, J2)


def test_theta_estimation_fits_and_predicts_a_perturbed_system(model):
    W, B = 20, 2
    lt_true = model.theta.log_values + 0.5 * torch.randn(
        B, 7, generator=torch.Generator().manual_seed(3), dtype=F64
    )
    zs, y, U, _ = _data(model, B, W + 8, seed=4, log_theta=lt_true, warmup=0)
    win = MHEWindow(y[:, : W + 1], torch.ones(B, W + 1, 1, dtype=torch.bool), U[:, :W], torch.full((B,), W))
    prior, sig = model.initial_state(B), torch.full((B,), 0.05, dtype=F64)  # cells start at rest
    nominal = model.theta.log_values.expand(B, -1).clone()
    out = {}
    for th in (False, True):
        est = MovingHorizonEstimator(model, iterations=15, tol=1e-10, estimate_theta=th)
        res = est.estimate(win, prior, sig, nominal)
        z, err = res.z_end, 0.0
        for k in range(8):  # predict beyond the window
            z = model.step(z, U[:, W + k], res.log_theta)
            err = err + (model.measure(z) - y[:, W + 1 + k]).pow(2).sum(1)
        out[th] = (res.cost, err.sqrt())
    assert bool((out[True][0] < 0.1 * out[False][0]).all())
    assert bool((out[True][1] < 0.2 * out[False][1]).all())


def test_field_pathway_mhe_runs_by_adam_and_lowers_its_cost():
    spec = load_spec("pbhno/Notch-v1", {"layout": {"ny": 16, "nx": 16}})
    m = SimulatorModel(spec)
    B, W = 1, 2
    z = m.initial_state(B)
    U = m.control_high.expand(B, W, -1) * 0.5
    for _ in range(4):  # away from rest: H is measurable
        z = m.step(z, U[:, 0])
    zs = [z]
    for k in range(W):
        zs.append(m.step(zs[-1], U[:, k]))
    y = torch.stack([m.measure(s) for s in zs], 1)
    prior = SimState(zs[0].x * 1.3, zs[0].L * 0.7 + 0.01, zs[0].t)
    win = MHEWindow(y, torch.ones_like(y, dtype=torch.bool), U, torch.full((B,), W))
    lt = m.theta.log_values.expand(B, -1)
    for solver in ("lm", "adam"):  # cells + one field scale: 11 unknowns (auto picks LM)
        est = MovingHorizonEstimator(m, iterations=5, lr=0.1, solver=solver)
        before = est.estimate(win, prior, torch.ones(B), lt, iterations=0).cost
        res = est.estimate(win, prior, torch.ones(B), lt)
        assert res.z_end.L.shape == (B, 16, 16) and bool((res.z_end.L >= 0).all())
        assert float(res.cost[0]) < 0.2 * float(before[0])


def test_mhe_rejects_bad_arguments(model):
    with pytest.raises(ValueError, match="solver"):
        MovingHorizonEstimator(model, solver="bfgs")
    with pytest.raises(ValueError, match="noise"):
        MovingHorizonEstimator(model, additive_noise=0.0, multiplicative_noise=0.0)
