"""The native vector env and the SB3 VecEnv adapter."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import pbhno_gym
from pbhno_gym.envs.sb3 import SB3VecEnv
from pbhno_gym.envs.vector_env import PathwayVectorEnv

IDS = list(pbhno_gym.ENV_IDS)


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-9), (torch.float32, 1e-4)], ids=["f64", "f32"])
@pytest.mark.parametrize("env_id", IDS)
def test_vector_equals_sync_vector_env_including_autoreset(env_id, dtype, rtol):
    """Same seeds, same trajectories: to 1e-9 in float64; in float32 up to the round-off of
    BLAS kernels that differ between batch sizes."""
    n, horizon, steps = 3, 4, 10  # crosses two autoresets
    native = gym.make_vec(
        env_id, num_envs=n, vectorization_mode="vector_entry_point", horizon=horizon, dtype=dtype
    )
    assert isinstance(native, PathwayVectorEnv)
    assert native.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    sync = SyncVectorEnv([lambda: gym.make(env_id, horizon=horizon, dtype=dtype) for _ in range(n)])
    o1, _ = native.reset(seed=11)
    o2, _ = sync.reset(seed=11)
    np.testing.assert_allclose(o1, o2, rtol=rtol, atol=rtol)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        a = rng.uniform(
            native.single_action_space.low,
            native.single_action_space.high,
            (n, *native.single_action_space.shape),
        ).astype(np.float32)
        r1, r2 = native.step(a), sync.step(a)
        for x, y in zip(r1[:2], r2[:2], strict=True):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol)
        np.testing.assert_array_equal(r1[2], r2[2])
        np.testing.assert_array_equal(r1[3], r2[3])
        # the state's round-off is relative to its largest entries: species near 0 (1e-6 of
        # a state ~10) carry absolute, not relative, float32 error
        xs, tol = np.stack([i["x"] for i in _sync_infos(sync, r2[4])]), max(rtol, 1e-6) * 10
        np.testing.assert_allclose(r1[4]["x"], xs, rtol=tol, atol=tol * np.abs(xs).max())
    assert r1[1].dtype == np.float64 and r1[3].dtype == bool


def _sync_infos(sync, info):
    return [{"x": info["x"][i]} for i in range(sync.num_envs)]


def test_vector_torch_output_and_device():
    env = gym.make_vec(
        "pbhno/MAPK-v0", num_envs=4, vectorization_mode="vector_entry_point", device="cpu", output="torch"
    )
    obs, info = env.reset(seed=0)
    assert torch.is_tensor(obs) and obs.shape == (4, env.single_observation_space.shape[0])
    obs, rew, term, trunc, info = env.step(torch.zeros(4, 2))
    assert torch.is_tensor(rew) and rew.dtype == torch.float64 and torch.is_tensor(info["is_success"])
    with pytest.raises(ValueError, match="output must be"):
        PathwayVectorEnv(2, spec_id="pbhno/MAPK-v0", output="jax")


def test_vector_nan_action_rejected_and_state_kept():
    env = gym.make_vec("pbhno/Wnt-v1", num_envs=2, vectorization_mode="vector_entry_point", horizon=4)
    env.reset(seed=0)
    x0 = env.unwrapped.core.state.x.clone() if hasattr(env, "unwrapped") else env.core.state.x.clone()
    with pytest.raises(ValueError, match=r"env\(s\) \[1\]"):
        env.step(np.array([[0.0, 0.0], [np.nan, 0.0]], np.float32))
    assert torch.equal(env.core.state.x, x0)


def test_vector_outputs_do_not_alias_internal_state():
    env = gym.make_vec("pbhno/Wnt-v1", num_envs=2, vectorization_mode="vector_entry_point", horizon=4)
    obs, info = env.reset(seed=0)
    obs[:] = 1e9
    info["x"][:] = -1
    assert (env.core.state.x >= 0).all()
    obs2, *_ = env.step(np.zeros((2, 2), np.float32))
    assert np.abs(obs2).max() < 1e8


def test_sb3_adapter_semantics():
    venv = SB3VecEnv("pbhno/MAPK-v0", num_envs=3, horizon=5, normalize_actions=True)
    venv.seed(5)
    obs = venv.reset()
    assert obs.shape == (3, venv.observation_space.shape[0]) and obs.dtype == np.float32
    for _ in range(5):
        obs, rew, done, infos = venv.step(np.zeros((3, 2), np.float32))
        assert rew.dtype == np.float32 and done.dtype == bool
    assert done.all()
    for i in range(3):
        assert infos[i]["TimeLimit.truncated"] and "terminal_observation" in infos[i]
        assert isinstance(infos[i]["is_success"], bool)
        assert not np.array_equal(infos[i]["terminal_observation"], obs[i])  # obs is already the reset one
    # same seed -> same episode as the single env
    single = gym.make("pbhno/MAPK-v0", horizon=5, normalize_actions=True)
    venv.seed(5)
    o = venv.reset()
    s, _ = single.reset(seed=5)
    np.testing.assert_array_equal(o[0], s)


def test_sb3_ppo_trains_on_adapter_and_vecnormalize():
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecNormalize

    venv = VecNormalize(SB3VecEnv("pbhno/MAPK-v0", num_envs=4, normalize_actions=True, horizon=20))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=2, seed=0, device="cpu")
    model.set_logger(Logger(None, []))  # SB3's default logger makes a folder in /tmp per learn()
    model.learn(256)
    assert model.num_timesteps >= 256
