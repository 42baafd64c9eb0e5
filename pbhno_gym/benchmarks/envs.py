"""Environment throughput: single env (Gymnasium API) and the native vector env vs num_envs."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch

import pbhno_gym  # noqa: F401  (registers the ids)


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def single_env_steps_per_s(env_id: str, steps: int = 48, compile: bool = False) -> float:
    """Gymnasium single-env steps per second over ``steps`` steps (one timing of
    :func:`.kinetics.env_steps_per_s`; ``compile``: ``gym.make(..., compile=True)``)."""
    from .kinetics import env_steps_per_s

    return env_steps_per_s(env_id, steps, compile=compile)()


def vector_env_steps_per_s(
    env_id: str, num_envs: int, device: str = "cpu", steps: int = 10, compile: bool = False
) -> float:
    """Native vector env steps per second (all ``num_envs`` sub-envs count), after untimed steps
    (``compile``: the simulator step through torch.compile, compiled there)."""
    env = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        device=device,
        output="torch",
        compile=compile,
    )
    env.reset(seed=0)
    a = torch.as_tensor(np.tile(env.single_action_space.high * 0.5, (num_envs, 1)), device=device)
    for _ in range(2 if compile else 1):
        env.step(a)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(a)
    _sync(device)
    return num_envs * steps / (time.perf_counter() - t0)
