"""The batched environment core: the source of truth for every pbhno environment.

It holds B environments as tensors on one device and advances them together: validate and
bound the actions (box bounds, then the remaining cumulative dose), step the simulator, detect
numerical blow-ups, score the phenotype against the target, measure observations. The single
env (:class:`PathwayEnv`) is a core with B = 1; the vector env and the SB3 adapter wrap a core
with B = num_envs. Randomness comes from per-env counter streams (:mod:`pbhno_gym.utils.rng`),
so environment i behaves identically alone or inside any batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..physics import Parameters
from ..physics.simulator import SimState
from ..utils.rng import CounterRNG
from .checks import action_tensor, resolve_dtype
from .factory import build, episode_start_state  # re-exported: the env, the models and PB-HNO share it
from .spec import EnvSpec
from .targets import TargetModel
from .worlds import build_world_simulator, draw_spec_worlds, world_prior

__all__ = ["PathwayCore", "StepResult", "episode_start_state"]

STREAM_PARAMS, STREAM_INIT, STREAM_LANGEVIN = 31, 41, 51


@dataclass
class StepResult:
    """Batched outputs of one step (all tensors with leading dimension B)."""

    obs: Tensor
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    info: dict[str, Tensor]


class PathwayCore:
    """B environments of one spec on one device.

    Args:
        spec: the environment spec.
        num_envs: batch size B.
        device: torch device of every tensor.
        dtype: simulation dtype (float32 default; float64 for verification).
        world_seeds: one hidden-world seed per env (overrides ``spec.world_seed``, which gives
            every env the same world); see :mod:`.worlds`.

    The simulator (``sim``) runs the world: the spec's pathway plus its hidden ``mechanisms``.
    ``prior`` is what agents are told (the skeleton's parameters at the spec's nominal values);
    ``world_prior`` is what worlds are drawn from (``prior`` then the mechanisms' parameters).
    """

    def __init__(
        self,
        spec: EnvSpec,
        num_envs: int = 1,
        device=None,
        dtype=torch.float32,
        world_seeds: Sequence[int] | None = None,
        compile: bool = False,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be True or False, got {compile!r}")
        dtype = resolve_dtype(dtype)
        self.spec, self.B = spec, int(num_envs)
        self.device, self.dtype = torch.device(device or "cpu"), dtype
        self.parts = build(spec, self.device, dtype)
        self.sim = build_world_simulator(spec, self.device, dtype) if spec.mechanisms else self.parts.sim
        self.pathway = self.sim.pathway
        self.prior = self.parts.prior  # the spec's nominal values: the prior mean agents are told
        self.world_prior = world_prior(spec, self.device, dtype) if spec.mechanisms else self.prior
        self.world_seeds = self._world_seeds(world_seeds)
        self.world_log_theta = self.world_prior.log_values.expand(self.B, -1).clone()
        if self.world_seeds is not None:
            self.world_log_theta = draw_spec_worlds(spec, self.world_prior, self.world_seeds)
        self.control_names = self.parts.control_names
        self.low, self.high = self.parts.control_low, self.parts.control_high
        self.budget = self.parts.budget
        self.targets = TargetModel(spec.target, self.sim.layout, spec.horizon, self.device, dtype)
        self.obs_model = self.parts.obs_model
        self.rng = CounterRNG(self.B, self.device)
        # compile=True: the physics and the rest of a transition (reward, targets, measurement,
        # observation: ~1e3-1e4 small tensor ops eager) each run through torch.compile as one
        # graph, fixed batch; the first steps compile (10-60 s on CPU). The random numbers are
        # drawn eagerly in between (CounterRNG.bits is never compiled: compiled, its int64 hash
        # gave other words at batch 1 and its vectorised code wrote out of bounds on Wnt-v1)
        self._sim_step = torch.compile(self.sim.step, dynamic=False) if compile else self.sim.step
        self._finish = torch.compile(self._after_physics, dynamic=False) if compile else self._after_physics
        self._alloc()

    @property
    def true_parameters(self) -> Parameters:
        """(B, P) the parameters each environment actually runs with: hidden from agents, for the
        oracle and for evaluation only. With hidden mechanisms P also counts their parameters
        (after the skeleton's), so the names are ``world_prior.names``, not ``prior.names``."""
        return self.world_prior.replace(self.log_theta.clone())

    def _world_seeds(self, seeds: Sequence[int] | None) -> list[int] | None:
        """Per-env world seeds from the argument or ``spec.world_seed`` (None: nominal world)."""
        if seeds is None:
            return None if self.spec.world_seed is None else [self.spec.world_seed] * self.B
        seeds = list(seeds)
        if len(seeds) != self.B:
            raise ValueError(f"world_seed: expected one seed per env ({self.B}), got {len(seeds)}")
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in seeds):
            raise ValueError(f"world_seed: every seed must be a non-negative int, got {seeds}")
        if self.spec.randomize_parameters:
            raise ValueError(
                "world_seed and randomize_parameters exclude each other: world_seed fixes one hidden "
                "world per env, randomize_parameters draws a new one each episode"
            )
        return seeds

    # ------------------------------------------------------------------ state
    def _alloc(self) -> None:
        B, dev, dt = self.B, self.device, self.dtype
        self.log_theta = self.world_log_theta.clone()
        self.state = self.sim.initial_state(self.log_theta)
        self.t = torch.zeros(B, dtype=torch.long, device=dev)
        self.dose_used = torch.zeros(B, self.sim.n_controls, dtype=dt, device=dev)
        self.in_tol = torch.zeros(B, dtype=torch.long, device=dev)
        self.target_params = torch.zeros(B, self.targets.n_params, dtype=dt, device=dev)
        C = self.obs_model.n_channels
        self.held = torch.zeros(B, C, dtype=dt, device=dev)
        self.age = torch.zeros(B, C, dtype=torch.long, device=dev)
        self.fresh = torch.zeros(B, C, dtype=torch.bool, device=dev)
        self.is_seeded = torch.zeros(B, dtype=torch.bool, device=dev)

    @property
    def obs_dim(self) -> int:
        return self.obs_model.dim

    def phenotype(self) -> Tensor:
        return self.obs_model.phenotype(self.state.x)

    def goal(self) -> Tensor:
        """(B, preview, N) target levels from the current step on."""
        return self.targets.levels(self.target_params, self.t)

    def dose_left(self) -> Tensor:
        """(B, n_u) remaining fraction of each channel's budget (1 where unlimited)."""
        frac = 1 - self.dose_used / self.budget
        return torch.where(torch.isinf(self.budget), torch.ones_like(frac), frac.clamp(0, 1))

    def observation(self) -> Tensor:
        return self.obs_model.build(
            self.state,
            self.held,
            self.fresh,
            self.age,
            self.goal(),
            self.t,
            self.spec.horizon,
            self.dose_left(),
        )

    # ------------------------------------------------------------------ reset
    def reset(
        self, mask: Tensor | None = None, keys: Tensor | None = None, options: dict | None = None
    ) -> Tensor:
        """Start new episodes in the envs of ``mask`` (all if None); returns the observations.

        Args:
            keys: (B,) int64 stream keys for envs being (re)seeded; None continues their streams.
            options: ``{"log_theta": (P,) or (n, P)}`` fixes the parameters, ``{"target": k}``
                the target (index into ``choices`` for pattern targets, the parameter row
                otherwise), for evaluations on chosen conditions.
        """
        options = self.check_options(options)
        mask = torch.ones(self.B, dtype=torch.bool, device=self.device) if mask is None else mask
        lt_opt = options.get("log_theta")
        if lt_opt is not None and lt_opt.ndim == 2 and lt_opt.shape[0] not in (1, int(mask.sum())):
            raise ValueError(
                f'reset options["log_theta"] must have shape (P,) or (n, P) with n = {int(mask.sum())} '
                f"envs being reset, got {tuple(lt_opt.shape)}"
            )
        if keys is not None:
            self.rng.seed(keys, mask)
            self.is_seeded = self.is_seeded | mask
        if not bool(self.is_seeded[mask].all()):
            raise RuntimeError("PathwayCore.reset: an env has no RNG key; pass keys on its first reset")
        rows = mask.nonzero().flatten()
        if len(rows) == 0:
            return self.observation()
        self.rng.advance(mask)
        n = len(rows)
        lt = self.world_log_theta[rows]
        if self.spec.randomize_parameters:
            sd = self.world_prior.prior_sd
            lt = lt + sd * self.rng.normal(STREAM_PARAMS, lt.shape[1], rows, self.dtype)
        if lt_opt is not None:
            lt = self._option_log_theta(lt_opt, rows)
        st = episode_start_state(self.sim, self.spec, lt, n)
        if self.spec.init_noise > 0:
            z = self.rng.normal(STREAM_INIT, st.x[0].numel(), rows, self.dtype).reshape(st.x.shape)
            st = SimState(st.x * torch.exp(self.spec.init_noise * z), st.L, st.t)
        st = SimState(st.x, st.L, torch.zeros_like(st.t))
        self._put(rows, st, lt)
        self.t[rows] = 0
        self.dose_used[rows] = 0
        self.in_tol[rows] = 0
        tp = self.targets.sample(self.rng, rows)
        if "target" in options:
            tp = options["target"].reshape(1, -1).expand_as(tp)
        self.target_params[rows] = tp
        draws = self.obs_model.draw(self.rng)
        held, fresh, age = self.obs_model.measure(self.state, draws, self.held, self.age, mask)
        self.held = torch.where(mask[:, None], held, self.held)
        self.fresh = torch.where(mask[:, None], fresh, self.fresh)
        self.age = torch.where(mask[:, None], age, self.age)
        return self.observation()

    def check_options(self, options: dict | None) -> dict:
        """Validated reset options (tensors), raising before anything changes: unknown keys,
        ``log_theta`` of the wrong length or outside the parameter bounds, ``target`` outside
        the target kind's choices or range."""
        if options is None:
            return {}
        if not isinstance(options, Mapping):
            raise TypeError(f"reset options must be a dict or None, got {type(options).__name__}")
        unknown = set(options) - {"log_theta", "target"}
        if unknown:
            raise ValueError(
                f"reset options: unknown key(s) {sorted(map(str, unknown))}; known: log_theta, target"
            )
        out: dict = {}
        if options.get("log_theta") is not None:
            P0, P = len(self.prior), len(self.world_prior)
            raw = options["log_theta"]
            a = raw.detach().cpu().numpy() if torch.is_tensor(raw) else np.asarray(raw)
            if (
                a.dtype.kind not in "fiu"
                or a.ndim not in (1, 2)
                or a.shape[-1] not in (P0, P)
                or not np.isfinite(a).all()
            ):
                raise ValueError(
                    f'reset options["log_theta"] must be {P0} finite log-parameters '
                    f"[{', '.join(self.prior.names)}]"
                    + (
                        f" or {P} with the hidden mechanisms' [{', '.join(self.world_prior.names)}]"
                        if P != P0
                        else ""
                    )
                    + f", shape (P,) or (n, P), got shape {a.shape}"
                )
            out["log_theta"] = torch.as_tensor(a, dtype=self.dtype, device=self.device)
        if "target" in options:
            out["target"] = self.targets.check_option(options["target"])
        return out

    def _option_log_theta(self, value, rows: Tensor) -> Tensor:
        """(n, P) log parameters from ``options["log_theta"]``: the world's P, or only the
        skeleton's (the hidden mechanisms' parameters then stay those of each env's world)."""
        lt = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        P0, P = len(self.prior), len(self.world_prior)
        if P != P0 and lt.ndim >= 1 and lt.shape[-1] == P0:
            lt = torch.cat([lt.expand(len(rows), -1), self.world_log_theta[rows, P0:]], 1)
        lt = lt.expand(len(rows), -1)
        self.sim.params.validate(lt)
        return lt

    def _put(self, rows: Tensor, st: SimState, lt: Tensor) -> None:
        x, L, t = (
            self.state.x.clone(),
            None if self.state.L is None else self.state.L.clone(),
            self.state.t.clone(),
        )
        x[rows] = st.x
        if L is not None:
            L[rows] = st.L
        t[rows] = st.t
        self.state = SimState(x, L, t)
        self.log_theta = self.log_theta.clone()
        self.log_theta[rows] = lt

    # ------------------------------------------------------------------ step
    def to_physical(self, action: Tensor) -> Tensor:
        """Map normalised actions in [-1, 1] to physical units (identity if not normalised)."""
        if not self.spec.normalize_actions:
            return action
        return self.low + 0.5 * (action + 1) * (self.high - self.low)

    def to_normalized(self, u: Tensor) -> Tensor:
        return 2 * (u - self.low) / (self.high - self.low).clamp_min(1e-12) - 1

    def bound_actions(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Clip to the box, then to the remaining cumulative dose. Returns (u, clipped, limited)."""
        uc = torch.minimum(torch.maximum(u, self.low), self.high)
        clipped = (uc != u).any(1)
        allowed = ((self.budget - self.dose_used) / self.spec.control_interval).clamp_min(0)
        ub = torch.minimum(uc, allowed)
        limited = (ub < uc).any(1)
        return ub, clipped, limited

    def step(self, action: Tensor, active: Tensor | None = None) -> StepResult:
        """Advance the envs of ``active`` (all if None) by one control interval.

        Raises ValueError, changing nothing, if an active env's action is NaN/inf or mis-shaped.
        """
        B, n_u = self.B, self.sim.n_controls
        if not bool(self.is_seeded.all()):
            raise RuntimeError("step() called before reset(): call reset() (with a seed) first")
        action = action_tensor(action, (B, n_u), self.control_names, self.device).to(self.dtype)
        active = torch.ones(B, dtype=torch.bool, device=self.device) if active is None else active
        bad = ~torch.isfinite(action).all(1) & active
        if bool(bad.any()):
            raise ValueError(
                f"action contains NaN or inf for env(s) {bad.nonzero().flatten().tolist()}: "
                f"{action[bad].tolist()[:2]}; the state is unchanged"
            )
        with torch.no_grad():
            u, clipped, limited = self.bound_actions(
                self.to_physical(torch.where(active[:, None], action, self.low))
            )
            u = torch.where(active[:, None], u, torch.zeros_like(u))
            noise = self._langevin_noise() if self.spec.intrinsic_noise else None
            new = self._sim_step(self.state, u, self.log_theta, noise=noise)
            self.rng.advance(active)
            draws = self.obs_model.draw(self.rng)  # the integer hash stays eager (CounterRNG.bits)
            return self._finish(new, u, clipped, limited, active, draws)

    def _after_physics(
        self,
        new: SimState,
        u: Tensor,
        clipped: Tensor,
        limited: Tensor,
        active: Tensor,
        draws: tuple[Tensor, Tensor],
    ) -> StepResult:
        """The rest of :meth:`step` after the physics: commit, reward, targets, measurement (with
        this round's random numbers ``draws``) and the observation; pure tensor work (no host
        read), so that ``compile=True`` captures it whole."""
        B = self.B
        x_ok = torch.isfinite(new.x).flatten(1).all(1) & (
            new.x.flatten(1).abs().amax(1) < self.spec.blowup_threshold
        )
        if new.L is not None:
            x_ok = x_ok & torch.isfinite(new.L).flatten(1).all(1)
        failed = active & ~x_ok
        commit = active & x_ok
        self.state = self.state.where(commit, new)
        self.t = self.t + active.long()
        self.dose_used = self.dose_used + u * self.spec.control_interval * commit[:, None]
        p = self.phenotype()
        p_star = self.targets.levels(self.target_params, self.t, 1)[:, 0]
        r = self.spec.reward
        u_norm = u / self.high.clamp_min(1e-12)
        cost = r.Q * ((p - p_star) ** 2).mean(1) + r.R * (u_norm**2).mean(1)
        reward = torch.where(active, -r.scale * cost, torch.zeros_like(cost))
        ok = self.targets.in_tolerance(p, p_star)
        self.in_tol = torch.where(active, torch.where(ok, self.in_tol + 1, 0), self.in_tol)
        truncated = active & ((self.t >= self.spec.horizon) | failed)
        held, fresh, age = self.obs_model.measure(
            self.state, draws, self.held, self.age, torch.zeros(B, dtype=torch.bool, device=self.device)
        )
        self.held = torch.where(active[:, None], held, self.held)
        self.fresh = torch.where(active[:, None], fresh, self.fresh)
        self.age = torch.where(active[:, None], age, self.age)
        info = dict(
            is_success=self.in_tol >= min(self.spec.target.success_window, self.spec.horizon),
            tracking_error=((p - p_star) ** 2).mean(1).sqrt(),
            energy=(u_norm**2).sum(1),
            dose=u,
            dose_used=self.dose_used.clone(),
            dose_left=self.dose_left(),
            action_clipped=clipped & active,
            budget_limited=limited & active,
            numerical_failure=failed,
            phenotype=p,
            target=p_star,
            t=self.t.clone(),
        )
        return StepResult(self.observation(), reward, torch.zeros_like(truncated), truncated, info)

    def _langevin_noise(self):
        """Counter-stream standard normals for the chemical-Langevin substeps (per-env reproducible)."""
        calls = [0]

        def draw(shape, dtype, device):
            calls[0] += 1
            n = int(torch.tensor(shape[1:]).prod())
            z = self.rng.normal(STREAM_LANGEVIN + calls[0], n, dtype=dtype)
            return z.reshape(shape).to(device)

        return draw

    def true_info(self) -> dict[str, Tensor]:
        """Ground truth for evaluation only: state, field, parameters, target."""
        out = dict(x=self.state.x, log_theta=self.log_theta, target_params=self.target_params)
        if self.state.L is not None:
            out["L"] = self.state.L
        return {k: v.clone() for k, v in out.items()}
