"""The one evaluation code path: every controller, learning curve point and table row goes through
:func:`evaluate_agent`.

Held-out episodes run together in one batched :class:`~pbhno_gym.envs.PathwayCore` (the same core
as the Gymnasium envs), so episode ``seed`` here is exactly ``gym.make(id).reset(seed=seed)``.
The agent sees only observations (SB3 ``predict(obs, state, episode_start, deterministic)``,
batched, actions in the env's physical units) and every agent meets the same seeds, hence the
same targets, initial states and measurement noise. Per episode we record:

* ``success``: ``info["is_success"]`` at the episode's last step;
* ``final_error`` (the one definition, used by every table, curve, ``pbhno plan`` and the MPC
  benchmarks): the mean, over the last ``w = max(1, min(success_window, horizon))`` steps the
  episode took (all of them if it took fewer, e.g. after a numerical failure), of the step's RMS
  phenotype error ``info["tracking_error"] = sqrt(mean_i (p_i - p*_i)^2)`` (normalised phenotype
  after the step against that step's target), i.e. the error over the window success is judged
  on, not the error at the last step alone;
* ``energy``: intervention energy, the sum over steps of ``sum_j (u_j / u_max_j)^2``;
* ``return``: the sum of rewards; ``dose``: the cumulative dose per channel;

and per decision step the wall time of the ``predict`` call (``latency_ms`` below is that time
divided by the batch, i.e. amortised per decision; ``call_ms`` is the whole batched call).
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from ..envs.core import PathwayCore
from ..envs.spec import EnvSpec, load_spec
from ..utils.io import atomic_write_bytes, atomic_write_json
from ..utils.rng import seed_to_key
from .stats import mean_with_ci, wilson_interval

__all__ = [
    "Policy",
    "EvalResult",
    "evaluate_agent",
    "heldout_seeds",
    "HELDOUT_SEED_BASE",
    "MAX_TRAIN_SEED",
]

#: Evaluation seeds start here; training seeds (and the ``seed + i`` SB3 derives) stay below
#: :data:`MAX_TRAIN_SEED`, so evaluation episodes are never training episodes.
HELDOUT_SEED_BASE = 1 << 40
MAX_TRAIN_SEED = 1 << 32
_SPLITS = {"test": 0, "validation": 1}


class Policy(Protocol):
    """Anything with SB3's ``predict``; actions in the environment's physical units."""

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]: ...


def heldout_seeds(n: int, split: str = "test") -> list[int]:
    """``n`` fixed evaluation seeds: ``"test"`` (tables) or ``"validation"`` (learning curves).

    The splits are disjoint from each other and from every training seed (< 2^32).
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    if n < 1:
        raise ValueError(f"n (number of evaluation episodes) must be positive, got {n}")
    base = HELDOUT_SEED_BASE * (1 + _SPLITS[split])
    return [base + i for i in range(n)]


@dataclass
class EvalResult:
    """Per-episode metrics of one agent on one environment (arrays over episodes)."""

    env_id: str
    seeds: list[int]
    success: np.ndarray  # (n,) bool
    final_error: np.ndarray  # (n,)
    energy: np.ndarray  # (n,)
    returns: np.ndarray  # (n,)
    dose: np.ndarray  # (n, n_u) physical units x min
    steps: np.ndarray  # (n,) steps taken (< horizon only after a numerical failure)
    failed: np.ndarray  # (n,) bool, numerical failure
    call_s: np.ndarray  # (decision steps,) wall time of each batched predict call
    batch: int  # envs per predict call
    control_names: tuple[str, ...] = ()
    dt: float = 1.0
    trajectories: dict[str, np.ndarray] = field(default_factory=dict)  # first ``record`` episodes
    target_class: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))  # (n,) labels

    @property
    def n(self) -> int:
        return len(self.seeds)

    def summary(self) -> dict[str, float]:
        """Aggregates with 95 % intervals (Wilson for the success rate, bootstrap for means)."""
        k = int(self.success.sum())
        lo, hi = wilson_interval(k, self.n)
        err, en, ret = mean_with_ci(self.final_error), mean_with_ci(self.energy), mean_with_ci(self.returns)
        med = float(np.median(self.call_s)) if len(self.call_s) else float("nan")
        return {
            "episodes": self.n,
            "successes": k,
            "success_rate": k / self.n,
            "success_lo": lo,
            "success_hi": hi,
            "final_error": err["mean"],
            "final_error_lo": err["lo"],
            "final_error_hi": err["hi"],
            "energy": en["mean"],
            "energy_lo": en["lo"],
            "energy_hi": en["hi"],
            "return": ret["mean"],
            "return_lo": ret["lo"],
            "return_hi": ret["hi"],
            "numerical_failures": int(self.failed.sum()),
            "latency_ms": 1e3 * med / max(self.batch, 1),
            "call_ms": 1e3 * med,
            "eval_batch": self.batch,
        }

    def by_class(self) -> dict[str, dict[str, float]]:
        """Success (with its Wilson interval) and mean final error per target class."""
        out = {}
        labels = np.asarray(self.target_class, dtype=object)
        for c in sorted(set(labels.tolist())):
            m = labels == c
            k, n = int(self.success[m].sum()), int(m.sum())
            lo, hi = wilson_interval(k, n)
            out[c] = {
                "episodes": n,
                "successes": k,
                "success_rate": k / n,
                "success_lo": lo,
                "success_hi": hi,
                "final_error": float(np.mean(self.final_error[m])),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "trajectories":
                continue
            out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        out["control_names"] = list(self.control_names)
        out["summary"] = self.summary()
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], trajectories: dict[str, np.ndarray] | None = None) -> EvalResult:
        kw = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d and f.name != "trajectories"}
        for k in ("success", "failed"):
            kw[k] = np.asarray(kw[k], dtype=bool)
        for k in ("final_error", "energy", "returns", "dose", "call_s"):
            kw[k] = np.asarray(kw[k], dtype=np.float64)
        kw["steps"] = np.asarray(kw["steps"], dtype=np.int64)
        kw["control_names"] = tuple(kw.get("control_names", ()))
        kw["target_class"] = np.asarray(kw.get("target_class", []), dtype=object)
        return cls(**kw, trajectories=dict(trajectories or {}))

    def save(self, path: str | Path) -> Path:
        """Per-episode JSON (atomic) and, if recorded, the trajectories as ``<stem>_traj.npz``."""
        path = Path(path)
        if self.trajectories:
            buf = io.BytesIO()
            np.savez_compressed(buf, **self.trajectories)
            atomic_write_bytes(path.with_name(path.stem + "_traj.npz"), buf.getvalue())
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> EvalResult:
        path = Path(path)
        traj_path = path.with_name(path.stem + "_traj.npz")
        traj = None
        if traj_path.exists():
            with np.load(traj_path) as z:
                traj = {k: z[k] for k in z.files}
        return cls.from_json(json.loads(path.read_text()), traj)


def physical_spec(env: str | EnvSpec) -> EnvSpec:
    """The spec with actions in physical units (what every agent here returns)."""
    spec = env if isinstance(env, EnvSpec) else load_spec(env)
    return dataclasses.replace(spec, normalize_actions=False) if spec.normalize_actions else spec


def evaluate_agent(
    agent: Policy,
    env: str | EnvSpec,
    seeds: Sequence[int],
    device=None,
    batch_size: int | None = None,
    record: int = 0,
    progress: bool = False,
    desc: str | None = None,
    options: dict | None = None,
    world_seeds: Sequence[int] | None = None,
) -> EvalResult:
    """Run one full episode per seed with ``agent`` and return the per-episode metrics.

    Args:
        agent: SB3-style ``predict``; called on the batch of observations every step, with the
            recurrent ``state`` it returned and ``episode_start`` true at the first step.
        env: environment id or spec (actions are always physical units here).
        seeds: episode seeds (use :func:`heldout_seeds` for comparisons).
        batch_size: episodes simulated together (all by default).
        record: how many of the first episodes to keep full trajectories of (for figures).
        options: passed to every reset (``{"log_theta": ...}``, ``{"target": k}``: chosen conditions).
        world_seeds: one hidden-world seed per episode (episodes of several worlds share a batch;
            default: every episode in the spec's own world).
    """
    spec = physical_spec(env)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate_agent: seeds must not be empty")
    if world_seeds is not None and len(world_seeds) != len(seeds):
        raise ValueError(f"world_seeds: expected one per episode ({len(seeds)}), got {len(world_seeds)}")
    B = min(batch_size or len(seeds), len(seeds))
    T = spec.horizon
    window = max(1, min(spec.target.success_window, T))
    cols: dict[str, list] = {
        k: [] for k in ("success", "err", "energy", "ret", "dose", "steps", "failed", "class")
    }
    traj: dict[str, list] = {"phenotype": [], "target": [], "dose": []}
    call_s: list[float] = []
    names: tuple[str, ...] = ()
    dt = spec.control_interval
    n_chunks = -(-len(seeds) // B)
    bar = tqdm(total=n_chunks * T, desc=desc or "evaluate", disable=not progress, leave=False)
    for c in range(n_chunks):
        chunk = seeds[c * B : (c + 1) * B]
        ws = None if world_seeds is None else [int(w) for w in world_seeds[c * B : (c + 1) * B]]
        core = PathwayCore(spec, len(chunk), device, world_seeds=ws)
        if getattr(agent, "uses_true_model", False) and hasattr(agent, "attach"):
            agent.attach(core)  # oracles (and only they) read the episodes' true state and parameters
        names, n_u, nb = core.control_names, core.sim.n_controls, len(chunk)
        keys = torch.tensor([seed_to_key(s) for s in chunk], dtype=torch.int64)
        with torch.no_grad():
            obs = core.reset(keys=keys, options=options)
        cols["class"].append(core.targets.classes(core.target_params))
        high = core.high.clamp_min(1e-12)
        active = torch.ones(nb, dtype=torch.bool, device=core.device)
        state, starts = None, np.ones(nb, dtype=bool)
        err = torch.full((nb, T), float("nan"), dtype=torch.float64)
        success = torch.zeros(nb, dtype=torch.bool)
        energy = torch.zeros(nb, dtype=torch.float64)
        ret = torch.zeros(nb, dtype=torch.float64)
        steps = torch.zeros(nb, dtype=torch.long)
        failed = torch.zeros(nb, dtype=torch.bool)
        k = max(0, min(record - c * B, nb))
        ph = [core.phenotype()[:k].cpu()]
        tg = [core.goal()[:k, 0].cpu()]
        us = []
        for t in range(T):
            o = obs.cpu().numpy()
            t0 = time.perf_counter()
            act, state = agent.predict(o, state=state, episode_start=starts, deterministic=True)
            call_s.append(time.perf_counter() - t0)
            act = np.asarray(act, dtype=np.float32)
            if act.shape != (nb, n_u):
                raise ValueError(
                    f"evaluate_agent: {type(agent).__name__}.predict returned actions of shape {act.shape}, "
                    f"expected ({nb}, {n_u}) for controls [{', '.join(names)}]"
                )
            starts = np.zeros(nb, dtype=bool)
            with torch.no_grad():
                res = core.step(torch.as_tensor(act, device=core.device), active)
            info = {k2: v.cpu() for k2, v in res.info.items()}
            a = active.cpu()
            err[a, t] = info["tracking_error"][a].double()
            energy += torch.where(a, info["energy"].double(), 0.0)
            ret += torch.where(a, res.reward.cpu().double(), 0.0)
            steps += a.long()
            done = res.truncated.cpu() & a
            success = torch.where(done, info["is_success"], success)
            failed |= info["numerical_failure"] & a
            ph.append(info["phenotype"][:k])
            tg.append(info["target"][:k])
            us.append(info["dose"][:k] / high.cpu())
            active = active & ~res.truncated
            obs = res.obs
            bar.update(1)
            if not bool(active.any()):
                break
        dose = core.dose_used.cpu().double()
        idx = torch.arange(T)[None, :]
        in_win = (idx >= (steps - window)[:, None]) & (idx < steps[:, None])
        last = (err.nan_to_num() * in_win).sum(1) / in_win.sum(1).clamp_min(1)
        cols["success"].append(success.numpy())
        cols["err"].append(last.numpy())
        cols["energy"].append(energy.numpy())
        cols["ret"].append(ret.numpy())
        cols["dose"].append(dose.numpy())
        cols["steps"].append(steps.numpy())
        cols["failed"].append(failed.numpy())
        if k:
            traj["phenotype"].append(torch.stack(ph, 1).numpy())
            traj["target"].append(torch.stack(tg, 1).numpy())
            traj["dose"].append(torch.stack(us, 1).numpy())
    bar.close()
    trajectories = {key: np.concatenate(v) for key, v in traj.items() if v}
    return EvalResult(
        env_id=spec.id,
        seeds=seeds,
        success=np.concatenate(cols["success"]).astype(bool),
        final_error=np.concatenate(cols["err"]),
        energy=np.concatenate(cols["energy"]),
        returns=np.concatenate(cols["ret"]),
        dose=np.concatenate(cols["dose"]),
        steps=np.concatenate(cols["steps"]),
        failed=np.concatenate(cols["failed"]).astype(bool),
        call_s=np.asarray(call_s),
        target_class=np.asarray(sum(cols["class"], []), dtype=object),
        batch=B,
        control_names=tuple(names),
        dt=dt,
        trajectories=trajectories,
    )
