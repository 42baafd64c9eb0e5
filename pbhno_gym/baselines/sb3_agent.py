"""stable-baselines3 / sb3-contrib agents (PPO, SAC, TD3, RecurrentPPO) behind the comparison's
:class:`~pbhno_gym.experiments.agents.Agent` interface.

Training runs on :class:`~pbhno_gym.envs.sb3.SB3VecEnv` (the batched core, ``n_envs`` from the
config) with ``normalize_actions=True``, wrapped in ``VecMonitor`` (episode return and
``is_success`` in the logs) and, if ``normalize`` is set, ``VecNormalize`` (gamma from the
config). It writes into ``run_dir``:

* ``tb/``: TensorBoard logs (SB3's, plus ``eval/*`` from the learning-curve evaluations);
* ``checkpoints/``: model + VecNormalize every ``checkpoint_every`` env samples (atomic, last
  two kept); an interrupted ``train`` with the same settings (a larger budget allowed) resumes
  from the newest, checkpoints of other settings are discarded (off-policy replay buffers are
  not checkpointed: a resumed SAC/TD3 refills its buffer);
* ``model.zip``, ``vecnormalize.pkl``, ``train_report.json``: the finished agent. A later
  ``train`` with the same env, config, budget and seed loads it instead of training.

``predict`` normalises observations with the saved statistics and maps the policy's [-1, 1]
actions back to the environment's physical units.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize
from tqdm.auto import tqdm

from ..envs.factory import build
from ..envs.sb3 import SB3VecEnv
from ..envs.spec import EnvSpec, load_spec
from ..experiments.agents import Agent, TrainReport
from ..utils.io import atomic_write_bytes, atomic_write_json
from .agent_config import load_agent_config
from .sb3_config import algo_class, sb3_kwargs

__all__ = ["SB3Agent"]


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, sort_keys=True, default=str))


class _TrainCallback(BaseCallback):
    """Progress bar, atomic checkpoints and learning-curve evaluations during ``learn``."""

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
        if self.num_timesteps >= self.next_ckpt:
            self.agent._checkpoint(self.num_timesteps)
            self.next_ckpt += self.ckpt_every
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class SB3Agent(Agent):
    """An SB3 algorithm configured by ``agents/<algo>.toml`` (per-env sections) plus overrides.

    Args:
        algo: ``ppo``, ``sac``, ``td3`` or ``recurrent_ppo``.
        config: agent config name or TOML path (default: ``algo``).
        **overrides: hyperparameters replacing the file's (e.g. ``n_envs=4``, ``batch_size=64``).
    """

    learns = True

    def __init__(self, algo: str, config: str | None = None, **overrides) -> None:
        algo_class(algo)  # validates the name early
        self.algo, self.config_name, self.overrides = algo, config or algo, overrides
        self.name = algo
        self.model = None
        self.vecnorm: VecNormalize | None = None
        self.low = self.high = None
        self.run_dir: Path | None = None
        self.cfg: dict[str, Any] = {}
        self._wall0 = 0.0
        self._run_id: dict[str, Any] = {}
        self._evaluate, self._eval_s0 = None, 0.0

    # ------------------------------------------------------------------ config
    def resolve(self, spec: EnvSpec) -> dict[str, Any]:
        """The merged hyperparameters for this env (file default <- env section <- overrides)."""
        return load_agent_config(self.config_name, spec.id, self.overrides)

    def _fingerprint(self, spec: EnvSpec, budget: int, seed: int) -> dict[str, Any]:
        return _jsonable(
            {
                "algo": self.algo,
                "config": self.cfg,
                "budget": int(budget),
                "seed": int(seed),
                "env": spec.to_dict(),
            }
        )

    # ------------------------------------------------------------------ persistence
    def _save_vecnorm(self, path: Path) -> None:
        if self.vecnorm is not None:
            atomic_write_bytes(path, pickle.dumps(self.vecnorm))

    def _elapsed(self) -> float:
        """Training wall time so far, without the learning-curve evaluations."""
        evals = getattr(self._evaluate, "seconds", 0.0) - self._eval_s0
        return time.perf_counter() - self._wall0 - evals

    def _checkpoint(self, n: int) -> None:
        d = self.run_dir / "checkpoints"
        buf = io.BytesIO()
        self.model.save(buf)
        atomic_write_bytes(d / f"model_{n}.zip", buf.getvalue())
        self._save_vecnorm(d / f"vecnormalize_{n}.pkl")
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
            for f in (d / f"model_{prev2}.zip", d / f"vecnormalize_{prev2}.pkl"):
                f.unlink(missing_ok=True)

    def load(self, run_dir: str | Path, env: str | EnvSpec, device: str = "cpu") -> None:
        """Load the finished model (and VecNormalize statistics) saved in ``run_dir``."""
        spec = env if isinstance(env, EnvSpec) else load_spec(env)
        run_dir = Path(run_dir)
        self._bounds(spec)
        self.model = algo_class(self.algo).load(run_dir / "model.zip", device=device)
        vn = run_dir / "vecnormalize.pkl"
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
        run_dir = Path(run_dir)
        self.cfg = self.resolve(spec)
        fp = self._fingerprint(spec, budget, seed)
        report_path = run_dir / "train_report.json"
        if report_path.exists() and (run_dir / "model.zip").exists():
            saved = json.loads(report_path.read_text())
            if saved.get("fingerprint") == fp:
                self.load(run_dir, spec, device)
                rep = TrainReport.from_dict(saved["report"])
                rep.loaded = True
                return rep
        self.run_dir = run_dir
        self._bounds(spec)
        cfg = self.cfg
        where = f"agents/{self.config_name}.toml [{spec.id}]"
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
                self.vecnorm = pickle.loads((d / f"vecnormalize_{done}.pkl").read_bytes())
                self.vecnorm.set_venv(venv)
                venv = self.vecnorm
            self.model = cls.load(d / f"model_{done}.zip", env=venv, device=device)
            self.model.set_random_seed(seed + done)
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
        cb = _TrainCallback(self, budget, ckpt_every, evaluate, progress, f"train {self.algo} {spec.id}")
        remaining = max(int(budget) - done, 0)
        if remaining > 0:
            self.model.learn(remaining, callback=cb, tb_log_name=self.algo, reset_num_timesteps=done == 0)
        n = int(self.model.num_timesteps)
        if evaluate is not None and evaluate.pending(n):
            evaluate(self, n)
        wall = self._elapsed()
        buf = io.BytesIO()
        self.model.save(buf)
        atomic_write_bytes(run_dir / "model.zip", buf.getvalue())
        self._save_vecnorm(run_dir / "vecnormalize.pkl")
        if self.vecnorm is not None:
            self.vecnorm.training = False
        rep = TrainReport(
            env_samples=n,
            wall_time_s=wall,
            device=str(self.model.device),
            extra={"algo": self.algo, "hyperparameters": _jsonable(cfg), "resumed_from": done or None},
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


def _normalized(spec: EnvSpec) -> EnvSpec:
    return dataclasses.replace(spec, normalize_actions=True)
