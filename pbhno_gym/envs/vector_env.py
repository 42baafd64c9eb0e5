"""The natively batched Gymnasium vector env: N environments in one set of tensor ops.

``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point", device="cuda")`` steps all
N environments together on the device (the batched core is the source of truth; the single env
is its batch of one). Autoreset follows Gymnasium 1.x NEXT_STEP semantics: the step after an
episode ends resets that env, ignoring its action, and returns the reset observation with reward
0. Outputs are numpy by default and torch tensors on the device with ``output="torch"``. For the
same seeds it produces the trajectories of ``SyncVectorEnv`` over the single env.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ..utils.rng import seed_to_key
from .checks import action_tensor, check_render_mode, check_seeds
from .core import PathwayCore
from .render import render_rgb
from .spec import EnvSpec, load_spec

__all__ = ["PathwayVectorEnv"]


class PathwayVectorEnv(VectorEnv):
    """N pathway environments stepped as one batch (see :class:`PathwayEnv` for the task).

    Args:
        num_envs: N.
        spec_id / env_spec: which environment (set by registration).
        device: torch device for the simulation (e.g. "cuda").
        output: "numpy" (default) or "torch" (tensors on ``device``, for on-GPU agents).
        render_mode: "rgb_array" renders env 0.
        compile: run each transition (physics, then reward, measurement, observation) through
            ``torch.compile`` (fixed batch N; the first steps compile).
        **overrides: spec fields, as for ``gym.make``. ``world_seed=k`` gives every sub-env the
            same hidden world (one cell line); ``world_seed=[k0, k1, ...]`` (one per sub-env)
            gives each its own. Worlds are fixed across resets; see :mod:`pbhno_gym.envs.worlds`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        spec_id: str | None = None,
        env_spec: EnvSpec | None = None,
        device=None,
        output: str = "numpy",
        render_mode: str | None = None,
        dtype=torch.float32,
        compile: bool = False,
        **overrides,
    ) -> None:
        if output not in ("numpy", "torch"):
            raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        check_render_mode(render_mode, self.metadata["render_modes"])
        world_seeds = (
            overrides.pop("world_seed") if isinstance(overrides.get("world_seed"), (list, tuple)) else None
        )
        self.env_spec = env_spec if env_spec is not None else load_spec(spec_id, overrides)
        self.num_envs, self.output, self.render_mode = num_envs, output, render_mode
        self.core = PathwayCore(
            self.env_spec, num_envs, device, dtype, world_seeds=world_seeds, compile=compile
        )
        self.device = self.core.device
        self.control_names = self.core.control_names
        self.obs_layout = self.core.obs_model.layout
        n_u = self.core.sim.n_controls
        if self.env_spec.normalize_actions:
            self.single_action_space = spaces.Box(-1.0, 1.0, (n_u,), np.float32)
        else:
            self.single_action_space = spaces.Box(
                self.core.low.cpu().numpy().astype(np.float32),
                self.core.high.cpu().numpy().astype(np.float32),
                dtype=np.float32,
            )
        low, high = self.core.obs_model.bounds()
        self.single_observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._autoreset = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._seeded = False

    # ------------------------------------------------------------------ helpers
    def _out(self, t: torch.Tensor):
        """Returned arrays never alias internal state (CPU ``.numpy()`` would share memory)."""
        return t.detach().clone() if self.output == "torch" else t.detach().cpu().numpy().copy()

    def _info(self, info: dict[str, torch.Tensor], valid: torch.Tensor) -> dict[str, Any]:
        out: dict[str, Any] = {}
        v = self._out(valid)
        for k, val in info.items():
            out[k] = self._out(val)
            out["_" + k] = v
        return out

    def _keys(self, seed) -> torch.Tensor | None:
        if seed is None:
            if self._seeded:
                return None
            seed = [int(s) for s in np.random.SeedSequence().generate_state(self.num_envs, dtype=np.uint32)]
        self._seeded = True
        return torch.tensor([seed_to_key(s) for s in seed], dtype=torch.int64)

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        """Reset every env. ``seed`` int -> seeds ``seed + i``; a list -> one per env."""
        seeds = check_seeds(seed, self.num_envs)
        self.core.check_options(options)  # refuse before seeding
        obs = self.core.reset(keys=self._keys(seeds), options=options)
        self._autoreset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        ones = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        return self._out(obs), self._info(self.core.true_info(), ones)

    def step(self, actions):
        a = action_tensor(actions, (self.num_envs, self.core.sim.n_controls), self.control_names, self.device)
        active = ~self._autoreset
        res = self.core.step(a, active)
        obs = res.obs
        if bool(self._autoreset.any()):
            obs = self.core.reset(mask=self._autoreset)
        self._autoreset = res.terminated | res.truncated
        info = self._info({**res.info, **self.core.true_info()}, active)
        return (
            self._out(obs),
            self._out(res.reward.to(torch.float64)),
            self._out(res.terminated),
            self._out(res.truncated),
            info,
        )

    def render(self):
        if self.render_mode == "rgb_array":
            return render_rgb(self.core, 0)
        return None
