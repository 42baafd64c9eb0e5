"""Counter-based random numbers: one independent stream per environment, vectorised on any device.

Each environment has a 64-bit key (from its seed) and a step counter. A draw hashes
(key, counter, stream id, index) with splitmix64, so environment i of a batched env receives
exactly the numbers a single env seeded the same way receives, whatever else is in the batch
and on whichever device: the native vector env equals ``SyncVectorEnv`` by construction.

torch's int64 arithmetic wraps modulo 2^64, which splitmix64 relies on; right shifts are made
logical by masking. A test checks the hash against a pure-Python reference.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["splitmix64", "seed_to_key", "CounterRNG"]

_M64 = (1 << 64) - 1


def _s64(c: int) -> int:
    """An unsigned 64-bit constant as the signed int64 torch stores."""
    return c - (1 << 64) if c >= (1 << 63) else c


_GOLDEN = _s64(0x9E3779B97F4A7C15)
_MIX1 = _s64(0xBF58476D1CE4E5B9)
_MIX2 = _s64(0x94D049BB133111EB)


def _shr(z: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def splitmix64(x: Tensor) -> Tensor:
    """The splitmix64 finaliser on an int64 tensor (elementwise, wrapping arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    return z ^ _shr(z, 31)


def splitmix64_reference(x: int) -> int:
    """Pure-Python splitmix64 (unsigned), the reference for tests."""
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def seed_to_key(seed: int) -> int:
    """A stream key from a user seed (any Python int)."""
    return _s64(splitmix64_reference(int(seed) & _M64))


class CounterRNG:
    """Per-environment streams: ``keys`` (B,) int64 and ``counters`` (B,) int64.

    ``uniform``/``normal`` draw (B, n) numbers for one (stream, counter) pair; callers advance
    counters explicitly with :meth:`advance` (the envs do it once per step and per reset), so a
    stream's numbers depend only on the env's seed and how many steps it has taken.
    """

    def __init__(self, batch: int, device=None) -> None:
        self.device = torch.device(device or "cpu")
        self.keys = torch.zeros(batch, dtype=torch.int64, device=self.device)
        self.counters = torch.zeros(batch, dtype=torch.int64, device=self.device)

    def seed(self, keys: Tensor, mask: Tensor | None = None) -> None:
        """Set keys (and zero counters) for the envs in ``mask`` (all if None)."""
        keys = keys.to(device=self.device, dtype=torch.int64)
        if mask is None:
            self.keys, self.counters = keys.clone(), torch.zeros_like(keys)
        else:
            self.keys = torch.where(mask, keys, self.keys)
            self.counters = torch.where(mask, torch.zeros_like(self.counters), self.counters)

    def advance(self, mask: Tensor | None = None) -> None:
        self.counters = self.counters + (1 if mask is None else mask.to(torch.int64))

    def bits(self, stream: int, n: int, rows: Tensor | None = None) -> Tensor:
        """(B, n) random int64 words for this stream at the current counters."""
        keys, ctr = (self.keys, self.counters) if rows is None else (self.keys[rows], self.counters[rows])
        base = splitmix64(keys ^ splitmix64(ctr * 1_000_003 + int(stream)))
        idx = torch.arange(n, dtype=torch.int64, device=self.device) * _GOLDEN
        return splitmix64(base[:, None] + idx[None, :])

    def uniform(self, stream: int, n: int, rows: Tensor | None = None, dtype=torch.float64) -> Tensor:
        """(B, n) uniforms in [0, 1) with 53 random bits."""
        return (_shr(self.bits(stream, n, rows), 11).to(torch.float64) * 2.0**-53).to(dtype)

    def normal(self, stream: int, n: int, rows: Tensor | None = None, dtype=torch.float64) -> Tensor:
        """(B, n) standard normals (Box-Muller on two uniform draws)."""
        u = self.uniform(stream, 2 * n, rows)
        u1 = u[:, :n].clamp_min(2.0**-53)
        return (torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * torch.pi * u[:, n:])).to(dtype)
