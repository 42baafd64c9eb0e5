"""MPC agents with an SB3-style ``predict``: act from observations, or (oracle) from the truth.

:class:`MPCAgent` sees what a lab sees. Each call it (1) files the new measurements and fresh
mask with the controls it applied into a per-environment window, (2) estimates the present
latent state (and, if configured, theta) by moving-horizon estimation through its model,
(3) plans T steps against the target preview within the remaining dose (warm-started from
its shifted previous plan), and (4) returns the first planned control in the env's action
convention. Memory is kept per environment slot and reset on ``episode_start`` (or when the
observation's time feature is 0, i.e. a fresh episode). It never reads hidden env state.

:class:`OracleMPCAgent` is the labelled exception: it reads the env's true state and
parameters (``core.state``, ``core.log_theta``) and plans through the true simulator, which
bounds what any controller can reach.

Parameters: the agent plans and estimates with the model's current estimate ``model.theta`` (a
fitted PB-HNO's fit; a :class:`SimulatorModel`'s held values), never silently with the prior.
Ensembles (``config.ensemble.members > 0``): every environment carries M parameter samples
(drawn around that estimate with the prior's sd, the estimate itself first), each with its own
MHE state estimate; the plan
minimises the members' mean, ``mean + k std`` or CVaR cost, with uniform or likelihood (MHE
fit) member weights.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..envs.factory import build
from ..envs.spec import EnvSpec, load_spec
from ..envs.targets import get_target
from ..physics.simulator import SimState
from .compiled import CompiledModel
from .config import MPCConfig, load_config
from .mhe import MHEWindow, MovingHorizonEstimator
from .model import ControlModel, SimulatorModel
from .planner import Planner, PlanProblem, preview_targets, repeat_state, shift_plan, stage_weights

__all__ = ["MPCAgent", "OracleMPCAgent", "find_cores"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def find_cores(env) -> list:
    """The batched env cores behind a single env, vector env, SB3 VecEnv or their wrappers."""
    if hasattr(env, "core"):
        return [env.core]
    inner = getattr(env, "unwrapped", None)
    if inner is not None and inner is not env and hasattr(inner, "core"):
        return [inner.core]
    if hasattr(env, "envs"):  # SB3 DummyVecEnv, gymnasium SyncVectorEnv
        return [c for e in env.envs for c in find_cores(e)]
    if hasattr(env, "venv"):  # SB3 VecEnv wrappers
        return find_cores(env.venv)
    raise TypeError(f"cannot find a pbhno environment core inside {type(env).__name__}")


def planning_spec(spec: EnvSpec, cfg: MPCConfig) -> EnvSpec:
    """The spec a simulator planning model is built from: the env's, at ``cfg.substeps``
    coupled sub-steps per control step when set (a coarser planning model; the env keeps its own)."""
    return dataclasses.replace(spec, substeps=cfg.substeps) if cfg.substeps else spec


class MPCAgent:
    """Receding-horizon MPC from partial, noisy, irregular observations.

    Args:
        model: dynamics + measurement model to estimate and plan through (surrogate, or the
            simulator with nominal parameters).
        spec: the environment spec (or id) the agent acts in: observation layout, horizon,
            budgets, noise model, settling protocol.
        config: :class:`MPCConfig` (default: the defaults of ``agents/mpc.toml``).
    """

    def __init__(self, model: ControlModel, spec: EnvSpec | str, config: MPCConfig | None = None) -> None:
        self.spec = load_spec(spec) if isinstance(spec, str) else spec
        self.cfg = config if config is not None else MPCConfig()
        if self.cfg.compile:  # step and forward-mode Jacobians compiled, shared by equal models
            model = CompiledModel.shared(model, self.cfg.compile_backend)
        self.model = model
        self.device, self.dtype = model.device, model.dtype
        parts = build(self.spec, "cpu")
        om = parts.obs_model
        self.layout, self.obs_dim = om.layout, om.dim
        self.n_cells, self.n_channels = parts.n_cells, om.n_channels
        self.preview = self.spec.target.preview
        names = parts.control_names
        if model.n_controls != len(names):
            raise ValueError(f"model has {model.n_controls} controls, spec {self.spec.id!r} has {len(names)}")
        self.control_names = names
        self.n_u = len(names)
        self.budget = parts.budget.to(dtype=self.dtype, device=self.device)
        c, r = self.cfg, self.spec.reward
        ens = c.ensemble
        band = None
        if c.tracking == "band":
            if not get_target(self.spec.target.kind).pattern:
                raise ValueError(
                    f"mpc.tracking = 'band' needs a pattern target (on/off cells); "
                    f"{self.spec.id!r} has target kind {self.spec.target.kind!r}"
                )
            band = (self.spec.target.off_level, self.spec.target.on_level)
        self.planner = Planner(
            model,
            c.horizon,
            r.Q if c.Q is None else c.Q,
            r.R if c.R is None else c.R,
            c.solver,
            c.iterations,
            c.lr,
            c.tol,
            c.patience,
            c.damping,
            ens.risk,
            ens.risk_k,
            ens.cvar_alpha,
            c.jac_chunk,
            cold_levels=tuple(c.cold_levels),
            band=band,
        )
        e, o = c.estimation, self.spec.observation
        self.estimator = MovingHorizonEstimator(
            model,
            o.additive_noise,
            o.multiplicative_noise,
            e.iterations,
            e.solver,
            e.lr,
            e.tol,
            e.estimate_theta,
            e.field,
            e.state_eps,
            chunk=c.jac_chunk,
        )
        self.W = e.window
        self.member_theta = self._member_theta()
        self.M = self.member_theta.shape[0]
        self._init_prior: SimState | None = None
        self.n_envs = 0
        self.latencies: list[float] = []  # seconds per predict call (all envs together)
        self.last_plan_iterations: Tensor | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls, source: str | Path | dict | MPCConfig | None, model: ControlModel | None, spec: EnvSpec | str
    ) -> MPCAgent:
        """Agent from a config (path, dict, config or None = packaged ``agents/mpc.toml``),
        with the spec's ``["<id>"]`` table applied. ``model=None``: the simulator with
        the spec's nominal parameters (a classical mechanistic MPC)."""
        spec = load_spec(spec) if isinstance(spec, str) else spec
        cfg = load_config(source, spec)
        if model is None:
            model = SimulatorModel(
                planning_spec(spec, cfg),
                device=cfg.device,
                dtype=_DTYPES[cfg.dtype],
                state_floor=cfg.state_floor,
                field_modes=cfg.field_modes or None,
            )
        return cls(model, spec, cfg)

    @staticmethod
    def oracle(env, config: MPCConfig | str | Path | dict | None = None) -> OracleMPCAgent:
        """The ORACLE agent for ``env`` (reads its true state and parameters)."""
        return OracleMPCAgent(env, config)

    def _member_theta(self) -> Tensor:
        """(M, P) log-parameters of the members: the model's current estimate (``model.theta``:
        a fitted model's fit, not its prior), or without an ensemble that estimate alone."""
        ens = self.cfg.ensemble
        theta = self.model.theta.to(self.device, self.dtype)
        if ens.members == 0:
            return theta.log_values.detach()[None].clone()
        g = torch.Generator().manual_seed(ens.seed)
        members = theta.sample_around(ens.members, g, ens.sigma_scale).log_values.detach()
        if ens.include_nominal:
            members[0] = theta.log_values.detach()
        return members

    def initial_prior(self) -> SimState:
        """(M) latent at episode start per member: the model at rest, settled as the env is."""
        if self._init_prior is None:
            with torch.no_grad():
                z = self.model.initial_state(self.M, self.member_theta)
                n = round(self.spec.settle_minutes / self.model.dt)
                low = self.model.control_low.expand(self.M, -1)
                for _ in range(n):
                    z = self.model.step(z, low, self.member_theta)
            self._init_prior = SimState(z.x, z.L, torch.zeros_like(z.t))
        return self._init_prior

    # ------------------------------------------------------------------ memory
    def reset(self, n_envs: int | None = None) -> None:
        """Forget every environment's history (``n_envs`` slots)."""
        self._alloc(self.n_envs if n_envs is None else n_envs)

    def _alloc(self, B: int) -> None:
        dev, dt, W, C, M = self.device, self.dtype, self.W, self.n_channels, self.M
        self.n_envs = B
        p0 = self.initial_prior()
        rows = torch.arange(M, device=dev).repeat(B)
        self.z_win = repeat_state(p0, rows)
        self.est_start = self.z_win
        self.theta = self.member_theta[rows].clone()
        self.sig = torch.full((B * M,), self.cfg.estimation.initial_sigma, dtype=dt, device=dev)
        self.vals = torch.zeros(B, W + 1, C, dtype=dt, device=dev)
        self.fresh = torch.zeros(B, W + 1, C, dtype=torch.bool, device=dev)
        self.acts = torch.zeros(B, W, self.n_u, dtype=dt, device=dev)
        self.nst = torch.zeros(B, dtype=torch.long, device=dev)
        self.plan = torch.zeros(B, self.cfg.horizon, self.n_u, dtype=dt, device=dev)
        self.has_plan = torch.zeros(B, dtype=torch.bool, device=dev)
        self.last_u = torch.zeros(B, self.n_u, dtype=dt, device=dev)
        self.seen = torch.zeros(B, dtype=torch.bool, device=dev)

    def _parse(self, o: Tensor):
        B, L = o.shape[0], self.layout
        y = o[:, L["values"]]
        fresh = o[:, L["fresh"]] > 0.5
        goal = o[:, L["target"]].reshape(B, self.preview, self.n_cells)
        t = torch.round(o[:, L["time"]][:, 0] * self.spec.horizon).long()
        frac = o[:, L["dose_left"]]
        dose = torch.where(
            torch.isinf(self.budget), self.budget, frac * torch.nan_to_num(self.budget, posinf=0)
        )
        return y, fresh, goal, t, dose

    def _observe(self, y: Tensor, fresh: Tensor, start: Tensor) -> None:
        """File the measurements and the last applied control; slide or restart windows."""
        M, W = self.M, self.W
        cont = ~start
        slide = cont & (self.nst >= W)
        if bool(slide.any()):  # the window start moves one step: propagate its estimate (arrival cost)
            a = (self.acts[:, 0] if W > 0 else self.last_u).repeat_interleave(M, 0)
            with torch.no_grad():
                adv = self.model.step(self.est_start, a, self.theta)
            s_r = slide.repeat_interleave(M)
            self.z_win = self.z_win.where(s_r, adv)
            self.sig = torch.where(
                s_r, torch.full_like(self.sig, self.cfg.estimation.arrival_sigma), self.sig
            )
        c3 = cont[:, None, None]
        self.vals = torch.where(c3, torch.cat([self.vals[:, 1:], y[:, None]], 1), self.vals)
        self.fresh = torch.where(c3, torch.cat([self.fresh[:, 1:], fresh[:, None]], 1), self.fresh)
        if W > 0:
            self.acts = torch.where(c3, torch.cat([self.acts[:, 1:], self.last_u[:, None]], 1), self.acts)
        self.nst = torch.where(cont, (self.nst + 1).clamp_max(W), self.nst)
        if bool(start.any()):
            s_r = start.repeat_interleave(M)
            rows = torch.arange(M, device=self.device).repeat(self.n_envs)
            p0 = repeat_state(self.initial_prior(), rows)
            self.z_win = self.z_win.where(s_r, p0)
            self.est_start = self.est_start.where(s_r, p0)
            self.theta = torch.where(s_r[:, None], self.member_theta[rows], self.theta)
            sig0 = max(self.cfg.estimation.initial_sigma, self.spec.init_noise)
            self.sig = torch.where(s_r, torch.full_like(self.sig, sig0), self.sig)
            s3 = start[:, None, None]
            self.vals = torch.where(s3, torch.zeros_like(self.vals), self.vals)
            self.vals[:, W] = torch.where(start[:, None], y, self.vals[:, W])
            self.fresh = torch.where(s3, torch.zeros_like(self.fresh), self.fresh)
            self.fresh[:, W] = torch.where(start[:, None], fresh, self.fresh[:, W])
            self.acts = torch.where(s3, torch.zeros_like(self.acts), self.acts)
            self.nst = torch.where(start, torch.zeros_like(self.nst), self.nst)
            self.has_plan = self.has_plan & ~start

    def _estimate(self) -> tuple[SimState, Tensor, Tensor | None]:
        """Present latent (B*M), log-parameters (B*M, P) and member weights (B, M) or None."""
        M = self.M
        rows = torch.arange(self.n_envs, device=self.device).repeat_interleave(M)
        win = MHEWindow(self.vals, self.fresh, self.acts, self.nst).index(rows)
        res = self.estimator.estimate(win, self.z_win, self.sig, self.theta)
        self.est_start = res.z_start
        if self.cfg.estimation.estimate_theta:
            self.theta = res.log_theta
        weights = None
        if M > 1 and self.cfg.ensemble.weighting == "likelihood":
            weights = torch.softmax(-0.5 * res.cost.reshape(self.n_envs, M), 1)
        return res.z_end, self.theta, weights

    def _plan(self, z: SimState, theta: Tensor, weights, goal: Tensor, t: Tensor, dose: Tensor) -> Tensor:
        T = self.cfg.horizon
        prob = PlanProblem(
            z,
            preview_targets(goal, T),
            theta,
            dose,
            stage_weights(t, self.spec.horizon, T, self.dtype),
            weights,
        )
        S = torch.zeros_like(self.plan)
        iters = torch.zeros(self.n_envs, dtype=torch.long, device=self.device)
        for warm in (True, False):
            idx = (self.has_plan == warm).nonzero().flatten()
            if len(idx) == 0:
                continue
            S0 = shift_plan(self.plan[idx]) if warm else None
            k = self.cfg.warm_iterations if warm else self.cfg.iterations
            res = self.planner.solve(prob.index(idx), S0, iterations=k)
            S[idx], iters[idx] = res.S, res.iterations
        self.plan, self.has_plan = S, torch.ones_like(self.has_plan)
        self.last_plan_iterations = iters
        return self.planner.controls(S)

    # ------------------------------------------------------------------ SB3 interface
    def _to_env(self, u: Tensor) -> np.ndarray:
        if self.spec.normalize_actions:
            lo, hi = self.model.control_low, self.model.control_high
            u = 2 * (u - lo) / (hi - lo).clamp_min(1e-12) - 1
        return u.detach().cpu().numpy().astype(np.float32)

    def predict(
        self, obs, state: Any = None, episode_start=None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        """Actions for a batch of observations, SB3 style.

        Args:
            obs: (obs_dim,) for one env or (n_envs, obs_dim); numpy or torch.
            state: passed through (the agent keeps its own per-env memory).
            episode_start: (n_envs,) bool, envs whose observation starts a new episode.
            deterministic: ignored (MPC is deterministic).
        Returns:
            (actions (n_envs, n_u) or (n_u,) for a 1-D obs, in the env's action convention; state).
        """
        o = obs if torch.is_tensor(obs) else torch.as_tensor(np.asarray(obs, dtype=np.float32))
        single = o.ndim == 1
        o = (o[None] if single else o).to(device=self.device, dtype=self.dtype)
        if o.ndim != 2 or o.shape[1] != self.obs_dim:
            raise ValueError(
                f"obs must have shape ({self.obs_dim},) or (n_envs, {self.obs_dim}), got {tuple(o.shape)}"
            )
        B = o.shape[0]
        if B != self.n_envs:
            self._alloc(B)
        y, fresh, goal, t, dose = self._parse(o)
        start = (t == 0) | ~self.seen
        if episode_start is not None:
            es = torch.as_tensor(np.asarray(episode_start, dtype=bool).reshape(-1), device=self.device)
            if es.shape[0] != B:
                raise ValueError(f"episode_start must have {B} entries, got {es.shape[0]}")
            start = start | es
        self.seen[:] = True
        t0 = time.perf_counter()
        with torch.no_grad():
            self._observe(y, fresh, start)
        z, theta, weights = self._estimate()
        u = self._plan(z, theta, weights, goal, t, dose)[:, 0]
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.latencies.append(time.perf_counter() - t0)
        self.last_u = u.detach()
        a = self._to_env(u)
        return (a[0] if single else a), state


class OracleMPCAgent(MPCAgent):
    """ORACLE MPC: plans through the true simulator with the env's TRUE parameters (and, by
    default, its TRUE state).

    Not a lab-realisable controller: it reads ``core.log_theta`` (and ``core.state``) of the
    environment it is bound to (single env, vector env, SB3 VecEnv, or DummyVecEnv of single
    envs). With ``oracle_state=True`` it bounds what any controller can reach with the same
    horizon and solver. With ``oracle_state=False`` it estimates the state by MHE from the
    observations like :class:`MPCAgent` but knows the true parameters: the reference a
    parameter-adaptive agent is measured against.
    """

    def __init__(
        self,
        env,
        config: MPCConfig | str | Path | dict | None = None,
        model=None,
        oracle_state: bool = True,
    ) -> None:
        self.cores = find_cores(env)
        self.oracle_state = bool(oracle_state)
        spec = self.cores[0].spec
        cfg = config if isinstance(config, MPCConfig) else load_config(config, spec)
        cfg = load_config(cfg, None, ensemble={"members": 0}, estimation={"estimate_theta": False})
        if model is None:  # the true world, hidden mechanisms included
            model = SimulatorModel(
                planning_spec(spec, cfg),
                device=cfg.device,
                dtype=_DTYPES[cfg.dtype],
                state_floor=cfg.state_floor,
                world=True,
                field_modes=cfg.field_modes or None,
            )
        super().__init__(model, spec, cfg)

    def _true(self) -> tuple[SimState, Tensor]:
        xs, Ls, lts = [], [], []
        for c in self.cores:
            xs.append(c.state.x)
            Ls.append(c.state.L)
            lts.append(c.true_parameters.log_values)
        x = torch.cat(xs).to(device=self.device, dtype=self.dtype)
        if x.shape[0] != self.n_envs:
            raise ValueError(f"oracle: the env has {x.shape[0]} environments but obs has {self.n_envs} rows")
        L = None if Ls[0] is None else torch.cat(Ls).to(device=self.device, dtype=self.dtype)
        z = SimState(x, L, torch.zeros(x.shape[0], dtype=self.dtype, device=self.device))
        return self.model.encode_state(z), torch.cat(lts).to(device=self.device, dtype=self.dtype)

    def _observe(self, y: Tensor, fresh: Tensor, start: Tensor) -> None:
        if self.oracle_state:
            self.has_plan = self.has_plan & ~start
        else:
            super()._observe(y, fresh, start)

    def _estimate(self) -> tuple[SimState, Tensor, None]:
        z, lt = self._true()
        if self.oracle_state:
            return z, lt, None
        self.theta = lt  # true parameters, estimated state
        z_est, _, _ = super()._estimate()
        return z_est, lt, None
