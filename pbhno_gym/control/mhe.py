"""Moving-horizon estimation (MHE) of the latent state (and optionally theta) through a model.

Given the measurements of the last W control steps, the controls applied between them and a
prior for the state at the window start (the model's prediction from the previous estimate:
the arrival cost), MHE fits that start state by single shooting through the same
:class:`ControlModel` the planner uses, then rolls it forward to the present::

    min  sum_{k, c fresh} ((y_kc - h_c(z_k)) / sigma_y(y_kc))^2     measurements (fresh only)
       + ||d / sigma||^2                                            arrival cost on the start state
       + ||(log theta - mu) / sigma_theta||^2                       parameter prior (if estimated)

Positivity: the start state is ``x = (x_prior + eps) exp(d_x) - eps`` (and the same for the
ligand field), i.e. we optimise logs of ``x + eps``, so the deviation ``d`` is relative and
the arrival cost is log-normal. ``sigma_y`` follows the env's noise model
``y = v (1 + m e1) + a e2``: ``sigma_y = sqrt((m y)^2 + a^2)``.

Windows are right-aligned per problem: ``values``/``fresh`` (B, W+1, C) hold slots 0..W (the
present is slot W), ``actions`` (B, W, n_u) the controls between slots, and ``n_steps`` (B,)
how many of the last transitions are real (a younger episode has fewer); earlier slots are
padding (identity transitions, no measurements), so one batch holds windows of every length.

Solver: Levenberg-Marquardt (:func:`.optim.lm_least_squares`) when the unknowns are few (ODE
pathways), Adam otherwise (a ligand field has thousands of unknowns).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..physics.simulator import SimState
from .jacobian import (
    JACOBIANS,
    batched_jacobian,
    condense,
    flat_state,
    local_jacobians,
    local_jacobians_forward,
    state_dim,
)
from .model import ControlModel
from .optim import adam_minimize, lm_least_squares
from .planner import repeat_state

__all__ = ["MHEWindow", "MHEResult", "MovingHorizonEstimator", "rollout_window"]

#: estimated species and field stay >= FLOOR * eps (a 1e-4 relative floor): the simulator's
#: Patankar weights ``dest / x`` have garbage autograd derivatives at exactly zero species.
FLOOR = 0.01


@dataclass
class MHEWindow:
    """Right-aligned measurement windows of B problems (see the module docstring)."""

    values: Tensor  # (B, W+1, C) normalised measurements (held values where not fresh)
    fresh: Tensor  # (B, W+1, C) bool: measured at that slot
    actions: Tensor  # (B, W, n_u) physical controls applied between slots
    n_steps: Tensor  # (B,) long, real transitions in the window (0..W)

    def index(self, rows: Tensor) -> MHEWindow:
        return MHEWindow(self.values[rows], self.fresh[rows], self.actions[rows], self.n_steps[rows])


@dataclass
class MHEResult:
    """Estimated states at the window start and at the present, log-parameters, fit cost
    (per problem, the minimised objective), and LM/Adam iterations used."""

    z_start: SimState
    z_end: SimState
    log_theta: Tensor
    cost: Tensor
    iterations: Tensor


def rollout_window(model: ControlModel, z0: SimState, actions: Tensor, n_steps: Tensor, log_theta: Tensor):
    """States at slots 0..W: identity transitions before the window start, model steps after."""
    W = actions.shape[1]
    start = W - n_steps
    zs, z = [z0], z0
    for k in range(W):
        z = z.where(k >= start, model.step(z, actions[:, k], log_theta))
        zs.append(z)
    return zs


class MovingHorizonEstimator:
    """Batched MHE through a :class:`ControlModel`.

    Args:
        model: the dynamics + measurement model.
        additive_noise, multiplicative_noise: the measurement noise model (normalised units).
        iterations: maximum solver iterations.
        solver: "lm", "adam" or "auto" (LM up to ``lm_max_vars`` unknowns).
        lr: Adam step in log units.
        tol: relative cost decrease for convergence.
        estimate_theta: also fit log theta (with its prior).
        field: how the ligand field at the window start is fitted: "scale" (one log-scale
            factor on the prior's field: the field is weakly observed, and per-pixel freedom
            lets first-order optimisers drift), "full" (every pixel) or "none".
        state_eps: ``eps`` of the log map, relative to each species' typical magnitude
            (``max(mean |x_prior|, 1)``) and, for the field, to its peak (``>= 0.01``).
        jacobian: LM Jacobians by "rows" (replica per residual), "condensed" (one-step
            Jacobians chained through the window; small latents), "forward" (the same by forward
            mode, ``model.step_jacobian``; ODE latents) or "auto" (condensed for small latents,
            by forward mode when the model has ``fast_step_jacobian``).
    """

    def __init__(
        self,
        model: ControlModel,
        additive_noise: float = 0.02,
        multiplicative_noise: float = 0.1,
        iterations: int = 10,
        solver: str = "auto",
        lr: float = 0.05,
        tol: float = 1e-6,
        estimate_theta: bool = False,
        field: str = "scale",
        state_eps: float = 0.01,
        lm_max_vars: int = 64,
        damping: float = 1e-2,
        chunk: int = 256,
        jacobian: str = "auto",
    ) -> None:
        if solver not in ("auto", "lm", "adam"):
            raise ValueError(f"MHE solver must be auto, lm or adam, got {solver!r}")
        if not (additive_noise > 0 or multiplicative_noise > 0):
            raise ValueError(
                "MHE needs a positive measurement noise (additive_noise or multiplicative_noise)"
            )
        if iterations < 0 or lr <= 0 or state_eps <= 0:
            raise ValueError("MHE iterations must be >= 0, lr and state_eps > 0")
        self.model = model
        self.add, self.mult = float(additive_noise), float(multiplicative_noise)
        self.iterations, self.solver, self.lr, self.tol = int(iterations), solver, float(lr), float(tol)
        if field not in ("scale", "full", "none"):
            raise ValueError(f"MHE field must be scale, full or none, got {field!r}")
        self.estimate_theta, self.field = bool(estimate_theta), field
        self.state_eps, self.lm_max_vars = float(state_eps), int(lm_max_vars)
        self.damping, self.chunk = float(damping), int(chunk)
        if jacobian not in JACOBIANS:
            raise ValueError(f"MHE jacobian must be one of {', '.join(JACOBIANS)}, got {jacobian!r}")
        self.jacobian = jacobian

    def _condense(self, prior: SimState, win: MHEWindow) -> bool:
        if self.jacobian != "auto":
            return self.jacobian in ("condensed", "forward")
        if prior.L is not None:  # one-step Jacobians only pay off for ODE latents
            return False
        C, D = win.values.shape[2], state_dim(prior)
        K = sum(self._sizes(prior, len(self.model.param_names)))
        return D + C < win.values.shape[1] * C + K

    # ------------------------------------------------------------------ variables
    def _sizes(self, z: SimState, P: int) -> tuple[int, int, int]:
        nx = z.x[0].numel()
        nL = 0
        if z.L is not None and self.field != "none":
            nL = 1 if self.field == "scale" else z.L[0].numel()
        return nx, nL, P if self.estimate_theta else 0

    def _eps(self, z: SimState) -> tuple[Tensor, Tensor | None]:
        ex = self.state_eps * z.x.abs().mean(1, keepdim=True).clamp_min(1.0)  # (B, 1, S)
        eL = None
        if z.L is not None:
            eL = self.state_eps * z.L.abs().amax((1, 2), keepdim=True).clamp_min(1e-2)
        return ex, eL

    def _decode(self, v: Tensor, prior: SimState, eps, lt_fixed: Tensor):
        nx, nL, nP = self._sizes(prior, lt_fixed.shape[-1])
        ex, eL = eps
        x = ((prior.x + ex) * torch.exp(v[:, :nx].reshape(prior.x.shape)) - ex).clamp_min(FLOOR * ex)
        ub = getattr(self.model, "state_upper_bound", None)
        if ub is not None:
            x = x.clamp_max(ub)
        L = prior.L
        if nL:
            dL = v[:, nx : nx + nL].reshape(-1, 1, 1) if nL == 1 else v[:, nx : nx + nL].reshape(L.shape)
            L = ((L + eL) * torch.exp(dL) - eL).clamp_min(FLOOR * eL)
        lt = v[:, nx + nL :] if nP else lt_fixed
        return SimState(x, L, prior.t), lt

    # ------------------------------------------------------------------ residuals
    def _residuals(self, v, rows, win: MHEWindow, prior: SimState, sigma, eps, lt0, mu, sig_th) -> Tensor:
        """(R, n_res) residuals of problems ``rows`` at variables ``v`` (R, K)."""
        pr = repeat_state(prior, rows)
        z0, lt = self._decode(v, pr, (eps[0][rows], None if eps[1] is None else eps[1][rows]), lt0[rows])
        w = win.index(rows)
        zs = rollout_window(self.model, z0, w.actions, w.n_steps, lt)
        pred = torch.stack([self.model.measure(z) for z in zs], 1)  # (R, W+1, C)
        W = w.actions.shape[1]
        valid = torch.arange(W + 1, device=v.device)[None, :] >= (W - w.n_steps)[:, None]
        use = (w.fresh & valid[:, :, None]).to(v.dtype)
        sy = ((self.mult * w.values) ** 2 + self.add**2).sqrt().clamp_min(1e-6)
        parts = [(use * (w.values - pred) / sy).flatten(1)]
        nx, nL, nP = self._sizes(prior, lt0.shape[-1])
        parts.append(v[:, : nx + nL] / sigma[rows][:, None])
        if nP:
            parts.append((v[:, nx + nL :] - mu) / sig_th)
        return torch.cat(parts, 1)

    def _condensed(self, v, rows, win: MHEWindow, prior: SimState, sigma, eps, lt0, mu, sig_th):
        """Residuals and their Jacobian for problems ``rows`` from one-step Jacobians chained
        through the window (small latents; same residuals as :meth:`_residuals`)."""
        pr = repeat_state(prior, rows)
        ex, eL = eps[0][rows], None if eps[1] is None else eps[1][rows]
        nx, nL, nP = self._sizes(prior, lt0.shape[-1])
        b, K = v.shape
        z0, lt = self._decode(v, pr, (ex, eL), lt0[rows])
        # dz0/dv: diagonal of the log map where not clamped
        dx = (pr.x + ex) * torch.exp(v[:, :nx].reshape(pr.x.shape))
        ub = getattr(self.model, "state_upper_bound", None)
        inside = (dx - ex >= FLOOR * ex) & (True if ub is None else (dx - ex <= ub))  # as clamp's gradient
        diag = [(dx * inside).reshape(b, -1)]
        if nL:
            dL = (pr.L + eL) * torch.exp(v[:, nx : nx + nL].reshape(pr.L.shape))
            diag.append((dL * (dL - eL >= FLOOR * eL)).reshape(b, -1))
        D = state_dim(z0)
        G0 = v.new_zeros(b, D, K)
        G0[:, torch.arange(nx + nL), torch.arange(nx + nL)] = torch.cat(diag, 1)
        w = win.index(rows)
        W = w.actions.shape[1]
        active = torch.arange(W, device=v.device)[None, :] >= (W - w.n_steps)[:, None]
        fast = getattr(self.model, "fast_step_jacobian", False) and self.jacobian == "auto"
        if z0.L is None and (self.jacobian == "forward" or fast):
            lj = local_jacobians_forward(self.model, z0, w.actions, lt, "measure", active, wrt_theta=nP > 0)
        else:
            lj = local_jacobians(self.model, z0, w.actions, lt, self.model.measure, active, wrt_theta=nP > 0)
        J = condense(lj, G0, theta_col=(nx + nL) if nP else None)  # (b, W, C, K)
        _, J0 = batched_jacobian(
            lambda xr, rep: self.model.measure(self._unflat(xr, z0, rep)), flat_state(z0), w.values.shape[2]
        )
        pred = torch.cat([self.model.measure(z0)[:, None], lj.y], 1)  # (b, W+1, C)
        Jm = torch.cat([(J0 @ G0)[:, None], J], 1)
        valid = torch.arange(W + 1, device=v.device)[None, :] >= (W - w.n_steps)[:, None]
        use = (w.fresh & valid[:, :, None]).to(v.dtype)
        sy = ((self.mult * w.values) ** 2 + self.add**2).sqrt().clamp_min(1e-6)
        r = [(use * (w.values - pred) / sy).flatten(1)]
        Jr = [(-(use / sy)[..., None] * Jm).flatten(1, 2)]
        eye = torch.eye(K, dtype=v.dtype, device=v.device)
        r.append(v[:, : nx + nL] / sigma[rows][:, None])
        Jr.append(eye[: nx + nL].expand(b, -1, -1) / sigma[rows][:, None, None])
        if nP:
            r.append((v[:, nx + nL :] - mu) / sig_th)
            Jr.append(eye[nx + nL :].expand(b, -1, -1) / sig_th[:, None])
        return torch.cat(r, 1), torch.cat(Jr, 1)

    @staticmethod
    def _unflat(xr: Tensor, like: SimState, rep: Tensor) -> SimState:
        nx = like.x[0].numel()
        x = xr[:, :nx].reshape(-1, *like.x.shape[1:])
        L = None if like.L is None else xr[:, nx:].reshape(-1, *like.L.shape[1:])
        return SimState(x, L, like.t[rep])

    # ------------------------------------------------------------------ entry point
    def estimate(
        self,
        win: MHEWindow,
        prior: SimState,
        sigma: Tensor,
        log_theta: Tensor,
        theta_mean: Tensor | None = None,
        theta_sigma: Tensor | None = None,
        iterations: int | None = None,
    ) -> MHEResult:
        """Fit the window-start state (and theta) of every problem.

        Args:
            win: measurement windows (B problems).
            prior: (B) prior state at the window start.
            sigma: (B,) arrival-cost standard deviation of the log state deviation.
            log_theta: (B, P) parameters used (fixed), or the start of their fit.
            theta_mean, theta_sigma: (P,) Gaussian regulariser of log theta (default: centred on the
                model's current estimate ``model.theta``, with the prior's sd).
        """
        B, P = prior.batch_size, log_theta.shape[-1]
        if win.values.shape[0] != B or log_theta.shape[0] != B or sigma.shape != (B,):
            raise ValueError("MHE: win, prior, sigma and log_theta must share the batch size")
        theta = self.model.theta
        mu = theta.log_values if theta_mean is None else theta_mean
        sig_th = theta.prior_sd if theta_sigma is None else theta_sigma
        prior = prior.detach()
        eps = self._eps(prior)
        prior = SimState(  # keep species off exact zero, see FLOOR
            prior.x.clamp_min(FLOOR * eps[0]),
            None if prior.L is None else prior.L.clamp_min(FLOOR * eps[1]),
            prior.t,
        )
        nx, nL, nP = self._sizes(prior, P)
        v0 = prior.x.new_zeros(B, nx + nL + nP)
        if nP:
            v0[:, nx + nL :] = log_theta
        K = self.iterations if iterations is None else int(iterations)

        def resid(v, rows):
            return self._residuals(v, rows, win, prior, sigma, eps, log_theta, mu, sig_th)

        use_lm = self.solver == "lm" or (self.solver == "auto" and v0.shape[1] <= self.lm_max_vars)
        if K == 0:
            with torch.no_grad():
                r = resid(v0, torch.arange(B, device=v0.device))
            v, cost, iters = v0, r.pow(2).sum(1), torch.zeros(B, dtype=torch.long, device=v0.device)
        elif use_lm:
            jac = None
            if self._condense(prior, win):

                def jac(x, idx):
                    return self._condensed(x, idx, win, prior, sigma, eps, log_theta, mu, sig_th)

            res = lm_least_squares(resid, v0, K, self.tol, self.damping, self.chunk, jac=jac)
            v, cost, iters = res.x, res.f, res.iterations
        else:
            res = adam_minimize(lambda x, idx: resid(x, idx).pow(2).sum(1), v0, K, self.lr, self.tol, 3)
            v, cost, iters = res.x, res.f, res.iterations
        with torch.no_grad():
            z0, lt = self._decode(v, prior, eps, log_theta)
            zs = rollout_window(self.model, z0, win.actions, win.n_steps, lt)
        return MHEResult(z0.detach(), zs[-1].detach(), lt.detach().clone(), cost.detach(), iters)
