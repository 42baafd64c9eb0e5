"""Argument checks shared by the single env, the vector env and the SB3 adapter.

Every check runs before anything changes (state, RNG streams, seeding flags), so a refused call
leaves the environment exactly as it was, and every message names the argument and what it
accepts. Values are refused rather than coerced: a string, bool or complex action is almost
always a bug upstream, and silently converting it hides that bug.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["action_tensor", "check_render_mode", "check_seed", "check_seeds", "resolve_dtype"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(dtype: Any) -> torch.dtype:
    """``dtype`` as a torch floating dtype: torch.float32/float64, numpy's, or the strings
    "float32"/"float64" (also "torch.float32"); anything else is refused."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if isinstance(dtype, str):
        key = dtype.removeprefix("torch.")
        if key in _DTYPES:
            return _DTYPES[key]
    elif not isinstance(dtype, torch.dtype):
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
        if name in _DTYPES:
            return _DTYPES[name]
    raise ValueError(f"dtype must be float32 or float64 (torch dtype or string), got {dtype!r}")


def check_render_mode(render_mode: str | None, modes: Sequence[str]) -> None:
    """Refuse a render mode the env does not offer, listing the ones it does."""
    if render_mode is not None and render_mode not in modes:
        raise ValueError(
            f"render_mode must be None or one of {list(modes)}, got {render_mode!r} "
            "(wrap an rgb_array env yourself for on-screen display)"
        )


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed: a non-negative int (numpy ints included, bools refused)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int or None, got {seed!r} ({type(seed).__name__})")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int or None, got {seed}")
    return int(seed)


def check_seeds(seed: Any, n: int) -> list[int] | None:
    """Vector-env seeds: None, one int (env i gets ``seed + i``) or a sequence of ``n`` ints."""
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        s = check_seed(seed)
        return [s + i for i in range(n)]
    if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
        raise TypeError(f"seed must be None, an int or a list of {n} ints, got {seed!r}")
    if len(seed) != n:
        raise ValueError(f"seed: expected {n} seeds (one per env), got {len(seed)}")
    return [check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]


def action_tensor(action: Any, shape: tuple[int, ...], names: Sequence[str], device) -> Tensor:
    """``action`` as a tensor of ``shape`` on ``device``; strings, bools, complex numbers,
    objects and mis-shaped input are refused (TypeError/ValueError naming ``action``)."""
    what = f"action must have shape {shape} of real numbers for controls [{', '.join(names)}]"
    if torch.is_tensor(action):
        t = action
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"{what}, got a {t.dtype} tensor")
    else:
        if isinstance(action, (str, bytes, Mapping)):
            raise TypeError(f"{what}, got {type(action).__name__} {action!r}")
        try:
            a = np.asarray(action)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{what}, got {action!r} ({e})") from None
        if a.dtype.kind not in "fiu":
            raise TypeError(f"{what}, got dtype {a.dtype} ({action!r})")
        t = torch.as_tensor(a)
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{what}, got shape {tuple(t.shape)}")
    return t.to(device)
