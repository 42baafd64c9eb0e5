"""The CasADi/IPOPT NMPC on MAPK-v0: its model is the pathway's own rate expressions, and it tracks
a set-point from observations only."""

import casadi as ca
import numpy as np
import torch

from pbhno_gym.agents import make_agent
from pbhno_gym.agents.casadi_nmpc import casadi_drift
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.evaluation import evaluate_agent, heldout_seeds
from pbhno_gym.physics import get_pathway


def test_casadi_drift_equals_torch_drift():
    pw = get_pathway("mapk_feedback")
    lt = pw.params.log_nominal(torch.float64) + 0.3 * torch.randn(len(pw.params), dtype=torch.float64)
    th = pw.params.unpack(lt)
    f = casadi_drift(pw, {k: float(v) for k, v in th.items()})
    x = torch.rand(6, 1, 3, dtype=torch.float64)
    u = torch.rand(6, 2, dtype=torch.float64) * torch.tensor([2.0, 10.0], dtype=torch.float64)
    ref = pw.drift(x, None, {k: v.reshape(1, 1) for k, v in th.items()}, pw.inhibitor_dict(u, 6, x))
    for b in range(6):
        got = np.asarray(f(x[b, 0].numpy(), u[b].numpy())).ravel()
        np.testing.assert_allclose(got, ref[b, 0].numpy(), rtol=1e-12, atol=1e-14)
    assert isinstance(f, ca.Function)


def test_nmpc_tracks_mapk_setpoints_from_observations():
    spec = load_spec("pbhno/MAPK-v0", {"horizon": 30})
    agent = make_agent("casadi_nmpc")
    rep = agent.train(spec, 0, 0, "unused")
    assert rep.env_samples == 0 and agent.uses_true_model
    res = evaluate_agent(agent, spec, heldout_seeds(2), record=1)
    assert res.success.all(), res.final_error
    assert (res.final_error < 0.03).all()
    assert agent.n_failures == 0 and agent.n_solves == 60
    # zero intervention, same episodes: far from the set-point
    zero = make_agent("zero")
    zero.train(spec, 0, 0, "unused")
    assert (evaluate_agent(zero, spec, heldout_seeds(2)).final_error > 0.2).all()


def test_nmpc_refuses_field_envs():
    agent = make_agent("casadi_nmpc")
    assert "ODE-only" in agent.supports(load_spec("pbhno/Wnt-v1"))
    assert agent.supports(load_spec("pbhno/MAPK-v0")) is None
