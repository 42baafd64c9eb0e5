"""A stable-baselines3 PPO smoke run of a few thousand steps on every id (batched adapter)."""

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

import pbhno_gym
from pbhno_gym.envs import load_spec
from pbhno_gym.envs.sb3 import SB3VecEnv


# the unknown-world ids run the same core and adapter (their SB3 checker is in test_worlds.py)
@pytest.mark.parametrize("env_id", [i for i in pbhno_gym.ENV_IDS if "Unknown" not in i])
def test_ppo_smoke(env_id, tmp_path):
    # Notch at 16 coupled sub-steps (48-64 in the specs, for accuracy): the smoke checks the
    # adapter and PPO's save/load, not the physics, and keeps the suite within its time budget
    fast = {"substeps": 16} if load_spec(env_id).pathway == "notch" else {}
    venv = SB3VecEnv(env_id, num_envs=8, normalize_actions=True, **fast)
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=256, n_epochs=2, seed=0, device="cpu")
    model.set_logger(Logger(None, []))  # SB3's default logger makes a folder in /tmp per learn()
    model.learn(2048)
    assert model.num_timesteps >= 2048
    path = tmp_path / "ppo.zip"
    model.save(path)
    loaded = PPO.load(path, device="cpu")
    obs = venv.reset()
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_allclose(a1, a2)
    assert np.isfinite(a1).all() and (np.abs(a1) <= 1).all()
