"""The MPC planner: cost decrease, feasibility, warm starts, batching, Jacobians, ensembles."""

import pytest
import torch

from pbhno_gym.control import SimulatorModel
from pbhno_gym.control.planner import Planner, preview_targets, shift_plan, stage_weights
from pbhno_gym.control.projection import is_feasible

from .helpers import F64, mapk_model, mapk_problems

T = 8


@pytest.fixture(scope="module")
def model():
    return mapk_model()


@pytest.fixture(scope="module")
def dosed(model):
    """Problems with a binding inhibitor dose (3 uM min) and their (near-)optimal cost."""
    prob = mapk_problems(model, B=3, T=T, mek_dose=3.0)
    return prob, Planner(model, T, solver="gn", iterations=30, tol=1e-10).solve(prob).cost


@pytest.mark.parametrize("solver,iters", [("gn", 6), ("adam", 25)])
def test_planner_decreases_cost_and_stays_feasible(model, dosed, solver, iters):
    prob, ref = dosed
    p = Planner(model, T, solver=solver, iterations=iters, tol=0.0, lr=0.1)
    res = p.solve(prob, history=True)
    h = res.history
    assert h.shape == (iters + 1, 3)
    assert bool((h[1:] <= h[:-1] + 1e-12).all())  # best/accepted cost never increases
    gap = (h - ref) / (h[0] - ref)  # fraction of the reducible cost still left
    assert bool((gap[-1] < (0.01 if solver == "gn" else 0.3)).all())
    cost, _ = p.objective(res.S, prob)
    torch.testing.assert_close(cost, res.cost)
    assert bool(is_feasible(res.U, model.control_low, model.control_high, prob.dose_left, model.dt).all())


def test_gauss_newton_beats_adam_at_equal_iterations(model):
    prob = mapk_problems(model, B=3, T=T, seed=1)
    gn = Planner(model, T, solver="gn", iterations=5, tol=0.0).solve(prob)
    adam = Planner(model, T, solver="adam", iterations=5, tol=0.0, lr=0.1).solve(prob)
    assert bool((gn.cost < adam.cost).all())


def test_warm_start_reduces_iterations(model):
    prob = mapk_problems(model, B=2, T=T, seed=2)
    p = Planner(model, T, solver="gn", iterations=25, tol=1e-6)
    cold = p.solve(prob)
    assert bool(cold.converged.all())
    # receding horizon: apply the first control, re-plan from the next state
    nxt = model.step(prob.z0, cold.U[:, 0], prob.log_theta)
    prob2 = type(prob)(nxt, prob.target, prob.log_theta, prob.dose_left)
    re_cold = p.solve(prob2)
    re_warm = p.solve(prob2, S0=shift_plan(cold.S))
    assert bool(re_warm.converged.all())
    assert int(re_warm.iterations.sum()) < int(re_cold.iterations.sum())
    assert bool((re_warm.cost <= re_cold.cost * 1.01 + 1e-9).all())


@pytest.mark.parametrize("solver", ["gn", "adam"])
def test_batch_results_equal_single_problem_results(model, solver):
    prob = mapk_problems(model, B=3, T=T, seed=3)
    p = Planner(model, T, solver=solver, iterations=4, tol=1e-3, lr=0.1)
    batch = p.solve(prob)
    for b in range(3):
        one = p.solve(prob.index(torch.tensor([b])))
        torch.testing.assert_close(one.U[0], batch.U[b], rtol=1e-9, atol=1e-9)
        assert int(one.iterations[0]) == int(batch.iterations[b])


def test_condensed_and_row_jacobians_agree(model):
    prob = mapk_problems(model, B=2, T=T, seed=4, members=2)
    S = torch.rand(2, T, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    e1, J1 = Planner(model, T, jacobian="rows")._track_jacobian(S, prob)
    e2, J2 = Planner(model, T, jacobian="condensed")._track_jacobian(S, prob)
    torch.testing.assert_close(e1, e2)
    torch.testing.assert_close(J1, J2)
    # and they are the derivative of the residuals (finite differences in float64)
    p = Planner(model, T)
    k, h = 3, 1e-6
    dS = torch.zeros_like(S)
    dS.view(2, -1)[:, k] = h
    fd = (p._track_residuals(S + dS, prob) - p._track_residuals(S - dS, prob)).reshape(2, -1) / (2 * h)
    torch.testing.assert_close(J1[:, :, k], fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("risk", ["mean", "cvar", "mean_std"])
def test_ensemble_planning_lowers_the_aggregate(model, risk):
    prob = mapk_problems(model, B=2, T=T, seed=5, members=3)
    for solver in ("gn", "adam"):
        p = Planner(model, T, solver=solver, iterations=5, tol=0.0, risk=risk, lr=0.1)
        res = p.solve(prob, history=True)
        assert bool((res.history[-1] < res.history[0] - 0.05).all())
        members = p.member_costs(res.S, prob)
        if risk == "mean":
            torch.testing.assert_close(res.cost, members.mean(1))
        else:  # risk-averse aggregates weigh the bad members more
            assert bool((res.cost >= members.mean(1) - 1e-12).all())


def test_stage_weights_and_preview_targets():
    t = torch.tensor([0, 55])
    w = stage_weights(t, 60, 10)
    assert w[0].sum() == 10 and w[1].tolist() == [1.0] * 5 + [0.0] * 5
    goal = torch.arange(3.0).reshape(1, 3, 1)  # levels at t, t+1, t+2
    assert preview_targets(goal, 4)[0, :, 0].tolist() == [1.0, 2.0, 2.0, 2.0]


def test_no_control_is_spent_after_the_episode_end(model):
    prob = mapk_problems(model, B=1, T=T, seed=6)
    prob.weight = stage_weights(torch.tensor([56]), 60, T, F64)  # 4 steps left
    res = Planner(model, T, solver="gn", iterations=10).solve(prob)
    assert float(res.U[0, 4:].abs().max()) < 1e-6  # only R acts there: zero control


def test_planner_rejects_bad_arguments(model):
    with pytest.raises(ValueError, match="solver"):
        Planner(model, T, solver="sgd")
    with pytest.raises(ValueError, match="horizon"):
        Planner(model, 0)
    prob = mapk_problems(model, B=1, T=T)
    with pytest.raises(ValueError, match="T=5"):
        Planner(model, 5).solve(prob)


def test_state_floor_makes_gradients_at_rest_consistent():
    """MAPK at rest (species exactly 0): the simulator's Patankar step is discontinuous there,
    so autograd through it disagrees with finite differences; the floored model agrees."""
    out = {}
    for floor in (0.0, 1e-6):
        m = SimulatorModel("pbhno/MAPK-v0", dtype=F64, state_floor=floor)
        prob = mapk_problems(m, B=1, T=T)
        prob.z0.x.zero_()
        p = Planner(m, T)
        S = torch.zeros(1, T, 2, dtype=F64, requires_grad=True)
        (g,) = torch.autograd.grad(p.objective(S, prob)[0].sum(), S)
        h = 1e-7
        Sp = torch.zeros(1, T, 2, dtype=F64)
        Sp[0, 0, 0] = h
        fd = float((p.objective(Sp, prob)[0] - p.objective(torch.zeros_like(Sp), prob)[0]) / h)
        out[floor] = (float(g[0, 0, 0]), fd)
    g0, fd0 = out[0.0]
    g1, fd1 = out[1e-6]
    assert abs(g1 - fd1) < 1e-3 * abs(fd1)
    assert abs(g0 - fd0) > 0.5 * abs(fd0)  # the unfloored simulator's derivative is off at x = 0


def test_cold_start_takes_the_cheapest_constant_plan_and_escapes_a_flat_zero():
    """A model with no response to small controls (flat at u = 0) leaves zero controls a
    stationary point; the cold start's constant candidates find the dose that tracks."""
    import torch

    from pbhno_gym.control.config import ConfigError, load_config
    from pbhno_gym.control.planner import Planner

    model, prob = _deadzone_problem()
    stuck = Planner(model, prob.target.shape[1], iterations=10, cold_levels=(0.0,)).solve(prob)
    assert torch.all(stuck.U == 0) and int(stuck.iterations.max()) == 0
    p = Planner(model, prob.target.shape[1], iterations=10, cold_levels=(0.0, 0.5))
    S0 = p.cold_start(prob)
    assert torch.all(S0[..., 0] == 0.5) and torch.all(S0[..., 1] == 0)  # stimulus on; no inhibitor dose left
    res = p.solve(prob)
    assert float(res.cost.max()) < 0.5 * float(stuck.cost.min())
    with pytest.raises(ConfigError, match="mpc.cold_levels"):
        load_config(None, "pbhno/MAPK-v0", cold_levels=[1.5])


def _deadzone_problem():
    """MAPK whose stimulus acts only above 30 % of its range (a flat response at u = 0), from
    rest towards a mid set-point, no inhibitor allowed."""
    from pbhno_gym.physics.simulator import SimState

    class Deadzone(SimulatorModel):
        def step(self, z: SimState, u, log_theta=None) -> SimState:
            cut = 0.3 * self.control_high[0]
            u = torch.cat([(u[:, :1] - cut).clamp_min(0) / 0.7, u[:, 1:]], 1)
            return super().step(z, u, log_theta)

    model = Deadzone("pbhno/MAPK-v0", dtype=F64)
    B, T = 2, 10
    z = model.initial_state(B)
    target = torch.full((B, T, 1), 0.5, dtype=F64)
    dose = torch.tensor([float("inf"), 0.0], dtype=F64).expand(B, 2).clone()
    from pbhno_gym.control.planner import PlanProblem

    return model, PlanProblem(z, target, model.theta.log_values.expand(B, -1).clone(), dose)


def test_band_tracking_penalises_only_the_wrong_side_of_a_floor_or_ceiling(model):
    """band = (lo, hi): targets >= hi are floors, <= lo ceilings, between them two-sided. The
    residuals are the squared-tracking ones masked by that rule; rows and condensed Jacobians
    agree and match central differences (a generic S is off the hinge's kink)."""
    B = 4
    prob = mapk_problems(model, B=B, T=T, seed=7, members=2)
    prob.target = torch.tensor([0.25, 0.4, 0.6, 0.85], dtype=F64)[:, None, None].expand(B, T, 1).clone()
    S = torch.rand(B, T, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    band = (0.3, 0.5)
    sq = Planner(model, T)._track_residuals(S, prob)  # (B, M, T, 1)
    got = Planner(model, T, band=band)._track_residuals(S, prob)
    tgt = prob.target[:, None]
    floor_met = (tgt >= band[1]) & (sq > 0)
    ceiling_met = (tgt <= band[0]) & (sq < 0)
    assert bool(floor_met.any()) and bool(ceiling_met.any()) and bool((~(floor_met | ceiling_met)).any())
    torch.testing.assert_close(got, torch.where(floor_met | ceiling_met, 0.0, sq), rtol=0, atol=0)
    e1, J1 = Planner(model, T, jacobian="rows", band=band)._track_jacobian(S, prob)
    e2, J2 = Planner(model, T, jacobian="condensed", band=band)._track_jacobian(S, prob)
    torch.testing.assert_close(e1, e2)
    torch.testing.assert_close(J1, J2)
    assert bool((J2.reshape(B, -1, J2.shape[-1])[(floor_met | ceiling_met).reshape(B, -1)] == 0).all())
    p = Planner(model, T, band=band)
    k, h = 5, 1e-6
    dS = torch.zeros_like(S)
    dS.view(B, -1)[:, k] = h
    fd = (p._track_residuals(S + dS, prob) - p._track_residuals(S - dS, prob)).reshape(B, -1) / (2 * h)
    torch.testing.assert_close(J1[:, :, k], fd, rtol=1e-5, atol=1e-7)


def test_band_tracking_spends_nothing_to_pull_an_on_cell_back_to_its_level(model):
    """A floor the untreated trajectory already clears needs no control under band tracking,
    while squared tracking doses to pull the phenotype down onto the level (the Wnt oracle's
    failure: near-source columns overshooting 0.8 held back the far column)."""
    prob = mapk_problems(model, B=2, T=T, seed=8)
    zero = torch.zeros(2, T, 2, dtype=F64)
    _, ph = model.rollout(prob.z0, zero, prob.log_theta)
    level = ph[:, 1:, 0].min(1).values - 0.05  # cleared at every step without control
    prob.target = level[:, None, None].expand(2, T, 1).clone()
    band = Planner(model, T, solver="gn", iterations=10, band=(-1.0, float(level.min()))).solve(prob)
    two_sided = Planner(model, T, solver="gn", iterations=10).solve(prob)
    assert float(band.U.abs().max()) < 1e-6 and float(band.cost.max()) < 1e-12
    assert float(two_sided.U[..., 1].max()) > 1.0  # uM of inhibitor spent to reach the level
