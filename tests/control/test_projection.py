"""Exact projection onto box bounds and the remaining cumulative dose."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from pbhno_gym.control.projection import is_feasible, project_schedule

LOW = torch.tensor([0.0, -0.5], dtype=torch.float64)
HIGH = torch.tensor([2.0, 0.7], dtype=torch.float64)


def _random(B=300, T=7, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    U = 3 * torch.randn(B, T, 2, generator=g, dtype=dtype)
    # caps from "no room" (T * low * dt) to "not binding", some unlimited
    dt = 0.5
    lo_sum = T * LOW.to(dtype) * dt
    cap = lo_sum + torch.rand(B, 2, generator=g, dtype=dtype) * (T * (HIGH - LOW).to(dtype) * dt)
    cap[::7, 0] = float("inf")
    return U, cap, dt


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_projected_schedule_is_feasible(dtype):
    U, cap, dt = _random(dtype=dtype)
    P = project_schedule(U, LOW.to(dtype), HIGH.to(dtype), cap, dt)
    atol = 1e-9 if dtype == torch.float64 else 1e-5
    assert bool(is_feasible(P, LOW.to(dtype), HIGH.to(dtype), cap, dt, atol=atol).all())
    assert not bool(is_feasible(U, LOW.to(dtype), HIGH.to(dtype), cap, dt).all())  # the test has teeth


def test_projection_is_idempotent_and_keeps_feasible_points():
    U, cap, dt = _random(seed=1)
    P = project_schedule(U, LOW, HIGH, cap, dt)
    torch.testing.assert_close(project_schedule(P, LOW, HIGH, cap, dt), P, rtol=0, atol=1e-12)


def test_projection_matches_a_qp_solve():
    """min ||v - u||^2 s.t. low <= v <= high, sum(v) dt <= cap, per channel, by SLSQP."""
    U, cap, dt = _random(B=25, T=6, seed=2)
    P = project_schedule(U, LOW, HIGH, cap, dt)
    n_binding = 0
    for b in range(U.shape[0]):
        for j in range(2):
            u, c = U[b, :, j].numpy(), float(cap[b, j])
            bounds = [(float(LOW[j]), float(HIGH[j]))] * len(u)
            cons = []
            if np.isfinite(c):
                cons = [
                    {
                        "type": "ineq",
                        "fun": lambda v, c=c: c / dt - v.sum(),
                        "jac": lambda v: -np.ones_like(v),
                    }
                ]
            res = minimize(
                lambda v, u=u: 0.5 * ((v - u) ** 2).sum(),
                np.full_like(u, float(LOW[j])),
                jac=lambda v, u=u: v - u,
                bounds=bounds,
                constraints=cons,
                method="SLSQP",
                options={"ftol": 1e-12, "maxiter": 500},
            )
            assert res.status in (0, 8)  # 8: already optimal, no descent direction left
            np.testing.assert_allclose(P[b, :, j].numpy(), res.x, atol=1e-6)
            n_binding += int(np.isfinite(c) and np.clip(u, *bounds[0]).sum() * dt > c)
    assert n_binding > 10  # the dose constraint was active in many cases


def test_unlimited_dose_is_a_clamp_and_empty_set_gives_low():
    U, _, dt = _random(B=5, seed=3)
    torch.testing.assert_close(project_schedule(U, LOW, HIGH, None, dt), U.clamp(LOW, HIGH))
    inf = torch.full((5, 2), float("inf"), dtype=torch.float64)
    torch.testing.assert_close(project_schedule(U, LOW, HIGH, inf, dt), U.clamp(LOW, HIGH))
    too_small = torch.full((5, 2), -10.0, dtype=torch.float64)  # below T * low * dt: no feasible point
    P = project_schedule(U, LOW, HIGH, too_small, dt)
    torch.testing.assert_close(P, LOW.expand_as(P))


def test_bad_inputs_name_the_argument():
    U = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match="U must have shape"):
        project_schedule(U[0], 0.0, 1.0)
    with pytest.raises(ValueError, match="high must be >= low"):
        project_schedule(U, 1.0, 0.0)
    with pytest.raises(ValueError, match="dose_left must"):
        project_schedule(U, 0.0, 1.0, torch.ones(3))
    with pytest.raises(ValueError, match="dt must be > 0"):
        project_schedule(U, 0.0, 1.0, 1.0, dt=0.0)
