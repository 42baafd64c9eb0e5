"""Roll out a policy on the batched core and record episodes (see :mod:`.format`)."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..envs.core import PathwayCore
from ..envs.factory import dataset_meta
from ..envs.spec import EnvSpec, load_spec
from ..utils.rng import seed_to_key
from .format import Dataset, save_dataset
from .policies import RandomPulsePolicy

__all__ = ["collect_episodes"]


def _record(ep: dict[str, list], core: PathwayCore, obs: torch.Tensor, store_field: bool) -> None:
    """Append the current observation, measurements and true state of every env."""
    ep["obs"].append(obs.cpu().numpy())
    mv = torch.where(core.fresh, core.held, torch.full_like(core.held, float("nan")))
    ep["mv"].append(mv.cpu().numpy())
    ep["mm"].append(core.fresh.cpu().numpy())
    ep["x"].append(core.state.x.cpu().numpy())
    if store_field and core.state.L is not None:
        ep["L"].append(core.state.L.cpu().numpy())


def collect_episodes(
    env: str | EnvSpec,
    n_episodes: int,
    policy: Any = "random",
    num_envs: int = 16,
    seed: int = 0,
    device=None,
    store_field: bool = True,
    out: str | Path | None = None,
    progress: bool = True,
    dtype=torch.float32,
    true_parameters: dict[str, float] | None = None,
    **overrides,
) -> Dataset:
    """Collect ``n_episodes`` full episodes with ``policy`` ("random", "zero" or an SB3-style agent).

    Episodes run in lockstep batches of ``num_envs``; episode e uses seed ``seed + e``, so a
    dataset is reproducible and any episode can be replayed alone with ``env.reset(seed=seed + e)``.

    ``true_parameters`` (natural units) sets the tissue's parameters for every episode *without*
    touching the spec: the spec (and anything fitted from the dataset) keeps its nominal values as
    the prior, and the truth is recorded only in the ``log_theta`` array, for evaluation.
    """
    for name, v in (("n_episodes", n_episodes), ("num_envs", num_envs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    spec = env if isinstance(env, EnvSpec) else load_spec(env, overrides)
    core = PathwayCore(spec, min(num_envs, n_episodes), device, dtype)
    true_lt = None
    if true_parameters:
        try:
            true_lt = core.sim.params.log_theta(
                {**spec.parameters, **true_parameters}, core.dtype, core.device
            )
        except ValueError as e:
            raise ValueError(f"true_parameters: {e}") from None
    B, T = core.B, spec.horizon
    low, high = core.low.cpu().numpy(), core.high.cpu().numpy()
    if policy == "random":
        policy_obj, policy_name = RandomPulsePolicy(low, high, seed=seed), "random_pulse"
    elif policy == "zero":
        from .policies import ZeroPolicy

        policy_obj, policy_name = ZeroPolicy(low), "zero"
    else:
        policy_obj, policy_name = policy, type(policy).__name__
    rec: dict[str, list] = {
        k: []
        for k in (
            "obs",
            "meas_values",
            "meas_mask",
            "actions",
            "rewards",
            "x",
            "L",
            "log_theta",
            "target_params",
            "success",
        )
    }
    n_batches = math.ceil(n_episodes / B)
    bar = tqdm(total=n_episodes * T, desc=f"collect {spec.id}", unit="step", disable=not progress)
    for b in range(n_batches):
        seeds = [seed + b * B + i for i in range(B)]
        opts = None if true_lt is None else {"log_theta": true_lt}
        obs = core.reset(keys=torch.tensor([seed_to_key(s) for s in seeds], dtype=torch.int64), options=opts)
        if isinstance(policy_obj, RandomPulsePolicy):
            policy_obj.reset(B, seeds)
        elif hasattr(policy_obj, "reset"):
            policy_obj.reset(B)
        ep: dict[str, list] = {k: [] for k in ("obs", "mv", "mm", "u", "r", "x", "L")}
        _record(ep, core, obs, store_field)
        for _t in range(T):
            if hasattr(policy_obj, "act"):  # physical-unit exploration policies
                a = torch.as_tensor(policy_obj.act(B), dtype=core.dtype, device=core.device)
                if spec.normalize_actions:
                    a = core.to_normalized(a)
            else:  # SB3-style agents act in the env's own action convention
                a, _ = policy_obj.predict(obs.cpu().numpy(), deterministic=True)
                a = torch.as_tensor(np.asarray(a), dtype=core.dtype, device=core.device)
            res = core.step(a)
            obs = res.obs
            ep["u"].append(res.info["dose"].cpu().numpy())
            ep["r"].append(res.reward.cpu().numpy())
            _record(ep, core, obs, store_field)
            bar.update(B)
        keep = slice(0, min(B, n_episodes - b * B))
        rec["obs"].append(np.stack(ep["obs"], 1)[keep])
        rec["meas_values"].append(np.stack(ep["mv"], 1)[keep])
        rec["meas_mask"].append(np.stack(ep["mm"], 1)[keep])
        rec["actions"].append(np.stack(ep["u"], 1)[keep])
        rec["rewards"].append(np.stack(ep["r"], 1)[keep])
        rec["x"].append(np.stack(ep["x"], 1)[keep])
        if ep["L"]:
            rec["L"].append(np.stack(ep["L"], 1)[keep])
        # the skeleton's columns (meta param_names); hidden mechanisms' parameters stay hidden
        rec["log_theta"].append(core.log_theta[:, : len(core.prior)].cpu().numpy()[keep])
        rec["target_params"].append(core.target_params.cpu().numpy()[keep])
        rec["success"].append(res.info["is_success"].cpu().numpy()[keep])
    bar.close()
    arrays = {
        k: np.concatenate(v).astype(np.float32 if k not in ("meas_mask", "success") else bool)
        for k, v in rec.items()
        if v
    }
    arrays["times"] = (np.arange(T + 1) * spec.control_interval).astype(np.float32)
    meta = dataset_meta(
        core.parts,
        seed=seed,
        policy=policy_name,
        n_episodes=n_episodes,
        true_parameters=dict(true_parameters or {}),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    ds = Dataset(arrays, meta)
    if out is not None:
        save_dataset(out, arrays, meta)
    return ds
