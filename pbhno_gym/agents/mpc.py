"""The differentiable MPC of :mod:`pbhno_gym.control` as comparison agents (the registry's MPC slots).

* :class:`SurrogateMPC` (``mpc_surrogate``): its ``train`` spends the env-sample budget (at most
  ``episodes`` x horizon of ``agents/mpc_surrogate.toml``) on random-pulse episodes, fits the
  PB-HNO surrogate on them, and plans through the fitted model with :class:`MPCAgent`
  (``agents/mpc.toml``). It acts from observations only.
* :class:`NominalMPC` (``mpc_nominal``): the same MPC through the skeleton at the prior mean,
  the model every agent is told: the no-learning baseline (0 samples). With
  ``estimate_theta=True`` (``mpc_adaptive``) its moving-horizon estimator also re-estimates log
  theta from each episode's own measurements (prior-regularised): learning within the episode,
  still 0 training samples.
* :class:`OracleMPC` (``mpc_oracle``): the same MPC through the true simulator with the true
  parameters and state of each episode: the ORACLE, which bounds what any controller can reach.
  The evaluation binds it to the episodes' env core (:meth:`attach`); nothing else reads it.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..envs.spec import EnvSpec
from ..evaluation.episodes import physical_spec
from ..evaluation.mpc import OracleBinding
from .base import Agent, TrainReport
from .config import load_agent_config

__all__ = ["SurrogateMPC", "NominalMPC", "OracleMPC"]


class SurrogateMPC(Agent):
    name = "mpc_surrogate"
    learns = True

    def __init__(self, **overrides) -> None:
        self.overrides = overrides
        self.agent = None
        self.surrogate = None

    def train(self, env, budget, seed, run_dir, device="cpu", evaluate=None, progress=True) -> TrainReport:
        """Collect episodes, fit PB-HNO, plan through it. ``episodes`` (agents/mpc_surrogate.toml)
        may be a list, e.g. ``[1, 2, 4, 8]``: one collection of the largest size, then a fit on each
        growing prefix (its own folder ``ep<N>``) and a learning-curve point after each; the agent
        ends planning through the largest fit."""
        t0 = time.perf_counter()
        spec = physical_spec(env)
        cfg = load_agent_config("mpc_surrogate", spec, self.overrides)
        sizes = cfg["episodes"] if isinstance(cfg["episodes"], list) else [cfg["episodes"]]
        if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
            raise ValueError(
                f"mpc_surrogate: episodes must be a positive int or a list of them, got {sizes!r}"
            )
        cap = max(1, int(budget) // spec.horizon)
        sizes = sorted({min(int(n), cap) for n in sizes})
        run_dir = Path(run_dir)
        ds = None
        loaded_all, eval_s = True, 0.0
        for n_ep in sizes:
            sub = run_dir / f"ep{n_ep}" if len(sizes) > 1 else run_dir
            model, loaded = self._load_fit(sub, spec, device)
            if model is None:
                if ds is None:
                    ds = collect_episodes_for(spec, sizes[-1], seed, device, progress)
                model = self._fit(ds.subset(list(range(n_ep))), cfg, seed, sub, device, progress)
            loaded_all = loaded_all and loaded
            self._bind(model, spec, cfg)
            self.n_samples = n_ep * spec.horizon
            if evaluate is not None and (len(sizes) > 1 or n_ep == sizes[-1]):
                s0 = getattr(evaluate, "seconds", 0.0)
                evaluate(self, self.n_samples)
                eval_s += getattr(evaluate, "seconds", 0.0) - s0
        wall = time.perf_counter() - t0 - eval_s
        return TrainReport(
            self.n_samples,
            wall,
            env_episodes=sizes[-1],
            device=str(device),
            loaded=loaded_all,
            extra={"settings": cfg, "theta": self.surrogate.theta_dict(), "episodes": sizes},
        )

    @staticmethod
    def _load_fit(path: Path, spec: EnvSpec, device):
        """A finished fit saved in ``path`` for this spec, or (None, False)."""
        from ..surrogate.model import PBHNO

        if not (path / "model.pt").exists():
            return None, False
        model = PBHNO.load(path / "model.pt", device=device)
        return (model, True) if model.spec == spec else (None, False)

    @staticmethod
    def _fit(ds, cfg: dict, seed: int, path: Path, device, progress: bool):
        import torch

        from ..surrogate.losses import LossWeights
        from ..surrogate.model import PBHNO, PBHNOConfig
        from ..surrogate.train import TrainConfig, Trainer

        torch.manual_seed(int(seed))
        mkw = dict(cfg.get("model", {}))
        free = list(cfg.get("free_params") or []) or None
        model = PBHNO(PBHNOConfig(env_spec=ds.meta["spec"], free_params=free, **mkw), device=device)
        extra = dict(cfg.get("train") or {})
        known = {f.name for f in dataclasses.fields(TrainConfig)} - {"weights", "seed", "tensorboard"}
        bad = sorted(set(extra) - known)
        if bad:
            raise ValueError(f"mpc_surrogate: unknown train setting(s) {bad}; known: {sorted(known)}")
        tc = TrainConfig(
            epochs=int(cfg["epochs"]),
            batch_size=int(cfg["batch_size"]),
            seed=int(seed),
            sens_every=int(cfg["sens_every"]),
            patience=int(cfg["patience"]),
            weights=LossWeights(),
            tensorboard=False,
            **extra,
        )
        path.mkdir(parents=True, exist_ok=True)
        return Trainer(model, ds, tc, path).fit(resume=(path / "checkpoint.pt").exists(), progress=progress)

    def _bind(self, model, spec: EnvSpec, cfg: dict) -> None:
        from ..control.agent import MPCAgent

        self.surrogate, self.spec = model, spec
        self.agent = MPCAgent(model, spec, _mpc_config(spec, cfg.get("mpc") or {}))

    def save(self, path: str | Path) -> None:
        """The fitted surrogate as ``path/model.pt`` (the file ``train`` and :meth:`load` read)."""
        if self.surrogate is None:
            raise RuntimeError("mpc_surrogate: call train() before save()")
        Path(path).mkdir(parents=True, exist_ok=True)
        self.surrogate.save(Path(path) / "model.pt")

    def load(self, path: str | Path, device: str = "cpu") -> None:
        """Plan through the surrogate saved in ``path/model.pt`` (its env spec comes with it)."""
        from ..surrogate.model import PBHNO

        model = PBHNO.load(Path(path) / "model.pt", device=device)
        self._bind(model, model.spec, load_agent_config("mpc_surrogate", model.spec, self.overrides))

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if self.agent is None:
            raise RuntimeError("mpc_surrogate: call train() (or load()) before predict()")
        a, state = self.agent.predict(obs, state, episode_start, deterministic)
        return np.atleast_2d(a), state


class NominalMPC(Agent):
    """MPC through the skeleton at the prior mean (``estimate_theta``: MHE re-estimates log theta)."""

    name = "mpc_nominal"

    def __init__(self, estimate_theta: bool = False, **overrides) -> None:
        self.estimate_theta, self.overrides = bool(estimate_theta), overrides
        self.agent = None

    def train(self, env, budget, seed, run_dir, device="cpu", evaluate=None, progress=True) -> TrainReport:
        from ..control.agent import MPCAgent

        t0 = time.perf_counter()
        spec = physical_spec(env)
        opts = {"device": str(device), **self.overrides}
        if self.estimate_theta:
            est = dict(opts.get("estimation") or {})
            opts["estimation"] = {**est, "estimate_theta": True}
        self.agent = MPCAgent.from_config(_mpc_config(spec, opts), None, spec)
        return TrainReport(0, time.perf_counter() - t0, device=str(device), extra={"model": "prior mean"})

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if self.agent is None:
            raise RuntimeError(f"{self.name}: call train() before predict()")
        a, state = self.agent.predict(obs, state, episode_start, deterministic)
        return np.atleast_2d(a), state


class OracleMPC(Agent):
    name = "mpc_oracle"
    uses_true_model = True

    def __init__(self, **overrides) -> None:
        self.overrides = overrides
        self.agent = None
        self.spec = None

    def train(self, env, budget, seed, run_dir, device="cpu", evaluate=None, progress=True) -> TrainReport:
        t0 = time.perf_counter()
        self.spec = physical_spec(env)
        self.device = device
        return TrainReport(0, time.perf_counter() - t0, device=str(device), extra={"oracle": True})

    def attach(self, core) -> None:
        """Bind to the env core whose episodes this agent will control (the oracle reads its truth):
        the evaluation's :class:`OracleBinding` with this agent's config."""
        opts = {"device": str(getattr(self, "device", "cpu")), **(self.overrides or {})}
        self.agent = OracleBinding(_mpc_config(core.spec, opts))
        self.agent.attach(core)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if self.agent is None:
            raise RuntimeError("mpc_oracle: the evaluation must attach() it to the env core first")
        return self.agent.predict(obs, state, episode_start, deterministic)


def collect_episodes_for(spec: EnvSpec, n_episodes: int, seed: int, device, progress: bool):
    """Random-pulse episodes in the spec's world (its hidden parameters and mechanisms)."""
    from ..data import collect_episodes

    return collect_episodes(
        spec, n_episodes, num_envs=min(n_episodes, 16), seed=int(seed), device=device, progress=progress
    )


def _mpc_config(spec: EnvSpec, overrides: dict):
    from ..control.config import load_config

    return load_config(None, spec, **overrides)
