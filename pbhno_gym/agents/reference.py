"""Trivial reference controllers, so every number in a comparison has context.

* :class:`ZeroAgent`: no intervention (every control at its lower bound);
* :class:`ConstantAgent`: a fixed dose, ``level`` of each channel's range (``agents/constant.toml``);
* :class:`RandomAgent`: random pulse schedules from :class:`pbhno_gym.data.RandomPulsePolicy`
  (``agents/random.toml``), the same exploration policy that collects surrogate training data.

None of them learns (0 environment samples) or reads anything but its own settings.
"""

from __future__ import annotations

import time

import numpy as np

from ..data.policies import RandomPulsePolicy
from ..envs.factory import build
from ..envs.spec import EnvSpec, load_spec
from .base import Agent, TrainReport
from .config import load_agent_config

__all__ = ["ZeroAgent", "ConstantAgent", "RandomAgent"]


class _ReferenceAgent(Agent):
    """Shared set-up: control bounds and settings of the env; no training."""

    config_name = ""

    def __init__(self, **overrides) -> None:
        self.overrides = overrides
        self.low = self.high = None
        self.cfg: dict = {}

    def train(self, env, budget, seed, run_dir, device="cpu", evaluate=None, progress=True) -> TrainReport:
        t0 = time.perf_counter()
        spec = env if isinstance(env, EnvSpec) else load_spec(env)
        parts = build(spec)
        self.low = parts.control_low.numpy().astype(np.float32)
        self.high = parts.control_high.numpy().astype(np.float32)
        if self.config_name:
            self.cfg = load_agent_config(self.config_name, spec, self.overrides)
        self._setup(spec, int(seed))
        return TrainReport(0, time.perf_counter() - t0, device="cpu", extra={"settings": dict(self.cfg)})

    def _setup(self, spec: EnvSpec, seed: int) -> None:
        pass

    def _check(self) -> None:
        if self.low is None:
            raise RuntimeError(f"{self.name}: call train() before predict()")


class ZeroAgent(_ReferenceAgent):
    name = "zero"

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        self._check()
        return np.tile(self.low, (np.atleast_2d(obs).shape[0], 1)), state


class ConstantAgent(_ReferenceAgent):
    """Every channel at ``low + level * (high - low)``; ``level`` is a number or one per channel."""

    name = "constant"
    config_name = "constant"

    def _setup(self, spec, seed):
        level = np.asarray(self.cfg.get("level", 0.5), dtype=np.float32)
        if (
            level.ndim > 1
            or (level.ndim == 1 and len(level) != len(self.low))
            or not np.all((0 <= level) & (level <= 1))
        ):
            raise ValueError(
                f"agents/constant.toml: level must be a number in [0, 1] or {len(self.low)} of them, "
                f"got {level}"
            )
        self.u = self.low + level * (self.high - self.low)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        self._check()
        return np.tile(self.u, (np.atleast_2d(obs).shape[0], 1)).astype(np.float32), state


class RandomAgent(_ReferenceAgent):
    """Random pulses; episode schedules are seeded from the agent's seed and an episode counter."""

    name = "random"
    config_name = "random"

    def _setup(self, spec, seed):
        cfg = self.cfg
        self.policy = RandomPulsePolicy(
            self.low, self.high, cfg.get("p_on", 0.15), cfg.get("p_off", 0.3), cfg.get("min_frac", 0.05), seed
        )
        self.seed, self.episodes = seed, 0

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        self._check()
        n = np.atleast_2d(obs).shape[0]
        starts = np.ones(n, bool) if episode_start is None else np.asarray(episode_start, bool)
        if self.policy.level is None or self.policy.level.shape[0] != n or starts.all():
            seeds = [1_000_000 * self.seed + self.episodes + i for i in range(n)]
            self.policy.reset(n, episode_seeds=seeds)
            self.episodes += n
        elif starts.any():
            self.policy.level[starts] = 0.0
        return self.policy.act(n), state
