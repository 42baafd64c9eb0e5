"""Closed-loop evaluation of MPC agents on the natively batched vector env."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..envs.vector_env import PathwayVectorEnv
from .agent import MPCAgent, OracleMPCAgent

__all__ = ["run_closed_loop", "evaluate_mpc"]


def run_closed_loop(
    make_agent: Callable[[PathwayVectorEnv], Any],
    env_id: str,
    episodes: int,
    num_envs: int | None = None,
    seed: int = 0,
    device=None,
    dtype=torch.float32,
    reset_options: dict | None = None,
    progress: Callable[[str], None] | None = None,
    **overrides,
) -> dict[str, Any]:
    """Run ``episodes`` full episodes (episode e seeded ``seed + e``) in lockstep batches.

    Args:
        make_agent: ``venv -> agent`` with an SB3-style ``predict`` (called once per batch).
        env_id, overrides: the environment (spec overrides as for ``gym.make``).
        num_envs: episodes simulated together (default: all).
        reset_options: passed to every reset (e.g. ``{"log_theta": ...}``).
        progress: called with a line per finished batch.
    Returns:
        Per-episode arrays (``cost`` = -return, ``success`` at the last step, ``final_error``
        = RMS tracking error at the last step, ``energy`` = sum of mean (u/u_max)^2,
        ``log_theta``), their means, and ``latency_s`` per predict call (all envs together).
    """
    n = max(1, min(num_envs or episodes, episodes))
    venv = PathwayVectorEnv(num_envs=n, spec_id=env_id, device=device, dtype=dtype, **overrides)
    agent = make_agent(venv)
    H = venv.env_spec.horizon
    out: dict[str, list] = {k: [] for k in ("cost", "success", "final_error", "energy", "log_theta")}
    lat: list[float] = []
    for r in range(math.ceil(episodes / n)):
        obs, info = venv.reset(seed=[seed + r * n + i for i in range(n)], options=reset_options)
        ret, energy = np.zeros(n), np.zeros(n)
        lt = info["log_theta"]
        for _ in range(H):
            t0 = time.perf_counter()
            act, _ = agent.predict(obs)
            lat.append(time.perf_counter() - t0)
            obs, rew, term, trunc, info = venv.step(act)
            ret += rew
            energy += info["energy"]
        k = min(n, episodes - r * n)
        out["cost"] += list(-ret[:k])
        out["success"] += list(np.asarray(info["is_success"][:k], bool))
        out["final_error"] += list(info["tracking_error"][:k])
        out["energy"] += list(energy[:k])
        out["log_theta"] += list(lt[:k])
        if progress is not None:
            progress(
                f"batch {r + 1}: episodes {r * n}..{r * n + k - 1}, success "
                f"{np.mean(out['success']):.2f}, mean cost {np.mean(out['cost']):.4f}"
            )
    res: dict[str, Any] = {k: np.asarray(v) for k, v in out.items()}
    res.update(
        success_rate=float(np.mean(res["success"])),
        mean_cost=float(np.mean(res["cost"])),
        mean_final_error=float(np.mean(res["final_error"])),
        mean_energy=float(np.mean(res["energy"])),
        latency_s=float(np.mean(lat)),
        num_envs=n,
        episodes=episodes,
    )
    return res


def evaluate_mpc(
    env_id: str,
    episodes: int,
    oracle: bool = False,
    config=None,
    model=None,
    **kwargs,
) -> dict[str, Any]:
    """:func:`run_closed_loop` for the :class:`MPCAgent` (``model`` or the nominal simulator)
    or, with ``oracle=True``, the :class:`OracleMPCAgent`."""

    def make(venv):
        if oracle:
            return OracleMPCAgent(venv, config)
        return MPCAgent.from_config(config, model, venv.env_spec)

    return run_closed_loop(make, env_id, episodes, **kwargs)
