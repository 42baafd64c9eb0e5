"""Agent configs: ``agents/<name>.toml``, one dialect and one loader for every controller.

In the spirit of rl-baselines3-zoo's hyperparameter files, each file has a ``[default]`` table
and optional ``["<env id>"]`` tables (e.g. ``["pbhno/MAPK-v0"]``). The settings for an
environment are ``[default]`` updated by that env's table, then by run-time overrides, with
nested tables (``policy_kwargs``, ``estimation``) merged key by key by the one recursive merge
:func:`pbhno_gym.utils.config.merge`. Files live in the repository's ``agents/`` folder and ship
in the wheel under ``pbhno_gym/_specs/agents``. Typed configs (the MPC's
:class:`~pbhno_gym.control.config.MPCConfig`) validate the merged dict this module returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..utils.config import merge, read_toml

if TYPE_CHECKING:
    from ..envs.spec import EnvSpec

__all__ = [
    "agent_config_dir",
    "agent_config_path",
    "read_agent_file",
    "check_tables",
    "env_table",
    "load_agent_config",
]


def agent_config_dir() -> Path:
    """Folder of agent TOMLs: inside the installed wheel, else the source tree's ``agents/``."""
    packaged = Path(__file__).resolve().parents[1] / "_specs" / "agents"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "agents"


def agent_config_path(name_or_path: str | Path) -> Path:
    """``"ppo"`` -> ``agents/ppo.toml``; a path ending in ``.toml`` is returned as is."""
    p = Path(name_or_path)
    return p if p.suffix == ".toml" else agent_config_dir() / f"{name_or_path}.toml"


def check_tables(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``raw`` if it has a ``[default]`` table and every top-level value is a table, else ValueError."""
    if "default" not in raw or not isinstance(raw["default"], Mapping):
        raise ValueError(f"{where}: missing the [default] table")
    for k, v in raw.items():
        if not isinstance(v, Mapping):
            raise ValueError(f'{where}: top-level key {k!r} must be a table ([default] or ["<env id>"])')
    return dict(raw)


def read_agent_file(name_or_path: str | Path) -> tuple[dict[str, Any], Path]:
    """The raw tables of an agent config (``"ppo"`` -> ``agents/ppo.toml``, or a path)."""
    path = agent_config_path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no agent config {path} (known: {', '.join(sorted(x.stem for x in path.parent.glob('*.toml')))})"
        )
    raw = read_toml(path)
    return check_tables(raw, path.name), path


def env_table(raw: Mapping[str, Any], env: str | EnvSpec | None) -> Mapping[str, Any]:
    """The ``["<env id>"]`` table for ``env`` (an id, or a spec: its id, else its ``base`` task's,
    so an Unknown-world task plans and trains with its known-world task's settings), or {}."""
    if env is None:
        return {}
    if isinstance(env, str) and env not in raw:  # a registered id: its spec may name a base task
        from ..envs.spec import SpecError, load_spec

        try:
            env = load_spec(env)
        except SpecError:
            return {}
    ids = [env] if isinstance(env, str) else [env.id, getattr(env, "base", "")]
    for i in ids:
        if i and i in raw:
            return raw[i]
    return {}


def load_agent_config(
    source: str | Path | Mapping[str, Any],
    env_id: str | EnvSpec | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Settings of one controller for one environment: ``[default]`` <- env table <- overrides.

    ``source`` is a config name (``"ppo"``), a TOML path, or the file's tables as a dict;
    ``env_id`` an env id or spec (a spec without a table of its own uses its ``base`` task's).
    """
    if isinstance(source, Mapping):
        raw = check_tables(source, "agent config")
    else:
        raw, _ = read_agent_file(source)
    cfg = merge(raw["default"], env_table(raw, env_id))
    return merge(cfg, overrides or {})
