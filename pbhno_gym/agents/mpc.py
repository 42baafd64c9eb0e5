"""The differentiable MPC of :mod:`pbhno_gym.control` as comparison agents (the registry's MPC slots).

* :class:`SurrogateMPC` (``mpc_surrogate``): its ``train`` spends the env-sample budget (at most
  ``episodes`` x horizon of ``agents/mpc_surrogate.toml``) on random-pulse episodes, fits the
  PB-HNO surrogate on them, and plans through the fitted model with :class:`MPCAgent`
  (``agents/mpc.toml``). It acts from observations only.
* :class:`OracleMPC` (``mpc_oracle``): the same MPC through the true simulator with the true
  parameters and state of each episode: the ORACLE, which bounds what any controller can reach.
  The evaluation binds it to the episodes' env core (:meth:`attach`); nothing else reads it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..envs.spec import EnvSpec
from ..evaluation.episodes import physical_spec
from ..evaluation.mpc import OracleBinding
from .base import Agent, TrainReport
from .config import load_agent_config

__all__ = ["SurrogateMPC", "OracleMPC"]


class SurrogateMPC(Agent):
    name = "mpc_surrogate"
    learns = True

    def __init__(self, **overrides) -> None:
        self.overrides = overrides
        self.agent = None
        self.surrogate = None

    def train(self, env, budget, seed, run_dir, device="cpu", evaluate=None, progress=True) -> TrainReport:
        import torch

        from ..data import collect_episodes
        from ..surrogate.losses import LossWeights
        from ..surrogate.model import PBHNO, PBHNOConfig
        from ..surrogate.train import TrainConfig, Trainer

        t0 = time.perf_counter()
        spec = physical_spec(env)
        cfg = load_agent_config("mpc_surrogate", spec, self.overrides)
        n_ep = int(max(1, min(cfg["episodes"], budget // spec.horizon)))
        run_dir = Path(run_dir)
        model_path = run_dir / "model.pt"
        loaded = model_path.exists()
        if loaded:
            model = PBHNO.load(model_path, device=device)
            if model.spec != spec:
                loaded = False
        if not loaded:
            ds = collect_episodes(
                spec, n_ep, num_envs=min(n_ep, 16), seed=int(seed), device=device, progress=progress
            )
            torch.manual_seed(int(seed))
            mkw = dict(cfg.get("model", {}))
            free = list(cfg.get("free_params") or []) or None
            model = PBHNO(PBHNOConfig(env_spec=ds.meta["spec"], free_params=free, **mkw), device=device)
            tc = TrainConfig(
                epochs=int(cfg["epochs"]),
                batch_size=int(cfg["batch_size"]),
                seed=int(seed),
                sens_every=int(cfg["sens_every"]),
                patience=int(cfg["patience"]),
                weights=LossWeights(),
                tensorboard=False,
            )
            model = Trainer(model, ds, tc, run_dir).fit(
                resume=(run_dir / "checkpoint.pt").exists(), progress=progress
            )
        self._bind(model, spec, cfg)
        self.n_samples = n_ep * spec.horizon
        wall = time.perf_counter() - t0
        if evaluate is not None:
            evaluate(self, self.n_samples)
        return TrainReport(
            self.n_samples,
            wall,
            env_episodes=n_ep,
            device=str(device),
            loaded=loaded,
            extra={"settings": cfg, "theta": model.theta_dict()},
        )

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


def _mpc_config(spec: EnvSpec, overrides: dict):
    from ..control.config import load_config

    return load_config(None, spec, **overrides)
