"""The differentiable MPC planner (paper Algorithm 2 and a Gauss-Newton solver), batched.

Cost of a schedule ``u_{0:T-1}`` over a model rollout from ``z_0``, matching the environment's
reward summed over the horizon (Table II: Q = 1, R = 0.01)::

    J = sum_{t=1..T} w_t Q mean_i (p_{t,i} - p*_{t,i})^2 + R mean_j (u_{t-1,j} / u_max_j)^2

with ``p_t`` the model's normalised phenotype after t steps, ``p*_t`` the target trajectory
(the observation's preview, padded with its last value) and ``w_t`` = 0 for steps past the
episode end. With ``band = (lo, hi)`` (pattern targets, whose success is a threshold per cell) a
target ``>= hi`` is a floor and one ``<= lo`` a ceiling: only the shortfall below a floor and the
excess above a ceiling are penalised (a squared hinge), so cells that overshoot an "on" level are
not pulled back at the expense of those still below it.

Decision variables are normalised, ``u = low + s (high - low)``, ``s in [0, 1]``, and every
iterate is projected exactly onto the box and the remaining dose (:mod:`.projection`); the first
action of the plan is what the environment admits.

Solvers, both batched over B problems with per-problem convergence (converged problems leave
the active batch, so a problem's result does not depend on its batch):

* ``adam``: projected Adam on s (Algorithm 2), the best iterate kept; stops when the best cost
  has not improved by a relative ``tol`` for ``patience`` iterations.
* ``gn``: projected Levenberg-Marquardt on the stacked residuals
  ``r = [sqrt(Q w_t / N) (p - p*), sqrt(R / n_u) u / u_max]``. Jacobians by batched reverse mode
  (:mod:`.jacobian`); the step solves ``(H_ff + lambda diag(H_ff)) d = -g_f`` on the free
  variables (those not held at a bound by their gradient, Bertsekas' projected Newton), is
  projected, and is accepted only if it lowers J (lambda adapts per problem). Stops when an
  accepted step lowers J by less than ``tol`` relative.

Ensembles: a problem may carry M members (per-member initial states and log-parameters); the
plan is shared and member costs are aggregated by :func:`.risk.aggregate_costs` (mean,
mean + k std, CVaR). Gauss-Newton then weights member residuals by the aggregate's gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..physics.simulator import SimState
from .jacobian import (
    JACOBIANS,
    batched_jacobian,
    condense,
    local_jacobians,
    local_jacobians_forward,
    state_dim,
)
from .model import ControlModel
from .optim import adam_minimize, lm_update
from .projection import project_schedule
from .risk import RISKS, aggregate_costs

__all__ = [
    "PlanProblem",
    "PlanResult",
    "Planner",
    "SOLVERS",
    "preview_targets",
    "stage_weights",
    "shift_plan",
    "repeat_state",
]

SOLVERS = ("gn", "adam")


def repeat_state(z: SimState, rep: Tensor) -> SimState:
    """Rows ``rep`` of a batched state (gather; ``rep`` may repeat rows)."""
    return SimState(z.x[rep], None if z.L is None else z.L[rep], z.t[rep])


def preview_targets(goal: Tensor, horizon: int) -> Tensor:
    """Targets of the states 1..T from an observation's preview.

    Args:
        goal: (B, preview, N) target levels for the current step and the next ones.
        horizon: T.
    Returns:
        (B, T, N): ``goal[:, k]`` for k = 1..T, the last previewed level beyond the preview.
    """
    k = torch.arange(1, horizon + 1, device=goal.device).clamp_max(goal.shape[1] - 1)
    return goal[:, k]


def stage_weights(t: Tensor, episode_horizon: int, horizon: int, dtype=torch.float32) -> Tensor:
    """(B, T) 1 for planned steps inside the episode (``t + k <= episode_horizon``), else 0."""
    k = torch.arange(1, horizon + 1, device=t.device)
    return ((t.reshape(-1, 1) + k) <= episode_horizon).to(dtype)


def shift_plan(S: Tensor) -> Tensor:
    """Warm start: drop the applied first step, repeat the last one."""
    return torch.cat([S[:, 1:], S[:, -1:]], 1)


@dataclass
class PlanProblem:
    """B planning problems, each with M model members (M = 1 without an ensemble).

    Attributes:
        z0: initial latent states, batch B * M (row b * M + m).
        target: (B, T, N) target phenotype of states 1..T.
        log_theta: (B * M, P) log-parameters per member.
        dose_left: (B, n_u) remaining dose per channel (physical units x minutes; inf: none).
        weight: (B, T) tracking weight per stage (None: all 1).
        member_weight: (B, M) weights of the members (None: uniform).
    """

    z0: SimState
    target: Tensor
    log_theta: Tensor
    dose_left: Tensor
    weight: Tensor | None = None
    member_weight: Tensor | None = None

    @property
    def batch(self) -> int:
        return int(self.target.shape[0])

    @property
    def members(self) -> int:
        return self.z0.batch_size // self.batch

    def index(self, idx: Tensor) -> PlanProblem:
        """Problems ``idx`` (with all their members)."""
        M = self.members
        rows = (idx[:, None] * M + torch.arange(M, device=idx.device)).reshape(-1)
        return PlanProblem(
            repeat_state(self.z0, rows),
            self.target[idx],
            self.log_theta[rows],
            self.dose_left[idx],
            None if self.weight is None else self.weight[idx],
            None if self.member_weight is None else self.member_weight[idx],
        )


@dataclass
class PlanResult:
    """Planner output (all tensors with leading dimension B).

    Attributes:
        U: (B, T, n_u) planned controls in physical units (feasible).
        S: (B, T, n_u) the same, normalised to [0, 1] (for warm starts).
        cost: (B,) objective J at U.
        iterations: (B,) solver iterations used.
        converged: (B,) stopped by the tolerance (not by the iteration limit).
        history: (iterations + 1, B) objective per iteration (rows after convergence repeat the
            final value), if requested.
    """

    U: Tensor
    S: Tensor
    cost: Tensor
    iterations: Tensor
    converged: Tensor
    history: Tensor | None = None
    info: dict = field(default_factory=dict)


class Planner:
    """Receding-horizon planner through a :class:`ControlModel`.

    Args:
        model: the dynamics model (simulator oracle, surrogate, ...).
        horizon: T, planned control steps.
        Q, R: stage-cost weights (the env's reward weights).
        solver: "gn" (Levenberg-Marquardt) or "adam" (projected Adam, Algorithm 2).
        iterations: maximum solver iterations per plan.
        lr: Adam step size in normalised control units.
        tol: relative cost decrease below which a problem counts as converged.
        patience: Adam iterations without a ``tol`` improvement before it stops.
        damping: initial Levenberg-Marquardt lambda.
        risk, risk_k, cvar_alpha: ensemble aggregate (see :mod:`.risk`).
        jac_chunk: residual rows per backward pass when building Jacobians.
        band: (lo, hi): targets >= hi are floors and targets <= lo ceilings, penalised one-sided
            (None: every target tracked both ways).
        jacobian: "rows" (one replica per residual row, any latent), "condensed" (one-step
            Jacobians chained through the horizon, for small latents: ODE pathways), "forward"
            (the same one-step Jacobians by forward mode, ``model.step_jacobian``: fast when the
            model compiles it, see :class:`.compiled.CompiledModel`) or "auto" (condensed for
            small latents, by forward mode when the model has ``fast_step_jacobian``).
    """

    def __init__(
        self,
        model: ControlModel,
        horizon: int = 20,
        Q: float = 1.0,
        R: float = 0.01,
        solver: str = "gn",
        iterations: int = 20,
        lr: float = 0.05,
        tol: float = 1e-4,
        patience: int = 5,
        damping: float = 1e-3,
        risk: str = "mean",
        risk_k: float = 1.0,
        cvar_alpha: float = 0.3,
        jac_chunk: int = 256,
        jacobian: str = "auto",
        cold_levels: tuple[float, ...] = (0.0,),
        band: tuple[float, float] | None = None,
    ) -> None:
        if jacobian not in JACOBIANS:
            raise ValueError(f"jacobian must be one of {', '.join(JACOBIANS)}, got {jacobian!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
        if risk not in RISKS:
            raise ValueError(f"risk must be one of {', '.join(RISKS)}, got {risk!r}")
        checks = {
            "horizon": horizon >= 1,
            "iterations": iterations >= 0,
            "Q": Q >= 0,
            "R": R >= 0,
            "lr": lr > 0,
            "tol": tol >= 0,
            "patience": patience >= 1,
            "damping": damping > 0,
            "cvar_alpha": 0 < cvar_alpha <= 1,
            "cold_levels": len(cold_levels) >= 1 and all(0 <= c <= 1 for c in cold_levels),
            "band": band is None or (len(band) == 2 and band[0] < band[1]),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"Planner.{name} is out of range: {locals()[name]!r}")
        self.model = model
        self.T, self.Q, self.R = int(horizon), float(Q), float(R)
        self.solver, self.iterations, self.lr = solver, int(iterations), float(lr)
        self.tol, self.patience, self.damping = float(tol), int(patience), float(damping)
        self.risk, self.risk_k, self.cvar_alpha = risk, float(risk_k), float(cvar_alpha)
        self.jac_chunk, self.jacobian = int(jac_chunk), jacobian
        self.cold_levels = tuple(float(c) for c in cold_levels)
        self.band = None if band is None else (float(band[0]), float(band[1]))
        self.low, self.high = model.control_low, model.control_high
        self.span = (self.high - self.low).clamp_min(1e-12)
        self.u_max = self.high.clamp_min(1e-12)
        self.n_u = int(model.n_controls)

    # ------------------------------------------------------------------ objective
    def controls(self, S: Tensor) -> Tensor:
        """Physical controls from normalised ones."""
        return self.low + S * self.span

    def normalise(self, U: Tensor) -> Tensor:
        return (U - self.low) / self.span

    def project(self, S: Tensor, prob: PlanProblem) -> Tensor:
        """Exact projection of normalised schedules onto box and remaining dose."""
        cap = (prob.dose_left / self.model.dt - self.T * self.low) / self.span  # in s-units x steps
        return project_schedule(S, 0.0, 1.0, cap, dt=1.0)

    def _track_scale(self, prob: PlanProblem, like: Tensor) -> Tensor:
        """(b, 1, T, 1) ``sqrt(Q w_t / N)``."""
        N = prob.target.shape[-1]
        w = torch.ones_like(prob.target[..., 0]) if prob.weight is None else prob.weight.to(like.dtype)
        return (self.Q / N * w).sqrt()[:, None, :, None]

    def _band_mask(self, err: Tensor, target: Tensor) -> Tensor | None:
        """(b, M, T, N) 0 where a one-sided target is met (``err`` (b, M, T, N) beyond a floor
        or below a ceiling), else 1; None without a band."""
        if self.band is None:
            return None
        lo, hi = self.band
        tgt = target[:, None]
        met = ((tgt >= hi) & (err > 0)) | ((tgt <= lo) & (err < 0))
        return (~met).to(err.dtype)

    def _track_residuals(self, S: Tensor, prob: PlanProblem) -> Tensor:
        """(b, M, T, N) weighted tracking residuals ``sqrt(Q w_t / N) (p_t - p*_t)`` (one-sided
        where a band makes the target a floor or a ceiling)."""
        b, M = S.shape[0], prob.members
        U = self.controls(S)
        if M > 1:
            U = U.repeat_interleave(M, 0)
        _, ph = self.model.rollout(prob.z0, U, prob.log_theta)
        err = ph[:, 1:].reshape(b, M, self.T, -1) - prob.target[:, None]
        mask = self._band_mask(err.detach(), prob.target)
        if mask is not None:
            err = err * mask
        return err * self._track_scale(prob, err)

    def _jacobian_mode(self, prob: PlanProblem) -> str:
        if self.jacobian != "auto":
            return self.jacobian
        N = prob.target.shape[-1]
        if state_dim(prob.z0) + N >= self.T * N:
            return "rows"
        fast = prob.z0.L is None and getattr(self.model, "fast_step_jacobian", False)
        return "forward" if fast else "condensed"

    def _track_jacobian(self, S: Tensor, prob: PlanProblem) -> tuple[Tensor, Tensor]:
        """Tracking residuals (b, M*T*N) and their Jacobian wrt S (b, M*T*N, T*n_u)."""
        b, M = S.shape[0], prob.members
        Kv = self.T * self.n_u
        mode = self._jacobian_mode(prob)
        if mode == "rows":

            def fn(x: Tensor, rep: Tensor) -> Tensor:
                sub = prob.index(rep)
                return self._track_residuals(x.reshape(-1, self.T, self.n_u), sub).reshape(len(rep), -1)

            return batched_jacobian(fn, S.reshape(b, Kv), M * self.T * prob.target.shape[-1], self.jac_chunk)
        U = self.controls(S)
        if M > 1:
            U = U.repeat_interleave(M, 0)
        if mode == "forward":
            lj = local_jacobians_forward(self.model, prob.z0, U, prob.log_theta, "phenotype")
        else:
            lj = local_jacobians(self.model, prob.z0, U, prob.log_theta, self.model.phenotype)
        G0 = U.new_zeros(b * M, state_dim(prob.z0), Kv)
        Jp = condense(lj, G0, u_cols=True) * self.span.repeat(self.T)  # (bM, T, N, Kv) wrt S
        sc = self._track_scale(prob, U)  # (b, 1, T, 1)
        err = lj.y.reshape(b, M, self.T, -1) - prob.target[:, None]
        mask = self._band_mask(err, prob.target)
        if mask is not None:
            sc = sc * mask  # a met one-sided target has no residual and no Jacobian row
        e = err * sc
        Je = Jp.reshape(b, M, self.T, -1, Kv) * sc[..., None]
        return e.reshape(b, -1), Je.reshape(b, -1, Kv)

    def _control_residuals(self, S: Tensor) -> Tensor:
        """(b, T, n_u) ``sqrt(R / n_u) u / u_max``."""
        return math.sqrt(self.R / self.n_u) * self.controls(S) / self.u_max

    def member_costs(self, S: Tensor, prob: PlanProblem) -> Tensor:
        """(b, M) cost J of each member."""
        e = self._track_residuals(S, prob)
        c = self._control_residuals(S)
        return e.pow(2).sum((2, 3)) + c.pow(2).sum((1, 2))[:, None]

    def objective(self, S: Tensor, prob: PlanProblem) -> tuple[Tensor, Tensor]:
        """(b,) aggregated cost and the member weights omega (b, M)."""
        return aggregate_costs(
            self.member_costs(S, prob), prob.member_weight, self.risk, self.risk_k, self.cvar_alpha
        )

    # ------------------------------------------------------------------ entry point
    def solve(
        self,
        prob: PlanProblem,
        S0: Tensor | None = None,
        history: bool = False,
        iterations: int | None = None,
    ) -> PlanResult:
        """Plan for every problem.

        Args:
            prob: the problems.
            S0: (B, T, n_u) normalised initial guess (e.g. :func:`shift_plan` of the last plan);
                None: the cheapest constant plan, per problem, of :meth:`cold_start`. It is
                projected first.
            history: record the objective per iteration.
            iterations: override the iteration limit.
        """
        B = prob.batch
        if prob.target.shape[1] != self.T:
            raise ValueError(f"prob.target must have T={self.T} steps, got {tuple(prob.target.shape)}")
        if prob.z0.batch_size != B * prob.members or prob.log_theta.shape[0] != B * prob.members:
            raise ValueError("prob.z0 and prob.log_theta must have B * members rows")
        dt = self.low.dtype
        S = self.cold_start(prob) if S0 is None else S0.to(dt).clone()
        if S.shape != (B, self.T, self.n_u):
            raise ValueError(f"S0 must have shape ({B}, {self.T}, {self.n_u}), got {tuple(S.shape)}")
        S = self.project(S, prob)
        K = self.iterations if iterations is None else int(iterations)
        run = self._solve_gn if self.solver == "gn" else self._solve_adam
        return run(prob, S, K, history)

    def cold_start(self, prob: PlanProblem) -> Tensor:
        """(B, T, n_u) the cheapest (projected) constant plan per problem, each channel at one of
        ``cold_levels`` of its range (every combination for <= 3 channels, else one level for all).

        Zero controls alone can be a stationary point of a fitted model: a learned correction that
        holds a species at its floor leaves no gradient from u = 0 (measured: a PB-HNO of
        MAPK-Unknown world 1 planned zero doses for whole episodes); a few rollouts avoid it."""
        B, dev, dt = prob.batch, prob.target.device, self.low.dtype
        zero = torch.zeros(B, self.T, self.n_u, dtype=dt, device=dev)
        if self.cold_levels == (0.0,):
            return zero
        lv = torch.tensor(self.cold_levels, dtype=dt, device=dev)
        if self.n_u <= 3:
            combos = torch.cartesian_prod(*[lv] * self.n_u).reshape(-1, self.n_u)
        else:
            combos = lv[:, None].expand(-1, self.n_u)
        best, best_cost = zero, None
        with torch.no_grad():
            for c in combos:
                S = self.project(c.expand(B, self.T, self.n_u).clone(), prob)
                cost, _ = self.objective(S, prob)
                if best_cost is None:
                    best, best_cost = S, cost
                else:
                    better = cost < best_cost
                    best = torch.where(better[:, None, None], S, best)
                    best_cost = torch.where(better, cost, best_cost)
        return best

    # ------------------------------------------------------------------ Gauss-Newton / LM
    def _gn_eval(self, S: Tensor, prob: PlanProblem):
        """Cost, member weights, gradient g (b, K) and GN matrix H (b, K, K) at S (float64)."""
        b, M = S.shape[0], prob.members
        Kv = self.T * self.n_u
        with torch.no_grad():
            e, Je = self._track_jacobian(S, prob)
            c = self._control_residuals(S).reshape(b, Kv)
            member = e.reshape(b, M, -1).pow(2).sum(2) + c.pow(2).sum(1, keepdim=True)
            cost, omega = aggregate_costs(member, prob.member_weight, self.risk, self.risk_k, self.cvar_alpha)
            omega = omega.double()
            e64, Je64 = e.double().reshape(b, M, -1), Je.double().reshape(b, M, -1, Kv)
            dc = (math.sqrt(self.R / self.n_u) * self.span / self.u_max).repeat(self.T).double()  # dc/ds
            wc = omega.sum(1, keepdim=True)
            g = torch.einsum("bm,bmrk,bmr->bk", omega, Je64, e64) + wc * dc * c.double()
            # curvature: the Gauss-Newton matrix of the members' weighted mean (the exact one for
            # risk="mean"; a positive-definite model of the non-smooth risk-averse aggregates)
            wm = (
                torch.full_like(omega, 1.0 / M) if prob.member_weight is None else prob.member_weight.double()
            )
            H = torch.einsum("bm,bmrk,bmrl->bkl", wm, Je64, Je64)
            H = H + torch.diag_embed(dc**2).expand_as(H)
        return cost, g, H

    @staticmethod
    def _free_system(S: Tensor, g: Tensor, H: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
        """Damped Newton step on the free variables (those not held at a bound by their
        gradient, as in Bertsekas' projected Newton) and the free mask."""
        b, Kv = g.shape
        s = S.reshape(b, Kv).double()
        eps = 1e-9
        held = ((s <= eps) & (g > 0)) | ((s >= 1 - eps) & (g < 0))
        free = (~held).double()
        d = torch.diagonal(H, dim1=1, dim2=2)
        A = H + torch.diag_embed(lam[:, None] * (d + 1e-9) + 1e-12)
        A = A * free[:, :, None] * free[:, None, :] + torch.diag_embed(1 - free)
        L, info = torch.linalg.cholesky_ex(A)
        step = torch.cholesky_solve((-g * free)[..., None], L)[..., 0]
        bad = info != 0
        if bool(bad.any()):  # numerically indefinite: fall back to a scaled gradient step
            step = torch.where(bad[:, None], -g * free / (lam[:, None] * (d + 1e-9) + 1e-12), step)
        return step, free

    def _decrement(self, S: Tensor, g: Tensor, H: Tensor) -> Tensor:
        """(b,) ``-g.d / 2`` for the undamped free Newton step d (>= 0; 0 only at a KKT point of
        the box)."""
        step, _ = self._free_system(S, g, H, torch.zeros(g.shape[0], dtype=g.dtype, device=g.device))
        return -0.5 * (g * step).sum(1)

    def _gn_step(self, S: Tensor, g: Tensor, H: Tensor, lam: Tensor, prob: PlanProblem) -> Tensor:
        """Projected, damped Newton step on the free variables (normalised units)."""
        step, _ = self._free_system(S, g, H, lam)
        S_new = (S.reshape(step.shape).double() + step).reshape(S.shape).to(S.dtype)
        return self.project(S_new, prob)

    @staticmethod
    def _model_decrease(S: Tensor, S_new: Tensor, g: Tensor, H: Tensor) -> Tensor:
        """Decrease of the quadratic model ``g.d + d H d / 2`` from S to S_new (b,)."""
        d = (S_new - S).reshape(S.shape[0], -1).double()
        return -(g * d).sum(1) - 0.5 * torch.einsum("bk,bkl,bl->b", d, H, d)

    def _solve_gn(self, prob: PlanProblem, S: Tensor, K: int, history: bool) -> PlanResult:
        B = prob.batch
        cost, g, H = self._gn_eval(S, prob)
        lam = torch.full((B,), self.damping, dtype=torch.float64, device=S.device)
        iters = torch.zeros(B, dtype=torch.long, device=S.device)
        conv = torch.zeros(B, dtype=torch.bool, device=S.device)
        hist = [cost.clone()] if history else None
        for _ in range(K):
            act = (~conv).nonzero().flatten()
            if len(act) == 0:
                break
            # the active problems' data; while all are active (always at batch 1) the tensors
            # themselves, read before the in-place updates below (gathers cost dispatch time)
            full = len(act) == B
            sub = prob if full else prob.index(act)
            Sa, ga, Ha, ca, la = (S, g, H, cost, lam) if full else (a[act] for a in (S, g, H, cost, lam))
            # optimality: the Gauss-Newton decrement on the variables free of their bounds, i.e.
            # what the undamped model still promises; below tol * J a Jacobian is not worth it
            opt = self._decrement(Sa, ga, Ha)
            at_opt = opt <= self.tol * ca.double().abs() + 1e-14
            if bool(at_opt.any()):
                conv[act[at_opt]] = True
                keep = (~at_opt).nonzero().flatten()
                act, sub = act[keep], sub.index(keep)
                if len(act) == 0:
                    break
                Sa, ga, Ha, ca, la = (a[keep] for a in (Sa, ga, Ha, ca, la))
            S_try = self._gn_step(Sa, ga, Ha, la, sub)
            c_try, g_try, H_try = self._gn_eval(S_try, sub)
            pred = self._model_decrease(Sa, S_try, ga, Ha)  # along the projected step
            gain = (ca - c_try).double()
            ok, lam_a = lm_update(la, gain, pred)
            small = gain <= self.tol * ca.double().abs() + 1e-12
            done = (ok & small) | (~ok & (lam_a >= 1e10)) | (pred.abs() <= 1e-14)
            acc = act[ok]
            S[acc], cost[acc], g[acc], H[acc] = S_try[ok], c_try[ok], g_try[ok], H_try[ok]
            lam[act] = lam_a
            iters[act] += 1
            conv[act] = done
            if history:
                hist.append(cost.clone())
        hist_t = None
        if hist is not None:
            while len(hist) < K + 1:
                hist.append(cost.clone())
            hist_t = torch.stack(hist)
        return PlanResult(self.controls(S), S, cost, iters, conv, hist_t)

    # ------------------------------------------------------------------ projected Adam
    def _solve_adam(self, prob: PlanProblem, S: Tensor, K: int, history: bool) -> PlanResult:
        res = adam_minimize(
            lambda x, idx: self.objective(x, prob.index(idx))[0],
            S,
            K,
            self.lr,
            self.tol,
            self.patience,
            project=lambda x, idx: self.project(x, prob.index(idx)),
            history=history,
        )
        return PlanResult(self.controls(res.x), res.x, res.f, res.iterations, res.converged, res.history)
