"""``compile=True`` envs: a whole transition through torch.compile gives the eager env's episode."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

import pbhno_gym  # noqa: F401 - registers the ids
from pbhno_gym.envs import PathwayCore, load_spec


def rollout(env, steps: int, seed: int = 3):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    out = [obs]
    for _ in range(steps):
        a = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, r, _, _, info = env.step(a)
        out.append(np.concatenate([np.ravel(obs), np.ravel(r), np.ravel(info["x"])]))
    return out


def test_compiled_env_takes_the_eager_envs_steps():
    """Hidden-world vector env (MAPK + feedback, 3 worlds): same observations, rewards and true
    states as eager, to float32 round-off relative to the state scale (the fused kernels may
    reassociate sums: a few ulps per step, growing over 12 steps)."""
    kw = dict(num_envs=3, vectorization_mode="vector_entry_point", world_seed=[0, 1, 2])
    eager = rollout(gym.make_vec("pbhno/MAPK-Unknown-v0", **kw), 12)
    compiled_env = gym.make_vec("pbhno/MAPK-Unknown-v0", compile=True, **kw)
    assert hasattr(compiled_env.unwrapped.core._finish, "_torchdynamo_orig_callable")
    counters["stats"].clear()
    counters["graph_break"].clear()
    compiled = rollout(compiled_env, 12)
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo captured the step (no silent eager)
    assert not counters["graph_break"], dict(counters["graph_break"])  # physics + the rest: 2 graphs
    for a, b in zip(eager[1:], compiled[1:], strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * max(1.0, float(np.abs(a).max())))
    single = gym.make("pbhno/MAPK-v0", compile=True)  # the single env: same episode as eager
    assert hasattr(single.unwrapped.core._finish, "_torchdynamo_orig_callable")
    for a, b in zip(rollout(gym.make("pbhno/MAPK-v0"), 4)[1:], rollout(single, 4)[1:], strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * max(1.0, float(np.abs(a).max())))


def test_compile_must_be_a_bool():
    with pytest.raises(ValueError, match="compile must be True or False"):
        PathwayCore(load_spec("pbhno/MAPK-v0"), 1, compile="yes")
    core = PathwayCore(load_spec("pbhno/MAPK-v0"), 1)
    assert (
        core._finish == core._after_physics
        and core._sim_step == core.sim.step
        and isinstance(core.sim.step(core.state, torch.zeros(1, 2), core.log_theta).x, torch.Tensor)
    )


def test_compiled_field_env_takes_the_eager_envs_steps():
    """Wnt-v1 (a ligand field): the compiled transition gives the eager episode. With the
    counter RNG's int64 hash inside the compiled graph, torch 2.13's vectorised CPU kernel wrote
    out of bounds here (a segfault of the process) and, at batch 1, drew other numbers."""
    eager = rollout(gym.make("pbhno/Wnt-v1"), 2)
    compiled = rollout(gym.make("pbhno/Wnt-v1", compile=True), 2)
    for a, b in zip(eager[1:], compiled[1:], strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * max(1.0, float(np.abs(a).max())))
