"""The single env: Gymnasium/SB3 checkers, determinism, bad actions, budgets, blow-ups, rendering."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import pbhno_gym

IDS = list(pbhno_gym.ENV_IDS)
FAST = {"horizon": 6}


# the unknown-world ids share every code path checked here; tests/envs/test_worlds.py runs both
# checkers on them
@pytest.mark.parametrize("env_id", [i for i in IDS if "Unknown" not in i])
def test_checkers_pass_without_warnings(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(gym.make(env_id, normalize_actions=True, **FAST).unwrapped, skip_render_check=False)
        sb3_check_env(gym.make(env_id, normalize_actions=True, **FAST), warn=True)
    assert [str(w.message) for w in caught] == []
    # physical units: the checkers only recommend normalising the action space
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(gym.make(env_id, **FAST).unwrapped)
    assert all("normalized" in str(w.message) for w in caught)


def _rollout(env, seed, steps):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out += [obs, np.array([r]), info["x"].ravel()]
    return np.concatenate([np.ravel(o) for o in out])


@pytest.mark.parametrize("env_id", IDS)
def test_reset_seed_reproduces_episode(env_id):
    env = gym.make(env_id, **FAST)
    a, b = _rollout(env, 7, 4), _rollout(env, 7, 4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _rollout(env, 8, 4))
    obs1, _ = env.reset(seed=3)
    obs2, _ = env.reset()  # continues the stream: a new episode
    assert not np.array_equal(obs1, obs2)


def test_nan_action_raises_and_leaves_state_unchanged():
    env = gym.make("pbhno/Wnt-v1", **FAST)
    env.reset(seed=0)
    core = env.unwrapped.core
    before = (
        core.state.x.clone(),
        core.state.L.clone(),
        core.t.clone(),
        core.dose_used.clone(),
        core.rng.counters.clone(),
        core.held.clone(),
    )
    for bad in ([np.nan, 0.0], [0.0, np.inf]):
        with pytest.raises(ValueError, match="NaN or inf"):
            env.step(np.array(bad, np.float32))
    after = (core.state.x, core.state.L, core.t, core.dose_used, core.rng.counters, core.held)
    assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True))
    with pytest.raises(ValueError, match=r"action must have shape \(2,\)"):
        env.step(np.zeros(3, np.float32))


def test_out_of_bounds_clipped_and_flagged():
    env = gym.make("pbhno/Wnt-v1", **FAST)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([100.0, -5.0], np.float32))
    assert info["action_clipped"] and np.allclose(info["dose"], [4.0, 0.0])
    _, _, _, _, info = env.step(np.array([1.0, 1.0], np.float32))
    assert not info["action_clipped"]


def test_dose_budget_is_enforced_and_reported():
    env = gym.make("pbhno/Wnt-v1", budgets={"ligand_source": 100.0}, horizon=10)
    env.reset(seed=0)
    used = []
    for _ in range(4):
        _, _, _, _, info = env.step(np.array([4.0, 0.0], np.float32))
        used.append(info["dose_used"][0])
    # 4 nM/min x 10 min = 40 per step: 40, 80, then capped at 100, then nothing left
    assert np.allclose(used, [40.0, 80.0, 100.0, 100.0])
    assert info["budget_limited"] and info["dose"][0] == 0.0 and info["dose_left"][0] == 0.0
    assert info["dose_left"][1] == 1.0  # the antagonist budget is untouched


def test_numerical_blowup_truncates_with_finite_observation():
    env = gym.make("pbhno/Wnt-v1", blowup_threshold=20.0, horizon=48)  # T exceeds 20 within an episode
    obs, _ = env.reset(seed=0)
    for _ in range(48):
        prev = env.unwrapped.core.state.x.clone()
        obs, r, term, trunc, info = env.step(np.array([4.0, 0.0], np.float32))
        if info["numerical_failure"]:
            break
    assert info["numerical_failure"] and trunc and not term
    assert np.isfinite(obs).all() and np.isfinite(r)
    assert torch.equal(env.unwrapped.core.state.x, prev)  # the failed step was not committed


@pytest.mark.parametrize("env_id", IDS)
def test_render_rgb_array(env_id):
    env = gym.make(env_id, render_mode="rgb_array", **FAST)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and min(frame.shape[:2]) >= 128
    assert frame.std() > 0  # not a blank image


def test_record_video(tmp_path):
    from gymnasium.wrappers import RecordVideo

    env = RecordVideo(
        gym.make("pbhno/Notch-v1", render_mode="rgb_array", horizon=4),
        str(tmp_path / "videos"),
        episode_trigger=lambda e: True,
        disable_logger=True,
    )
    env.reset(seed=0)
    for _ in range(4):
        env.step(env.action_space.sample())
    env.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert videos and videos[0].stat().st_size > 1000


def test_info_carries_truth_and_normalized_actions():
    env = gym.make("pbhno/Notch-v1", normalize_actions=True, randomize_parameters=True, **FAST)
    _, info0 = env.reset(seed=1)
    nominal = env.unwrapped.core.prior.log_values.numpy()
    assert not np.allclose(info0["log_theta"], nominal)  # drawn from the prior
    _, info1 = env.reset(seed=2)
    assert not np.allclose(info0["log_theta"], info1["log_theta"])
    _, _, _, _, info = env.step(np.array([1.0, -1.0, 0.0], np.float32))
    assert np.allclose(info["dose"], [0.2, 0.0, 5.0])  # [-1, 1] mapped onto [low, high]
    assert info["x"].shape == (2, 5) and info["L"].shape == (64, 64)
    assert isinstance(info["is_success"], bool)


def test_full_observation_mode():
    env = gym.make("pbhno/Wnt-v1", obs_mode="full", **FAST)
    obs, _ = env.reset(seed=0)
    lay = env.unwrapped.obs_layout
    assert obs.shape == env.observation_space.shape and lay["field"].stop - lay["field"].start == 64 * 64
    x = env.unwrapped.core.obs_model.normalise_species(env.unwrapped.core.state.x)[0].reshape(-1)
    assert np.allclose(obs[lay["state"]], x.numpy())  # noise-free


def test_registration_in_fresh_interpreter(tmp_path):
    code = (
        "import gymnasium as gym; env = gym.make('pbhno_gym:pbhno/Wnt-v1'); o, _ = env.reset(seed=0); "
        "v = gym.make_vec('pbhno/MAPK-v0', num_envs=3, vectorization_mode='vector_entry_point'); "
        "vo, _ = v.reset(seed=0); print(o.shape, vo.shape, type(v).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "PathwayVectorEnv" in out.stdout
