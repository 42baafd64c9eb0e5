"""stable-baselines3 / sb3-contrib agents (PPO, SAC, TD3, RecurrentPPO) and their hyperparameters.

Hyperparameters come from ``agents/<algo>.toml`` (:func:`~.config.load_agent_config`); keys
follow rl-baselines3-zoo's hyperparameter files so the two stay interchangeable (:func:`zoo_yaml`
exports them):

* run keys (not passed to the algorithm): ``n_envs``, ``n_timesteps`` (the zoo's default budget),
  ``normalize`` (VecNormalize: ``true`` or a table of its kwargs, gamma taken from ``gamma``),
  ``noise_type`` / ``noise_std`` (``"normal"`` or ``"ornstein-uhlenbeck"`` action noise), ``policy``;
  ours only: ``checkpoint_every`` (env samples between checkpoints);
* everything else goes to the algorithm's constructor: ``learning_rate`` as a number or
  ``"lin_<initial>"`` (linear decay), ``train_freq`` as an int or ``[n, "step"|"episode"]``,
  ``policy_kwargs`` as a table whose ``activation_fn`` is a name (``"tanh"``, ``"relu"``, ...).

Unknown keys raise a ``ValueError`` naming the key and the file.

:class:`SB3Agent` trains on :class:`~pbhno_gym.envs.sb3.SB3VecEnv` (the batched core, ``n_envs``
from the config) with ``normalize_actions=True``, wrapped in ``VecMonitor`` (episode return and
``is_success`` in the logs) and, if ``normalize`` is set, ``VecNormalize`` (gamma from the
config). It writes into ``run_dir``:

* ``tb/``: TensorBoard logs (SB3's, plus ``eval/*`` from the learning-curve evaluations);
* ``checkpoints/``: every ``checkpoint_every`` env samples, between rollouts (atomic, last two
  kept): the model, VecNormalize (its own ``save``), the replay buffer of SAC/TD3
  (``save_replay_buffer``) and the global torch/numpy/Python RNG states. An interrupted ``train``
  with the same settings (a larger budget allowed) resumes from the newest with the same
  weights, optimiser states, replay buffer, normalisation statistics and RNG states; checkpoints
  of other settings are discarded. One thing is not restored: the environments' episodes in
  flight (the simulator state is not checkpointed), so SB3 starts fresh episodes on resume and
  the resumed run is not bitwise the uninterrupted one;
* ``model.zip``, ``vecnormalize.pkl``, ``env_spec.json`` (:meth:`SB3Agent.save`) and
  ``train_report.json``: the finished agent. A later ``train`` with the same env, config, budget
  and seed loads it instead of training.

``predict`` normalises observations with the saved statistics and maps the policy's [-1, 1]
actions back to the environment's physical units. stable-baselines3 is imported on first use,
so the hyperparameter code (``pbhno zoo``) works without it.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import json
import os
import pickle
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ..envs.factory import build
from ..envs.spec import EnvSpec, load_spec
from ..utils.io import atomic_torch_save, atomic_write_bytes, atomic_write_json, safe_torch_load
from .base import ConfiguredAgent, TrainReport, domain_randomized, jsonable
from .config import load_agent_config, read_agent_file

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecNormalize

__all__ = ["SB3Agent", "ALGOS", "ZOO_ALGOS", "RUN_KEYS", "algo_class", "sb3_kwargs", "zoo_entry", "zoo_yaml"]


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


# ----------------------------------------------------------------------------- the agent


def _train_callback(agent: SB3Agent, total: int, ckpt_every: int, evaluate, progress: bool, desc: str):
    """Progress bar, atomic checkpoints and learning-curve evaluations during ``learn`` (an SB3
    ``BaseCallback``, defined here so that stable-baselines3 is imported on first use only)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _TrainCallback(BaseCallback):
        def __init__(self, agent: SB3Agent, total: int, ckpt_every: int, evaluate, progress: bool, desc: str):
            super().__init__()
            self.agent, self.total, self.ckpt_every, self.evaluate = agent, total, ckpt_every, evaluate
            self.bar = tqdm(total=total, desc=desc, disable=not progress, leave=False, unit="step")
            self.next_ckpt = 0

        def _on_training_start(self) -> None:
            self.bar.n = min(self.num_timesteps, self.total)
            self.bar.refresh()
            self.next_ckpt = (self.num_timesteps // self.ckpt_every + 1) * self.ckpt_every

        def _on_step(self) -> bool:
            self.bar.update(min(self.num_timesteps, self.total) - self.bar.n)
            if self.evaluate is not None and self.evaluate.pending(self.num_timesteps):
                point = self.evaluate(self.agent, self.num_timesteps)
                for k in ("success_rate", "final_error", "energy", "return"):
                    if k in point:
                        self.logger.record(f"eval/{k}", point[k])
            return True

        def _maybe_checkpoint(self) -> None:
            if self.num_timesteps >= self.next_ckpt:
                self.agent._checkpoint(self.num_timesteps)
                self.next_ckpt = (self.num_timesteps // self.ckpt_every + 1) * self.ckpt_every

        # Checkpoints are taken between rollouts, where the state is consistent: every transition
        # so far is in the replay buffer and the gradient steps that follow it are done (inside
        # ``_on_step`` SB3 has not stored the step's transition yet, and PPO's partial rollout
        # would be lost).
        def _on_rollout_start(self) -> None:
            self._maybe_checkpoint()

        def _on_training_end(self) -> None:
            self._maybe_checkpoint()
            self.bar.close()

    return _TrainCallback(agent, total, ckpt_every, evaluate, progress, desc)


class SB3Agent(ConfiguredAgent):
    """An SB3 algorithm configured by ``agents/<algo>.toml`` (per-env sections) plus overrides.

    Args:
        algo: ``ppo``, ``sac``, ``td3`` or ``recurrent_ppo``.
        config: agent config name or TOML path (default: ``algo``).
        domain_randomized: train with a new world drawn from the prior every episode
            (``randomize_parameters``, no fixed ``world_seed``) instead of in the env's own world:
            RL given the model knowledge (the prior) that MPC gets for free.
        **overrides: hyperparameters replacing the file's (e.g. ``n_envs=4``, ``batch_size=64``).
    """

    learns = True

    def __init__(
        self, algo: str, config: str | None = None, domain_randomized: bool = False, **overrides
    ) -> None:
        algo_class(algo)  # validates the name early
        self.algo, self.config_name, self.overrides = algo, config or algo, overrides
        self.domain_randomized = bool(domain_randomized)
        self.name = algo + ("_dr" if domain_randomized else "")
        self.model = None
        self.vecnorm: VecNormalize | None = None
        self.low = self.high = None
        self.spec: EnvSpec | None = None
        self.run_dir: Path | None = None
        self.cfg: dict[str, Any] = {}
        self._wall0 = 0.0
        self._run_id: dict[str, Any] = {}
        self._evaluate, self._eval_s0 = None, 0.0

    # ------------------------------------------------------------------ config
    # ------------------------------------------------------------------ persistence
    def _save_vecnorm(self, path: Path) -> None:
        if self.vecnorm is not None:
            _atomic_via(path, self.vecnorm.save)

    def _checkpoint(self, n: int) -> None:
        """Everything a resumed run needs, as of ``n`` env samples (see the module docstring)."""
        d = self.run_dir / "checkpoints"
        buf = io.BytesIO()
        self.model.save(buf)
        atomic_write_bytes(d / f"model_{n}.zip", buf.getvalue())
        self._save_vecnorm(d / f"vecnormalize_{n}.pkl")
        if getattr(self.model, "replay_buffer", None) is not None:
            _atomic_via(d / f"replay_buffer_{n}.pkl", self.model.save_replay_buffer)
        atomic_torch_save(_global_rng_state(), d / f"rng_{n}.pt")
        old = json.loads((d / "latest.json").read_text()) if (d / "latest.json").exists() else {}
        wall = self._elapsed()
        atomic_write_json(
            d / "latest.json",
            {
                "num_timesteps": n,
                "previous": old.get("num_timesteps"),
                "wall_time_s": wall,
                "run": self._run_id,
            },
        )
        prev2 = old.get("previous")
        if prev2 is not None:  # keep the newest two
            for stem in ("model_{}.zip", "vecnormalize_{}.pkl", "replay_buffer_{}.pkl", "rng_{}.pt"):
                (d / stem.format(prev2)).unlink(missing_ok=True)

    def save(self, path: str | Path) -> None:
        """The finished agent into the folder ``path``: ``model.zip``, ``vecnormalize.pkl`` (if the
        observations are normalised) and ``env_spec.json`` (what :meth:`load` needs)."""
        if self.model is None or self.spec is None:
            raise RuntimeError(f"{self.name}: call train() (or load()) before save()")
        path = Path(path)
        buf = io.BytesIO()
        self.model.save(buf)
        atomic_write_bytes(path / "model.zip", buf.getvalue())
        self._save_vecnorm(path / "vecnormalize.pkl")
        atomic_write_json(path / "env_spec.json", jsonable(self.spec.to_dict()))

    def load(self, path: str | Path, env: str | EnvSpec | None = None, device: str = "cpu") -> None:
        """Load the finished model (and VecNormalize statistics) saved in the folder ``path``;
        ``env`` defaults to the spec saved with it (``env_spec.json``)."""
        run_dir = Path(path)
        if env is None:
            spec_file = run_dir / "env_spec.json"
            if not spec_file.exists():
                raise FileNotFoundError(f"{spec_file} not found: pass env= to load()")
            spec = load_spec(None, base=json.loads(spec_file.read_text()))
        else:
            spec = env if isinstance(env, EnvSpec) else load_spec(env)
        self.spec = spec
        self._bounds(spec)
        self.model = algo_class(self.algo).load(run_dir / "model.zip", device=device)
        vn = run_dir / "vecnormalize.pkl"
        # VecNormalize.load needs a venv; acting needs only the statistics, so read its own pickle
        self.vecnorm = pickle.loads(vn.read_bytes()) if vn.exists() else None
        if self.vecnorm is not None:
            self.vecnorm.training = False
        self.run_dir = run_dir

    def _bounds(self, spec: EnvSpec) -> None:
        parts = build(spec)
        self.low = parts.control_low.numpy().astype(np.float32)
        self.high = parts.control_high.numpy().astype(np.float32)

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
        spec = env if isinstance(env, EnvSpec) else load_spec(env)
        if self.domain_randomized:
            spec = domain_randomized(spec)
        run_dir = Path(run_dir)
        self.cfg = self.resolve(spec)
        fp = self._fingerprint(spec, budget, seed)
        report_path = run_dir / "train_report.json"
        if report_path.exists() and (run_dir / "model.zip").exists():
            saved = json.loads(report_path.read_text())
            if saved.get("fingerprint") == fp:
                self.load(run_dir, env=spec, device=device)
                rep = TrainReport.from_dict(saved["report"])
                rep.loaded = True
                return rep
        self.run_dir, self.spec = run_dir, spec
        self._bounds(spec)
        cfg = self.cfg
        where = f"agents/{self.config_name}.toml [{spec.id}]"
        from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

        from ..envs.sb3 import SB3VecEnv

        venv = SB3VecEnv(env_spec=_normalized(spec), num_envs=int(cfg.get("n_envs", 1)), device=device)
        venv = VecMonitor(venv, info_keywords=("is_success",))
        norm = cfg.get("normalize", False)
        cls = algo_class(self.algo)
        kwargs = sb3_kwargs(self.algo, cfg, len(self.low), where)
        latest = run_dir / "checkpoints" / "latest.json"
        self._run_id = {k: v for k, v in fp.items() if k != "budget"}  # a longer budget may resume
        if latest.exists() and json.loads(latest.read_text()).get("run") != self._run_id:
            shutil.rmtree(run_dir / "checkpoints")  # checkpoints of other settings: start afresh
        done = 0
        self.vecnorm = None
        t0 = time.perf_counter()
        prior_wall = 0.0
        if latest.exists():  # resume an interrupted run
            done = int(json.loads(latest.read_text())["num_timesteps"])
            d = run_dir / "checkpoints"
            if (d / f"vecnormalize_{done}.pkl").exists():
                self.vecnorm = venv = VecNormalize.load(str(d / f"vecnormalize_{done}.pkl"), venv)
            self.model = cls.load(d / f"model_{done}.zip", env=venv, device=device)
            self.model.set_random_seed(seed + done)  # seeds the fresh episodes (the env's own streams)
            if (d / f"replay_buffer_{done}.pkl").exists():
                self.model.load_replay_buffer(d / f"replay_buffer_{done}.pkl")
            if (d / f"rng_{done}.pt").exists():
                _set_global_rng_state(safe_torch_load(d / f"rng_{done}.pt"))
            prior_wall = float(json.loads(latest.read_text()).get("wall_time_s", 0.0))
        else:
            if norm:
                nkw = dict(norm) if isinstance(norm, dict) else {}
                nkw.setdefault("gamma", float(cfg.get("gamma", 0.99)))
                self.vecnorm = venv = VecNormalize(venv, **nkw)
            self.model = cls(
                cfg.get("policy", "MlpPolicy"),
                venv,
                tensorboard_log=str(run_dir / "tb"),
                seed=int(seed),
                device=device,
                verbose=0,
                **kwargs,
            )
        self._wall0 = t0 - prior_wall
        self._evaluate, self._eval_s0 = evaluate, getattr(evaluate, "seconds", 0.0)
        ckpt_every = int(cfg.get("checkpoint_every", max(budget // 4, 1)))
        cb = _train_callback(self, budget, ckpt_every, evaluate, progress, f"train {self.algo} {spec.id}")
        remaining = max(int(budget) - done, 0)
        if remaining > 0:
            self.model.learn(remaining, callback=cb, tb_log_name=self.algo, reset_num_timesteps=done == 0)
        n = int(self.model.num_timesteps)
        if evaluate is not None and evaluate.pending(n):
            evaluate(self, n)
        wall = self._elapsed()
        self.save(run_dir)
        if self.vecnorm is not None:
            self.vecnorm.training = False
        rep = TrainReport(
            env_samples=n,
            wall_time_s=wall,
            device=str(self.model.device),
            extra={"algo": self.algo, "hyperparameters": jsonable(cfg), "resumed_from": done or None},
        )
        atomic_write_json(report_path, {"fingerprint": fp, "report": rep.to_dict()})
        venv.close()
        return rep

    # ------------------------------------------------------------------ acting
    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if self.model is None:
            raise RuntimeError(f"{self.name}: call train() (or load()) before predict()")
        o = np.asarray(obs, dtype=np.float32)
        if self.vecnorm is not None:
            o = self.vecnorm.normalize_obs(o)
        a, state = self.model.predict(
            o, state=state, episode_start=episode_start, deterministic=deterministic
        )
        a = np.clip(np.asarray(a, dtype=np.float32), -1.0, 1.0)
        return self.low + 0.5 * (a + 1.0) * (self.high - self.low), state


def _atomic_via(path: Path, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` (a library's own save to a file name), then move ``tmp`` onto ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _global_rng_state() -> dict[str, Any]:
    """torch / numpy / Python global RNG states as plain values (for a weights_only checkpoint)."""
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - SB3 draws from it
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }


def _set_global_rng_state(st: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached"]))  # noqa: NPY002
    random.setstate(st["python"])


def _normalized(spec: EnvSpec) -> EnvSpec:
    return dataclasses.replace(spec, normalize_actions=True)
