"""Gymnasium environments over the pathway simulators.

Importing this package registers every spec in ``envs/`` (``pbhno/Wnt-v1``, ``pbhno/Notch-v1``,
``pbhno/NotchLattice-v0``, ``pbhno/MAPK-v0``) with an entry point (the single env) and a
``vector_entry_point`` (the natively batched env).
"""

from __future__ import annotations

import gymnasium as gym

from .core import PathwayCore
from .factory import EnvModel, build, build_layout, build_simulator, channel_meta, dataset_meta
from .pathway_env import PathwayEnv
from .spec import EnvSpec, SpecError, list_specs, load_spec
from .vector_env import PathwayVectorEnv

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
