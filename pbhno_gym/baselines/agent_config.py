"""Controller configs: ``agents/<name>.toml`` with a ``[default]`` table and one table per env id.

In the spirit of rl-baselines3-zoo's hyperparameter files: the settings for an environment are
``[default]`` updated by the ``["<env id>"]`` table (e.g. ``["pbhno/MAPK-v0"]``), then by
run-time overrides. Nested tables (``policy_kwargs``) merge key by key. Files live in the
repository's ``agents/`` folder and ship in the wheel under ``pbhno_gym/_specs/agents``.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["agent_config_dir", "read_agent_file", "load_agent_config", "merge_config"]


def agent_config_dir() -> Path:
    """Folder of agent TOMLs: inside the installed wheel, else the source tree's ``agents/``."""
    packaged = Path(__file__).resolve().parents[1] / "_specs" / "agents"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "agents"


def merge_config(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``; nested dicts merge recursively."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_config(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_agent_file(name_or_path: str | Path) -> tuple[dict[str, Any], Path]:
    """The raw tables of an agent config (``"ppo"`` -> ``agents/ppo.toml``, or a path)."""
    p = Path(name_or_path)
    path = p if p.suffix == ".toml" else agent_config_dir() / f"{name_or_path}.toml"
    if not path.is_file():
        raise FileNotFoundError(
            f"no agent config {path} (known: {', '.join(sorted(x.stem for x in path.parent.glob('*.toml')))})"
        )
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    if "default" not in raw or not isinstance(raw["default"], dict):
        raise ValueError(f"{path.name}: missing the [default] table")
    for k, v in raw.items():
        if not isinstance(v, dict):
            raise ValueError(f'{path.name}: top-level key {k!r} must be a table ([default] or ["<env id>"])')
    return raw, path


def load_agent_config(
    name_or_path: str | Path, env_id: str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Settings of one controller for one environment: default <- env section <- overrides."""
    raw, _ = read_agent_file(name_or_path)
    cfg = raw["default"]
    if env_id is not None and env_id in raw:
        cfg = merge_config(cfg, raw[env_id])
    return merge_config(cfg, overrides or {})
