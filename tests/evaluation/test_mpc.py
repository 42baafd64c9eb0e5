"""The MPC agents through the one evaluator: the oracle is bound to each batch's own env core,
and an evaluated MPC run equals stepping the vector env by hand (final error as in episodes.py)."""

import gymnasium as gym
import numpy as np
import pytest

import pbhno_gym  # noqa: F401
from pbhno_gym.control import MPCAgent
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.evaluation import OracleBinding, evaluate_agent, evaluate_mpc, mpc_policy

OV = {"horizon": 8, "target": {"switches": 0, "success_window": 3}}
EASY = load_spec("pbhno/MAPK-v0", OV)
TINY = {
    "default": {
        "horizon": 4,
        "iterations": 3,
        "warm_iterations": 2,
        "estimation": {"window": 2, "iterations": 2},
    }
}


def test_oracle_is_bound_to_the_core_of_each_evaluated_batch():
    oracle = mpc_policy(EASY, TINY, oracle=True)
    assert isinstance(oracle, OracleBinding) and oracle.uses_true_model
    with pytest.raises(RuntimeError, match="attach"):
        oracle.predict(np.zeros((1, 4), np.float32))
    res = evaluate_agent(oracle, EASY, [3, 4, 5], batch_size=2)
    assert oracle.agent.cores[0].B == 1  # the last batch (one episode) is the one it reads
    assert res.n == 3 and not res.failed.any() and res.success.all()


def test_evaluated_mpc_equals_stepping_the_vector_env():
    seeds = [3, 4]
    res = evaluate_mpc(EASY, seeds, config=TINY)
    venv = gym.make_vec("pbhno/MAPK-v0", num_envs=2, vectorization_mode="vector_entry_point", **OV)
    agent = MPCAgent.from_config(TINY, None, EASY)
    obs, _ = venv.reset(seed=seeds)
    errs, ret = [], np.zeros(2)
    for _ in range(EASY.horizon):
        act, _ = agent.predict(obs)
        obs, r, term, trunc, info = venv.step(act)
        errs.append(info["tracking_error"])
        ret += r
    assert trunc.all()
    np.testing.assert_allclose(res.returns, ret, rtol=1e-4)
    np.testing.assert_allclose(res.final_error, np.mean(errs[-3:], 0), rtol=1e-4)
    np.testing.assert_array_equal(res.success, info["is_success"])
