"""MPC agents in closed loop: SB3-style predict on single, vector and SB3 envs; oracle; config; CLI."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecMonitor

import pbhno_gym  # noqa: F401 - registers the envs
from pbhno_gym.cli import main as cli_main
from pbhno_gym.control import MPCAgent, MPCConfig, OracleMPCAgent, SimulatorModel, load_config
from pbhno_gym.control.config import ConfigError
from pbhno_gym.envs.sb3 import SB3VecEnv

EASY = dict(horizon=20, target={"switches": 0, "success_window": 5})  # one constant set-point
SMALL = {
    "default": {
        "horizon": 8,
        "iterations": 10,
        "warm_iterations": 3,
        "estimation": {"window": 4, "iterations": 4},
    }
}
TINY = {
    "default": {
        "horizon": 4,
        "iterations": 3,
        "warm_iterations": 2,
        "estimation": {"window": 2, "iterations": 2},
    }
}


def test_mpc_agent_solves_an_easy_mapk_setpoint_in_closed_loop():
    env = gym.make("pbhno/MAPK-v0", **EASY)
    agent = MPCAgent.from_config(SMALL, None, env.unwrapped.env_spec)
    obs, info = env.reset(seed=1)
    for _ in range(20):
        act, _ = agent.predict(obs)
        assert env.action_space.contains(act)
        obs, r, term, trunc, info = env.step(act)
    assert trunc and info["is_success"]
    assert abs(float(info["phenotype"][0]) - float(info["target"][0])) < 0.05


def test_oracle_agent_on_the_vector_env_reaches_every_target():
    venv = gym.make_vec("pbhno/MAPK-v0", num_envs=2, vectorization_mode="vector_entry_point", **EASY)
    agent = OracleMPCAgent(venv, SMALL)
    obs, _ = venv.reset(seed=[3, 4])
    for _ in range(20):
        act, _ = agent.predict(obs)
        assert act.shape == (2, 2)
        obs, r, term, trunc, info = venv.step(act)
    assert info["is_success"].all()


def _episode_actions(make_env, seeds, steps, vector):
    env = make_env()
    agent = MPCAgent.from_config({"default": {**TINY["default"], "dtype": "float64"}}, None, "pbhno/MAPK-v0")
    obs, _ = env.reset(seed=seeds if vector else seeds[0])
    out = []
    for _ in range(steps):
        act, _ = agent.predict(obs)
        out.append(np.atleast_2d(act))
        obs, *_ = env.step(act)
    return np.stack(out, 1)  # (n_envs, steps, n_u)


def test_batch_results_equal_per_env_results():
    seeds, steps = [5, 6, 7], 4
    batched = _episode_actions(
        lambda: gym.make_vec(
            "pbhno/MAPK-v0", num_envs=3, vectorization_mode="vector_entry_point", dtype=torch.float64
        ),
        seeds,
        steps,
        True,
    )
    for i, s in enumerate(seeds):
        single = _episode_actions(lambda: gym.make("pbhno/MAPK-v0", dtype=torch.float64), [s], steps, False)
        np.testing.assert_allclose(batched[i], single[0], rtol=1e-5, atol=1e-6)
    assert np.abs(batched[0] - batched[1]).max() > 1e-3  # different episodes, different plans


def test_predict_works_with_evaluate_policy_single_env_and_sb3_vecenv():
    env = Monitor(gym.make("pbhno/MAPK-v0", horizon=4))
    agent = MPCAgent.from_config(TINY, None, env.unwrapped.env_spec)
    rewards, lengths = evaluate_policy(agent, env, n_eval_episodes=2, return_episode_rewards=True)
    assert lengths == [4, 4] and np.all(np.isfinite(rewards))
    assert len(agent.latencies) == 8
    venv = VecMonitor(SB3VecEnv("pbhno/MAPK-v0", num_envs=2, horizon=4, normalize_actions=True))
    agent = MPCAgent.from_config(TINY, None, venv.venv.env_spec)
    mean, _ = evaluate_policy(agent, venv, n_eval_episodes=4)
    assert np.isfinite(mean) and agent.n_envs == 2


def test_normalized_actions_are_the_same_physical_controls():
    acts = {}
    for norm in (False, True):
        env = gym.make("pbhno/MAPK-v0", horizon=4, normalize_actions=norm)
        agent = MPCAgent.from_config(TINY, None, env.unwrapped.env_spec)
        obs, _ = env.reset(seed=2)
        a, _ = agent.predict(obs)
        acts[norm] = env.unwrapped.core.to_physical(torch.as_tensor(a[None])).numpy()[0] if norm else a
        if norm:
            assert np.all(np.abs(a) <= 1.0 + 1e-6)
    np.testing.assert_allclose(acts[True], acts[False], rtol=1e-4, atol=1e-5)


def test_episode_start_resets_the_agent_memory():
    env = gym.make("pbhno/MAPK-v0", horizon=6)
    agent = MPCAgent.from_config(TINY, None, env.unwrapped.env_spec)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(agent.predict(obs)[0])
    assert int(agent.nst[0]) == 2 and bool(agent.has_plan[0])
    agent.predict(obs, episode_start=np.array([True]))
    assert int(agent.nst[0]) == 0  # a new window, cold plan
    with pytest.raises(ValueError, match="obs must have shape"):
        agent.predict(np.zeros(5, np.float32))


def test_adaptive_and_ensemble_agents_act_within_bounds_and_budget():
    spec_kw = dict(horizon=4, randomize_parameters=True, budgets={"mek_inhibitor": 2.0})
    for cfg in (
        {"estimation": {"estimate_theta": True}},
        {"ensemble": {"members": 3, "risk": "cvar", "weighting": "likelihood"}},
    ):
        venv = gym.make_vec("pbhno/MAPK-v0", num_envs=2, vectorization_mode="vector_entry_point", **spec_kw)
        agent = MPCAgent.from_config(load_config(TINY, **cfg), None, venv.unwrapped.env_spec)
        obs, _ = venv.reset(seed=[0, 1])
        used = np.zeros(2)
        for _ in range(4):
            act, _ = agent.predict(obs)
            obs, r, term, trunc, info = venv.step(act)
            assert not info["action_clipped"].any()
            used += act[:, 1] * 1.0  # mek inhibitor x 1 min
        assert np.all(used <= 2.0 + 1e-4)
        assert agent.M == (3 if "ensemble" in cfg else 1)


def test_field_pathway_agents_run_on_a_small_grid():
    kw = dict(horizon=2, layout={"ny": 16, "nx": 16})
    env = gym.make("pbhno/Notch-v1", **kw)
    mpc = MPCAgent.from_config(TINY, None, env.unwrapped.env_spec)
    oracle = OracleMPCAgent(env, TINY)
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        a1, _ = mpc.predict(obs)
        a2, _ = oracle.predict(obs)
        assert env.action_space.contains(a1) and env.action_space.contains(a2)
        obs, *_ = env.step(a1)


@pytest.mark.parametrize("oracle", [True, False], ids=["oracle", "nominal MHE"])
def test_reduced_field_planning_model_acts_like_the_full_grid_when_every_mode_is_kept(oracle):
    """``field_modes`` reaches the agent's model: with every mode kept (24 x 24 on a 24 x 24
    grid) the agent takes the full-grid agent's actions (float64; the oracle projects the env's
    field, the MHE fits the decoded one); with 4 x 4 modes its actions differ."""
    kw = dict(horizon=3, layout={"ny": 24, "nx": 24})
    acts = {}
    for modes in (0, 24, 4):
        env = gym.make("pbhno/Wnt-v1", **kw)
        spec = env.unwrapped.env_spec
        cfg = load_config(TINY, spec, field_modes=modes, dtype="float64", solver="adam", lr=0.1)
        agent = OracleMPCAgent(env, cfg) if oracle else MPCAgent.from_config(cfg, None, spec)
        assert agent.model.reduced == (modes > 0)
        obs, _ = env.reset(seed=5)
        out = []
        for _ in range(2):
            a, _ = agent.predict(obs)
            out.append(a)
            obs, *_ = env.step(a)
        acts[modes] = np.stack(out)
    np.testing.assert_allclose(acts[24], acts[0], rtol=1e-6, atol=1e-7)
    assert np.abs(acts[4] - acts[0]).max() > 1e-3


def test_config_file_sections_and_errors():
    cfg = load_config(None, "pbhno/Wnt-v1")
    assert cfg.solver == "adam" and cfg.estimation.window == 3
    assert load_config(None, "pbhno/MAPK-v0").solver == "gn"
    assert isinstance(load_config(MPCConfig(), horizon=5), MPCConfig)
    with pytest.raises(ConfigError, match=r"mpc\.estimation\.windw"):
        load_config({"estimation": {"windw": 3}})
    with pytest.raises(ConfigError, match=r"mpc\.solver"):
        load_config({"solver": "newton"})
    with pytest.raises(ConfigError, match=r"mpc\.horizon must be an integer"):
        load_config({"horizon": 2.5})
    assert load_config(None, "pbhno/Wnt-v1").tracking == "band"  # pattern target: on/off thresholds
    unknown = load_config(None, "pbhno/Notch-Unknown-v0")  # an id without a table: its base task's
    assert (unknown.solver, unknown.estimation.window) == ("adam", 3)
    own = load_config(None, "pbhno/Wnt-Unknown-v1")  # its own table replaces Wnt-v1's
    assert (own.tracking, own.field_modes, own.horizon) == ("band", 8, 48)
    assert load_config(None, "pbhno/Wnt-v1").horizon == 20
    assert load_config(None, "pbhno/MAPK-v0").tracking == "squared"
    with pytest.raises(ConfigError, match=r"mpc\.tracking"):
        load_config({"tracking": "hinge"})
    for name in ("field_modes", "substeps"):
        with pytest.raises(ConfigError, match=rf"mpc\.{name} must be >= 0"):
            load_config({name: -1})
    band_on_setpoint = load_config(None, "pbhno/MAPK-v0", tracking="band")
    with pytest.raises(ValueError, match=r"mpc\.tracking = 'band' needs a pattern target"):
        MPCAgent(SimulatorModel("pbhno/MAPK-v0"), "pbhno/MAPK-v0", band_on_setpoint)


def test_cli_plan_reports_quality(tmp_path, capsys):
    cfg = tmp_path / "mpc.toml"
    cfg.write_text(
        "[default]\nhorizon = 3\niterations = 2\nwarm_iterations = 1\n[default.estimation]\nwindow = 2\n"
    )
    out = tmp_path / "res.json"
    argv = ["plan", "--env", "pbhno/MAPK-v0", "--episodes", "2", "--config", str(cfg)]
    assert cli_main(argv + ["--overrides", '{"horizon": 3}', "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "success rate" in text and "latency" in text and out.exists()
    assert cli_main(argv + ["--oracle", "--overrides", '{"horizon": 3}']) == 0
    assert "ORACLE" in capsys.readouterr().out
