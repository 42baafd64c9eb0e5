"""SB3 hyperparameters from ``agents/<algo>.toml``: constructor kwargs, and rl-baselines3-zoo YAML.

Keys follow rl-baselines3-zoo's hyperparameter files so the two stay interchangeable:

* run keys (not passed to the algorithm): ``n_envs``, ``n_timesteps`` (the zoo's default budget),
  ``normalize`` (VecNormalize: ``true`` or a table of its kwargs, gamma taken from ``gamma``),
  ``noise_type`` / ``noise_std`` (``"normal"`` or ``"ornstein-uhlenbeck"`` action noise), ``policy``;
  ours only: ``checkpoint_every`` (env samples between checkpoints);
* everything else goes to the algorithm's constructor: ``learning_rate`` as a number or
  ``"lin_<initial>"`` (linear decay), ``train_freq`` as an int or ``[n, "step"|"episode"]``,
  ``policy_kwargs`` as a table whose ``activation_fn`` is a name (``"tanh"``, ``"relu"``, ...).

Unknown keys raise a ``ValueError`` naming the key and the file.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from .agent_config import load_agent_config, read_agent_file

__all__ = ["ALGOS", "ZOO_ALGOS", "algo_class", "sb3_kwargs", "zoo_yaml", "RUN_KEYS"]

ALGOS = {
    "ppo": ("stable_baselines3", "PPO"),
    "sac": ("stable_baselines3", "SAC"),
    "td3": ("stable_baselines3", "TD3"),
    "recurrent_ppo": ("sb3_contrib", "RecurrentPPO"),
}
#: rl-baselines3-zoo's names for our algorithms
ZOO_ALGOS = {"ppo": "ppo", "sac": "sac", "td3": "td3", "recurrent_ppo": "ppo_lstm"}
RUN_KEYS = ("n_envs", "n_timesteps", "normalize", "noise_type", "noise_std", "policy", "checkpoint_every")
_OURS_ONLY = ("checkpoint_every",)
_ACTIVATIONS = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
}


def algo_class(algo: str):
    """The SB3 algorithm class of ``algo`` (imported on demand)."""
    if algo not in ALGOS:
        raise ValueError(f"unknown SB3 algorithm {algo!r}; known: {', '.join(ALGOS)}")
    import importlib

    mod, cls = ALGOS[algo]
    return getattr(importlib.import_module(mod), cls)


def _linear(initial: float) -> Callable[[float], float]:
    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule


def _schedule(key: str, value: Any, where: str):
    if isinstance(value, str):
        kind, _, num = value.partition("_")
        if kind != "lin":
            raise ValueError(f"{where}.{key}: schedules are 'lin_<initial>', got {value!r}")
        return _linear(float(num))
    return float(value)


def _policy_kwargs(pk: dict[str, Any], where: str) -> dict[str, Any]:
    import torch.nn as nn

    out = dict(pk)
    if "activation_fn" in out:
        name = out["activation_fn"]
        if name not in _ACTIVATIONS:
            raise ValueError(
                f"{where}.policy_kwargs.activation_fn: one of {sorted(_ACTIVATIONS)}, got {name!r}"
            )
        out["activation_fn"] = getattr(nn, _ACTIVATIONS[name])
    return out


def sb3_kwargs(algo: str, cfg: dict[str, Any], n_actions: int, where: str = "agent config") -> dict[str, Any]:
    """Constructor kwargs of the SB3 algorithm from a merged config (run keys removed)."""
    cls = algo_class(algo)
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "env", "policy", "_init_setup_model"}
    kw: dict[str, Any] = {}
    for k, v in cfg.items():
        if k in RUN_KEYS:
            continue
        if k not in allowed:
            raise ValueError(
                f"{where}: unknown key {k!r} for {cls.__name__}; allowed: {', '.join(sorted(allowed))}"
            )
        if k in ("learning_rate", "clip_range", "clip_range_vf"):
            v = _schedule(k, v, where)
        elif k == "train_freq" and isinstance(v, list):
            v = (int(v[0]), str(v[1]))
        elif k == "policy_kwargs":
            v = _policy_kwargs(v, where)
        kw[k] = v
    noise = cfg.get("noise_type")
    if noise is not None:
        from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

        sigma = float(cfg.get("noise_std", 0.1)) * np.ones(n_actions)
        kinds = {"normal": NormalActionNoise, "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}
        if noise not in kinds:
            raise ValueError(f"{where}.noise_type: one of {sorted(kinds)}, got {noise!r}")
        kw["action_noise"] = kinds[noise](mean=np.zeros(n_actions), sigma=sigma)
    return kw


def _py(v: Any) -> str:
    """A Python literal the zoo can ``eval`` (activations as ``nn.<Name>``)."""
    if isinstance(v, dict):
        return "dict(" + ", ".join(f"{k}={_py(x)}" for k, x in v.items()) + ")"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_py(x) for x in v) + "]"
    if isinstance(v, str):
        return f"nn.{_ACTIVATIONS[v]}" if v in _ACTIVATIONS else repr(v)
    return repr(v)


def zoo_entry(algo: str, env_id: str) -> dict[str, Any]:
    """One env's hyperparameters in rl-baselines3-zoo's vocabulary."""
    cfg = load_agent_config(algo, env_id)
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if k in _OURS_ONLY:
            continue
        if k == "policy_kwargs":
            v = _py(v)
        elif k == "train_freq" and isinstance(v, list):
            v = list(v)
        out[k] = v
    return out


def zoo_yaml(algo: str, env_ids: list[str] | None = None) -> str:
    """rl-baselines3-zoo hyperparameter YAML for ``algo`` on ``env_ids`` (default: every env id).

    Values are written as JSON flow scalars, which YAML 1.1/1.2 parsers (``yaml.safe_load``)
    read unchanged, so no YAML library is needed.
    """
    import pbhno_gym

    raw, path = read_agent_file(algo)
    ids = list(env_ids) if env_ids else list(pbhno_gym.ENV_IDS)
    lines = [
        f"# rl-baselines3-zoo hyperparameters for {ZOO_ALGOS[algo]}, generated from agents/{path.name}",
        f"# python -m rl_zoo3.train --algo {ZOO_ALGOS[algo]} --env <id> --gym-packages pbhno_gym "
        "-conf <this file> --env-kwargs normalize_actions:True",
    ]
    for env_id in ids:
        lines.append(f"{json.dumps(env_id)}:")
        for k, v in zoo_entry(algo, env_id).items():
            lines.append(f"  {k}: {json.dumps(v)}")
    return "\n".join(lines) + "\n"
