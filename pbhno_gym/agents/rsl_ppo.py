"""rsl-rl PPO on the natively batched env: the high-throughput RL agent (``rsl_ppo``, issue 16).

SB3 steps its ``VecEnv`` through numpy arrays and per-env info dicts; rsl-rl's PPO consumes
batched torch tensors, so here the rollout runs as tensor ops from the simulator
(:class:`~pbhno_gym.envs.core.PathwayCore`, ``n_envs`` sub-envs, normalised actions, the same
autoreset in the same step as :class:`~pbhno_gym.envs.sb3.SB3VecEnv`) to the policy and the
rollout storage, on one device. The library was chosen by measurement (docs/benchmarks.md, "RL
training throughput"); stable-baselines3 PPO (``ppo``) stays the reference implementation.

Hyperparameters come from ``agents/rsl_ppo.toml`` (``[default]`` <- env table <- overrides):

* run keys: ``n_envs``, ``num_steps_per_env`` (rollout length), ``n_timesteps`` (default budget),
  ``checkpoint_every`` (env samples), ``policy`` (``hidden_dims``, ``activation``,
  ``obs_normalization``, ``init_std``: the actor and the critic share the MLP settings),
  ``compile_env`` (the batched env's transition through ``torch.compile``: the same episodes to
  float32 round-off, faster where the simulator dominates, after ~15-60 s of compiling;
  docs/benchmarks.md);
* every other key goes to :class:`rsl_rl.algorithms.PPO` (``gamma``, ``lam``, ``learning_rate``,
  ``schedule``, ...); unknown keys raise a ``ValueError`` naming the key and the file.

It writes into ``run_dir``: ``checkpoints/`` every ``checkpoint_every`` env samples, between
updates (atomic, last two kept): the networks, the optimiser, the adaptive learning rate, the
torch RNG and the simulator's state (episodes in flight and their random streams included),
so an interrupted ``train`` with the same settings (a larger budget allowed) resumes exactly
where it stopped and reaches the uninterrupted run's weights; then ``model.pt``,
``env_spec.json`` and ``train_report.json``: a later ``train`` with the same env, config, budget
and seed loads it instead of training.

The hidden world is the spec's: ``world_seed`` and ``randomize_parameters`` (domain
randomisation over the prior) are spec fields and reach the batched core unchanged.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..envs.core import PathwayCore
from ..envs.spec import EnvSpec, load_spec
from ..physics.simulator import SimState
from ..utils.io import atomic_torch_save, atomic_write_json, safe_torch_load
from ..utils.rng import seed_to_key
from .base import ConfiguredAgent, TrainReport, domain_randomized, jsonable

__all__ = ["RslPPOAgent", "RUN_KEYS", "ppo_kwargs"]

RUN_KEYS = ("n_envs", "num_steps_per_env", "n_timesteps", "checkpoint_every", "policy", "compile_env")
_POLICY_KEYS = ("hidden_dims", "activation", "obs_normalization", "init_std")
_GROUPS = {"actor": ["policy"], "critic": ["policy"]}


def _positive_int(cfg: dict[str, Any], key: str, where: str) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{where}.{key}: a positive int, got {v!r}")
    return v


def _flag(cfg: dict[str, Any], key: str, where: str) -> bool:
    v = cfg.get(key, False)
    if not isinstance(v, bool):
        raise ValueError(f"{where}.{key}: true or false, got {v!r}")
    return v


def ppo_kwargs(cfg: dict[str, Any], where: str = "agent config") -> dict[str, Any]:
    """Constructor kwargs of :class:`rsl_rl.algorithms.PPO` from a merged config (run keys removed)."""
    from rsl_rl.algorithms import PPO

    ours = {"self", "actor", "critic", "storage", "device", "multi_gpu_cfg", "rnd_cfg", "symmetry_cfg"}
    allowed = set(inspect.signature(PPO.__init__).parameters) - ours
    kw = {}
    for k, v in cfg.items():
        if k in RUN_KEYS:
            continue
        if k not in allowed:
            raise ValueError(
                f"{where}: unknown key {k!r} for rsl_rl PPO; allowed: {', '.join(sorted(allowed))}"
            )
        kw[k] = v
    return kw


def _policy_cfg(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    pol = dict(cfg.get("policy", {}))
    bad = set(pol) - set(_POLICY_KEYS)
    if bad:
        raise ValueError(f"{where}.policy: unknown key(s) {sorted(bad)}; allowed: {', '.join(_POLICY_KEYS)}")
    return pol


def _models(obs_dim: int, n_act: int, pol: dict[str, Any], device: torch.device):
    """The actor (Gaussian, state-independent std) and the critic, rsl-rl ``MLPModel``s."""
    from rsl_rl.models import MLPModel
    from tensordict import TensorDict

    example = TensorDict({"policy": torch.zeros(1, obs_dim)}, batch_size=[1])
    common = dict(
        hidden_dims=list(pol.get("hidden_dims", [64, 64])),
        activation=str(pol.get("activation", "tanh")),
        obs_normalization=bool(pol.get("obs_normalization", True)),
    )
    dist = {"class_name": "GaussianDistribution", "init_std": float(pol.get("init_std", 1.0))}
    actor = MLPModel(example, _GROUPS, "actor", n_act, distribution_cfg=dist, **common).to(device)
    critic = MLPModel(example, _GROUPS, "critic", 1, **common).to(device)
    return actor, critic


class _BatchedEnv:
    """The batched core as rsl-rl's ``VecEnv``: torch tensors in and out, actions in [-1, 1],
    autoreset in the same step (the returned observation starts the next episode), ``time_outs``
    for horizon ends (rsl-rl bootstraps them). No per-env Python objects in the step."""

    def __init__(self, spec: EnvSpec, num_envs: int, device: str, seed: int, compile: bool = False) -> None:
        self.core = PathwayCore(
            dataclasses.replace(spec, normalize_actions=True), num_envs, device, compile=compile
        )
        self.num_envs, self.num_actions = num_envs, self.core.sim.n_controls
        self.device, self.cfg = self.core.device, {}
        self.max_episode_length = spec.horizon
        seeds = np.random.SeedSequence(seed).generate_state(num_envs, dtype=np.uint32)
        keys = torch.tensor([seed_to_key(int(s)) for s in seeds], dtype=torch.int64)
        self.obs = self.core.reset(keys=keys)
        self.episode_length_buf = self.core.t

    def get_observations(self):
        from tensordict import TensorDict

        return TensorDict({"policy": self.obs}, batch_size=[self.num_envs], device=self.device)

    def step(self, actions: torch.Tensor):
        res = self.core.step(actions.clamp(-1.0, 1.0))
        done = res.terminated | res.truncated
        self.obs = self.core.reset(mask=done) if bool(done.any()) else res.obs
        return (
            self.get_observations(),
            res.reward.float(),
            done,
            {"time_outs": res.truncated & ~res.terminated},
        )

    # the simulator's whole mutable state, for exact resume
    def state_dict(self) -> dict[str, torch.Tensor]:
        c = self.core
        out = {f"core.{k}": v.clone() for k, v in vars(c).items() if isinstance(v, torch.Tensor)}
        out.update({f"rng.{k}": v.clone() for k, v in vars(c.rng).items() if isinstance(v, torch.Tensor)})
        out.update(
            {f"state.{k}": getattr(c.state, k) for k in ("x", "L", "t") if getattr(c.state, k) is not None}
        )
        out["obs"] = self.obs.clone()
        return out

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        c = self.core
        for k, v in d.items():
            kind, _, name = k.partition(".")
            if kind == "core":
                setattr(c, name, v.to(c.device))
            elif kind == "rng":
                setattr(c.rng, name, v.to(c.device))
        c.state = SimState(d["state.x"].to(c.device), d.get("state.L"), d["state.t"].to(c.device))
        if c.state.L is not None:
            c.state = SimState(c.state.x, c.state.L.to(c.device), c.state.t)
        self.obs = d["obs"].to(c.device)
        self.episode_length_buf = c.t


class RslPPOAgent(ConfiguredAgent):
    """rsl-rl PPO configured by ``agents/rsl_ppo.toml`` plus overrides (see the module docstring).

    Args:
        config: agent config name or TOML path (default ``rsl_ppo``).
        domain_randomized: train over the prior (a new world each episode, :func:`.base.domain_randomized`)
            instead of in the env's own world.
        **overrides: hyperparameters replacing the file's (e.g. ``n_envs=64``, ``num_steps_per_env=8``).
    """

    learns = True

    def __init__(self, config: str | None = None, domain_randomized: bool = False, **overrides) -> None:
        import rsl_rl  # noqa: F401 - fail early (registry turns this into AgentUnavailable)

        self.algo, self.config_name, self.overrides = "rsl_ppo", config or "rsl_ppo", overrides
        self.domain_randomized = bool(domain_randomized)
        self.name = "rsl_ppo" + ("_dr" if domain_randomized else "")
        self.actor = None
        self.alg = None
        self.spec: EnvSpec | None = None
        self.cfg: dict[str, Any] = {}
        self.low = self.high = None
        self.device = torch.device("cpu")
        self.run_dir: Path | None = None
        self._run_id: dict[str, Any] = {}
        self._wall0, self._evaluate, self._eval_s0 = 0.0, None, 0.0

    # ------------------------------------------------------------------ config
    def _set_spec(self, spec: EnvSpec, device: str) -> None:
        self.spec, self.device = spec, torch.device(device)
        core = PathwayCore(spec, 1, "cpu")
        self.low = core.low.numpy().astype(np.float32)
        self.high = core.high.numpy().astype(np.float32)
        self.obs_dim, self.n_act = core.obs_dim, core.sim.n_controls

    # ------------------------------------------------------------------ persistence
    def _checkpoint(self, n: int, it: int, env: _BatchedEnv) -> None:
        """Everything an exact resume needs, as of ``n`` env samples (iteration ``it`` done)."""
        d = self.run_dir / "checkpoints"
        state = {
            "alg": self.alg.save(),
            "learning_rate": float(self.alg.learning_rate),
            "env": env.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
        }
        atomic_torch_save(state, d / f"ckpt_{n}.pt")
        old = json.loads((d / "latest.json").read_text()) if (d / "latest.json").exists() else {}
        atomic_write_json(
            d / "latest.json",
            {
                "num_timesteps": n,
                "iteration": it,
                "previous": old.get("num_timesteps"),
                "wall_time_s": self._elapsed(),
                "run": self._run_id,
            },
        )
        prev2 = old.get("previous")
        if prev2 is not None:  # keep the newest two
            (d / f"ckpt_{prev2}.pt").unlink(missing_ok=True)

    def save(self, path: str | Path) -> None:
        """The finished policy into the folder ``path``: ``model.pt`` (actor and critic weights,
        the policy settings) and ``env_spec.json`` (what :meth:`load` needs)."""
        if self.actor is None or self.spec is None:
            raise RuntimeError(f"{self.name}: call train() (or load()) before save()")
        path = Path(path)
        blob = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "policy": json.dumps(jsonable(_policy_cfg(self.cfg, "policy"))),
        }
        atomic_torch_save(blob, path / "model.pt")
        atomic_write_json(path / "env_spec.json", jsonable(self.spec.to_dict()))

    def load(self, path: str | Path, env: str | EnvSpec | None = None, device: str = "cpu") -> None:
        """Load the policy saved in the folder ``path``; ``env`` defaults to the saved spec."""
        path = Path(path)
        if env is None:
            spec_file = path / "env_spec.json"
            if not spec_file.exists():
                raise FileNotFoundError(f"{spec_file} not found: pass env= to load()")
            spec = load_spec(None, base=json.loads(spec_file.read_text()))
        else:
            spec = env if isinstance(env, EnvSpec) else load_spec(env)
        self._set_spec(spec, device)
        blob = safe_torch_load(path / "model.pt", map_location=self.device)
        pol = json.loads(blob["policy"])
        self.cfg = {**self.cfg, "policy": pol}
        self.actor, self.critic = _models(self.obs_dim, self.n_act, pol, self.device)
        self.actor.load_state_dict(blob["actor"])
        self.critic.load_state_dict(blob["critic"])
        self.actor.eval()

    # ------------------------------------------------------------------ training
    def train(
        self,
        env: str | EnvSpec,
        budget: int,
        seed: int,
        run_dir: str | Path,
        device: str = "cpu",
        evaluate=None,
        progress: bool = True,
    ) -> TrainReport:
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
            raise ValueError(f"budget must be a positive int (env samples), got {budget!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        spec = env if isinstance(env, EnvSpec) else load_spec(env)
        if self.domain_randomized:
            spec = domain_randomized(spec)
        run_dir = Path(run_dir)
        self.cfg = cfg = self.resolve(spec)
        where = f"agents/{self.config_name}.toml [{spec.id}]"
        N, T = _positive_int(cfg, "n_envs", where), _positive_int(cfg, "num_steps_per_env", where)
        compile_env = _flag(cfg, "compile_env", where)
        kw = ppo_kwargs(cfg, where)
        pol = _policy_cfg(cfg, where)
        fp = self._fingerprint(spec, budget, seed)
        report_path = run_dir / "train_report.json"
        if report_path.exists() and (run_dir / "model.pt").exists():
            saved = json.loads(report_path.read_text())
            if saved.get("fingerprint") == fp:
                self.load(run_dir, env=spec, device=device)
                rep = TrainReport.from_dict(saved["report"])
                rep.loaded = True
                return rep
        from rsl_rl.algorithms import PPO
        from rsl_rl.storage import RolloutStorage

        self.run_dir = run_dir
        self._set_spec(spec, device)
        torch.manual_seed(int(seed))
        venv = _BatchedEnv(spec, N, device, int(seed), compile=compile_env)
        self.actor, self.critic = _models(self.obs_dim, self.n_act, pol, self.device)
        storage = RolloutStorage("rl", N, T, venv.get_observations(), [self.n_act], str(self.device))
        self.alg = PPO(self.actor, self.critic, storage, device=str(self.device), **kw)

        per_it = N * T
        n_it = math.ceil(int(budget) / per_it)
        ckpt_every = int(cfg.get("checkpoint_every", max(int(budget) // 4, 1)))
        latest = run_dir / "checkpoints" / "latest.json"
        self._run_id = {k: v for k, v in fp.items() if k != "budget"}  # a longer budget may resume
        start_it, prior_wall = 0, 0.0
        if latest.exists():
            info = json.loads(latest.read_text())
            if info.get("run") == self._run_id:  # resume an interrupted run of the same settings
                st = safe_torch_load(
                    run_dir / "checkpoints" / f"ckpt_{info['num_timesteps']}.pt", self.device
                )
                self.alg.load(st["alg"], None, strict=True)
                self.alg.learning_rate = st["learning_rate"]
                for g in self.alg.optimizer.param_groups:
                    g["lr"] = st["learning_rate"]
                venv.load_state_dict(st["env"])
                torch.set_rng_state(st["torch_rng"].cpu())
                if st.get("cuda_rng") is not None:
                    torch.cuda.set_rng_state(st["cuda_rng"].cpu(), self.device)
                start_it, prior_wall = int(info["iteration"]), float(info.get("wall_time_s", 0.0))
            else:  # checkpoints of other settings: start afresh
                for p in (run_dir / "checkpoints").iterdir():
                    p.unlink()
        done = start_it * per_it
        self._wall0 = time.perf_counter() - prior_wall
        self._evaluate, self._eval_s0 = evaluate, getattr(evaluate, "seconds", 0.0)
        next_ckpt = (done // ckpt_every + 1) * ckpt_every
        bar = tqdm(
            total=n_it * per_it,
            initial=done,
            desc=f"train rsl_ppo {spec.id}",
            disable=not progress,
            leave=False,
            unit="step",
        )
        obs = venv.get_observations()
        self.alg.train_mode()
        for it in range(start_it, n_it):
            with torch.inference_mode():
                for _ in range(T):
                    actions = self.alg.act(obs)
                    obs, rewards, dones, extras = venv.step(actions)
                    self.alg.process_env_step(obs, rewards, dones, extras)
                self.alg.compute_returns(obs)
            self.alg.update()
            n = (it + 1) * per_it
            bar.update(per_it)
            if n >= next_ckpt or it == n_it - 1:
                self._checkpoint(n, it + 1, venv)
                next_ckpt = (n // ckpt_every + 1) * ckpt_every
            if evaluate is not None and evaluate.pending(n):
                self.actor.eval()
                evaluate(self, n)
                self.alg.train_mode()
        bar.close()
        n = n_it * per_it
        wall = self._elapsed()
        self.actor.eval()
        self.save(run_dir)
        rep = TrainReport(
            env_samples=n,
            wall_time_s=wall,
            device=str(self.device),
            extra={"algo": "rsl_ppo", "hyperparameters": jsonable(cfg), "resumed_from": done or None},
        )
        atomic_write_json(report_path, {"fingerprint": fp, "report": rep.to_dict()})
        return rep

    # ------------------------------------------------------------------ acting
    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        """Physical actions for a batch of observations (the Gaussian's mean if ``deterministic``)."""
        if self.actor is None:
            raise RuntimeError(f"{self.name}: call train() (or load()) before predict()")
        from tensordict import TensorDict

        o = np.asarray(obs, dtype=np.float32)
        if o.ndim != 2 or o.shape[1] != self.obs_dim:
            raise ValueError(f"obs must have shape (B, {self.obs_dim}), got {o.shape}")
        x = torch.as_tensor(o, device=self.device)
        with torch.inference_mode():
            a = self.actor(
                TensorDict({"policy": x}, batch_size=[len(o)]), stochastic_output=not deterministic
            )
        a = np.clip(a.float().cpu().numpy(), -1.0, 1.0)
        return self.low + 0.5 * (a + 1.0) * (self.high - self.low), state
