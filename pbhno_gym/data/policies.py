"""Exploration policies for data collection."""

from __future__ import annotations

import numpy as np
import torch

from ..utils.rng import CounterRNG, seed_to_key

__all__ = ["RandomPulsePolicy", "ZeroPolicy"]


class RandomPulsePolicy:
    """Random pulse schedules: each channel is a two-state (off/on) Markov chain per episode.

    An "on" period draws an amplitude log-uniformly in [min_frac, 1] x the channel's upper
    bound and holds it until the chain switches off. Randomness comes from per-episode counter
    streams keyed by the episode's seed, so an episode's schedule does not depend on which other
    episodes share its batch. Physical units; the environment enforces bounds and budgets.
    """

    def __init__(
        self,
        low: np.ndarray,
        high: np.ndarray,
        p_on: float = 0.15,
        p_off: float = 0.3,
        min_frac: float = 0.05,
        seed: int | None = 0,
    ) -> None:
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)
        self.p_on, self.p_off, self.min_frac = p_on, p_off, min_frac
        self.seed = 0 if seed is None else int(seed)
        self.level: np.ndarray | None = None
        self.rng: CounterRNG | None = None

    def reset(self, n: int, episode_seeds: list[int] | None = None) -> None:
        """Start ``n`` episodes (streams keyed by ``episode_seeds``, default seed + i)."""
        seeds = episode_seeds if episode_seeds is not None else [self.seed + i for i in range(n)]
        self.rng = CounterRNG(n)
        self.rng.seed(torch.tensor([seed_to_key(1_000_003 * s + 17) for s in seeds], dtype=torch.int64))
        self.level = np.zeros((n, len(self.high)))

    def act(self, n: int) -> np.ndarray:
        if self.level is None or self.level.shape[0] != n:
            self.reset(n)
        self.rng.advance()
        U = len(self.high)
        r = self.rng.uniform(0, 2 * U).numpy()
        on = self.level > 0
        turn_on = ~on & (r[:, :U] < self.p_on)
        turn_off = on & (r[:, :U] < self.p_off)
        amp = self.high * np.exp(np.log(self.min_frac) * (1 - r[:, U:]))
        self.level = np.where(turn_on, amp, np.where(turn_off, 0.0, self.level))
        return np.maximum(self.level, self.low).astype(np.float32)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        """SB3-style interface."""
        return self.act(np.atleast_2d(obs).shape[0]), state


class ZeroPolicy:
    """No intervention (the lower bound of every channel)."""

    def __init__(self, low: np.ndarray) -> None:
        self.low = np.asarray(low, np.float32)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return np.tile(self.low, (np.atleast_2d(obs).shape[0], 1)), state
