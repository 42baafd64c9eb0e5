"""Gymnasium environments over the pathway simulators.

Importing this package registers every spec in ``envs/`` (``pbhno/Wnt-v1``, ``pbhno/Notch-v1``,
``pbhno/NotchLattice-v0``, ``pbhno/MAPK-v0``) with an entry point (the single env) and a
``vector_entry_point`` (the natively batched env).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

from .spec import EnvSpec, SpecError, list_specs, load_spec

# torch-backed names load on first use (PEP 562), so ``import pbhno_gym`` registers the env ids
# without importing torch: light tools (e.g. scripts/misspec.py's parent, which forks workers)
# can use ``pbhno_gym.utils`` cheaply
_LAZY = {
    "PathwayCore": "core",
    "PathwayEnv": "pathway_env",
    "PathwayVectorEnv": "vector_env",
    "EnvModel": "factory",
    "build": "factory",
    "build_layout": "factory",
    "build_simulator": "factory",
    "channel_meta": "factory",
    "dataset_meta": "factory",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PathwayCore",
    "PathwayEnv",
    "PathwayVectorEnv",
    "EnvSpec",
    "SpecError",
    "list_specs",
    "load_spec",
    "register_envs",
    "EnvModel",
    "build",
    "build_layout",
    "build_simulator",
    "channel_meta",
    "dataset_meta",
]


def register_envs() -> list[str]:
    """Register every spec id (idempotent); returns the ids."""
    ids = []
    for env_id in list_specs():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="pbhno_gym.envs.pathway_env:make_env",
                vector_entry_point="pbhno_gym.envs.vector_env:PathwayVectorEnv",
                kwargs={"spec_id": env_id},
            )
        ids.append(env_id)
    return ids
