"""A stable-baselines3 ``VecEnv`` over the natively batched core.

SB3 cannot consume a Gymnasium ``VectorEnv``; this adapter lets SB3 agents train on the batched
simulator (one set of tensor ops for all envs) instead of N Python copies. It follows SB3's
conventions: autoreset in the same step, the final observation in
``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]`` for horizon ends, and
``infos[i]["is_success"]`` at episode end (read by ``EvalCallback``/``evaluate_policy``).

    venv = SB3VecEnv("pbhno/Wnt-v1", num_envs=16, normalize_actions=True)
    model = PPO("MlpPolicy", venv).learn(10_000)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from ..utils.rng import seed_to_key
from .checks import check_render_mode, check_seed
from .core import PathwayCore
from .render import render_rgb
from .spec import EnvSpec, load_spec

__all__ = ["SB3VecEnv"]


class SB3VecEnv(VecEnv):
    """N environments of one spec as an SB3 ``VecEnv``.

    Args:
        spec_id: a registered id or a spec file (or pass ``env_spec``).
        num_envs: batch size.
        device: torch device of the simulation.
        render_mode: "rgb_array" renders env 0.
        **overrides: spec fields, as for ``gym.make``; ``world_seed=[k0, k1, ...]`` (one per env)
            gives each env its own hidden world, as in the native vector env.
    """

    def __init__(
        self,
        spec_id: str | None = None,
        num_envs: int = 1,
        env_spec: EnvSpec | None = None,
        device=None,
        render_mode: str | None = None,
        dtype=torch.float32,
        **overrides,
    ) -> None:
        check_render_mode(render_mode, ["rgb_array"])
        world_seeds = (
            overrides.pop("world_seed") if isinstance(overrides.get("world_seed"), (list, tuple)) else None
        )
        self.env_spec = env_spec if env_spec is not None else load_spec(spec_id, overrides)
        self.core = PathwayCore(self.env_spec, num_envs, device, dtype, world_seeds=world_seeds)
        self.render_mode = render_mode
        n_u = self.core.sim.n_controls
        if self.env_spec.normalize_actions:
            act = gym.spaces.Box(-1.0, 1.0, (n_u,), np.float32)
        else:
            act = gym.spaces.Box(
                self.core.low.cpu().numpy().astype(np.float32),
                self.core.high.cpu().numpy().astype(np.float32),
                dtype=np.float32,
            )
        low, high = self.core.obs_model.bounds()
        obs = gym.spaces.Box(low, high, dtype=np.float32)
        self._actions: np.ndarray | None = None
        self._ever_seeded = False
        super().__init__(num_envs, obs, act)

    # ------------------------------------------------------------------ core API
    def reset(self) -> np.ndarray:
        for i, s in enumerate(self._seeds):
            if s is not None:
                check_seed(s, f"seed (env {i})")
        opts = self._options[0] if self._options and self._options[0] else None
        self.core.check_options(opts)  # refuse before seeding
        keys = None
        if any(s is not None for s in self._seeds) or not self._ever_seeded:
            seeds = [
                s if s is not None else int(np.random.SeedSequence().generate_state(1)[0])
                for s in self._seeds
            ]
            keys = torch.tensor([seed_to_key(s) for s in seeds], dtype=torch.int64)
            self._ever_seeded = True
        obs = self.core.reset(keys=keys, options=opts)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs.cpu().numpy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait called before step_async")
        actions, self._actions = self._actions, None
        res = self.core.step(actions)
        done = res.terminated | res.truncated
        obs = res.obs.cpu().numpy()
        rewards = res.reward.cpu().numpy().astype(np.float32)
        succ = res.info["is_success"].cpu().numpy()
        trunc = (res.truncated & ~res.terminated).cpu().numpy()
        fail = res.info["numerical_failure"].cpu().numpy()
        dones = done.cpu().numpy()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            for i in np.flatnonzero(dones):
                infos[i] = {
                    "terminal_observation": obs[i].copy(),
                    "TimeLimit.truncated": bool(trunc[i]),
                    "is_success": bool(succ[i]),
                    "numerical_failure": bool(fail[i]),
                }
            obs = self.core.reset(mask=done).cpu().numpy()
        return obs, rewards, dones, infos

    def close(self) -> None:
        return None

    # ------------------------------------------------------------------ attribute plumbing
    def _targets(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs):
        fn = getattr(self, method_name)
        return [fn(*method_args, **method_kwargs) for _ in self._targets(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._targets(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [render_rgb(self.core, i) for i in range(self.num_envs)]
