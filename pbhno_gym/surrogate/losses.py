"""The PB-HNO training objective (paper eq. 7), one term per line so each can be switched off.

Per minibatch of episodes, with the model rolled out from estimated initial states:

    L = [ lam_y  * sum_obs r^2 / 2           (measurement misfit, observed channels and times only)
        + lam_sens * sum_obs (w - 1) r^2 / 2  (Appendix B sensitivity reweighting)
        + lam_init * sum delta^2 / (2 s0^2)   (initial-state offsets under the cell-variability prior)
        ] * (E / B) / N_obs
      + lam_theta * ||log theta - mu||^2_{Sigma^-1} / 2 / N_obs   (log-normal prior, Sigma = 0.5^2)
      + lam_pde * mean ||L' - ETD_theta(L)||^2 / L_scale^2       (eq. 1 residual of each field step)
      + lam_ode * mean ||f_psi - f_mech||^2 / (x_scale / dt)^2   (ODE residual = the learned correction)
      + lam_op  * (||A - A_geom||^2 + ||B - Phi_phys||^2)         (coupling regulariser, eq. 6)
      + lam_orth * mean ||P_G c||^2 / (x_scale / dt)^2            (anti-absorption, off by default)

where, in the last term, ``c`` is the learned correction at every state of the minibatch's
rollouts and ``P_G`` the least-squares projection onto the span of the skeleton's sensitivities
``G_j = d f_mech / d log theta_j`` at the same states: the part of the correction that a change of
theta could produce instead. Penalising it keeps the networks from absorbing what the parameters
explain (:func:`orthogonal_part`).

with ``r = (h(z_t) - y_t) / sigma_t``, over grid measurements and measurement points (off-grid
times and replicates, :func:`predict_all`). The bracket is a minibatch estimate of the negative log
posterior per observation, so at ``lam_pde = lam_ode = lam_op = 0`` the minimiser is the MAP
estimate and the Laplace covariance of :mod:`.fisher` is on the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..physics.simulator import SimState
from .data import EpisodeTensors, PointTensors

__all__ = ["LossWeights", "rollout_predictions", "predict_all", "objective", "absorbed_part"]


@dataclass
class LossWeights:
    """lambda of each term (Table II: lam_PDE = lam_ODE = 1). 0 switches a term off."""

    y: float = 1.0
    pde: float = 1.0
    ode: float = 1.0
    theta: float = 1.0
    op: float = 1.0
    sens: float = 1.0
    init: float = 1.0
    orth: float = 0.0


def rollout_predictions(
    model, actions: Tensor, delta: Tensor, log_theta: Tensor | None = None, aux: dict | None = None
) -> Tensor:
    """Predicted channels (B, T+1, C) from the estimated initial states ``x0 * exp(delta)``."""
    return predict_all(model, actions, delta, log_theta, aux)[0]


def predict_all(
    model,
    actions: Tensor,
    delta: Tensor,
    log_theta: Tensor | None = None,
    aux: dict | None = None,
    points: PointTensors | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Grid predictions (B, T+1, C) and, with ``points``, those of the points (M,): the state at
    each point's interval start advanced by its duration under that interval's control, all
    points in one batched partial :meth:`PBHNO.step` (no loop over measurements)."""
    B, T, _ = actions.shape
    z = model.initial_state(B, log_theta)
    z = SimState(z.x * torch.exp(delta), z.L, z.t)
    preds, xs, Ls = [model.measure(z)], [z.x], [z.L]
    for t in range(T):
        z = model.step(z, actions[:, t], log_theta, aux=aux)
        preds.append(model.measure(z))
        if points is not None:
            xs.append(z.x)
            Ls.append(z.L)
    grid = torch.stack(preds, 1)
    if points is None or len(points) == 0:
        return grid, None
    ep, k = points.ep, points.step
    x = torch.stack(xs, 1)[ep, k]
    L = None if Ls[0] is None else torch.stack(Ls, 1)[ep, k]
    lt = log_theta[ep] if log_theta is not None and log_theta.dim() == 2 else log_theta
    zp = model.step(SimState(x, L, torch.zeros_like(points.dur)), actions[ep, k], lt, duration=points.dur)
    return grid, model.measure(zp)[torch.arange(len(ep), device=ep.device), points.chan]


def absorbed_part(corr: Tensor, sens: Tensor, ridge: float = 1e-6) -> Tensor:
    """The mean square of the correction's projection onto the sensitivities' span.

    ``corr`` (..., S) learned correction values, ``sens`` (..., S, p) the skeleton's rate
    sensitivities at the same states (both in the same units); the projection is over all entries
    jointly (function space over the rollout), the sensitivities held fixed (detached)."""
    c = corr.reshape(-1)
    G = sens.detach().reshape(-1, sens.shape[-1])
    scale = G.pow(2).mean(0).sqrt().clamp_min(1e-12)
    Gn = G / scale
    gram = Gn.T @ Gn + ridge * len(c) * torch.eye(Gn.shape[1], dtype=Gn.dtype, device=Gn.device)
    beta = torch.linalg.solve(gram, Gn.T @ c)
    return (Gn @ beta).pow(2).mean()


def objective(
    model,
    batch: EpisodeTensors,
    delta: Tensor,
    n_total: int,
    n_obs_total: float,
    w: LossWeights,
    init_sd: float,
    sens_w: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The scalar loss of a minibatch and its terms (as floats, for logging)."""
    aux: dict = {"orth": w.orth > 0}
    pred, pt = predict_all(model, batch.actions, delta, aux=aux, points=batch.points)
    r2 = torch.where(batch.mask, (pred - batch.y) ** 2 / batch.var, torch.zeros_like(pred))
    r2_pts = pred.new_zeros(()) if pt is None else ((pt - batch.points.y) ** 2 / batch.points.var).sum()
    scale = (n_total / batch.n_episodes) / n_obs_total
    terms: dict[str, Tensor] = {"y": 0.5 * (r2.sum() + r2_pts) * scale}
    if sens_w is not None and w.sens > 0:  # grid measurements only (points keep weight 1)
        terms["sens"] = 0.5 * ((sens_w - 1) * r2).sum() * scale
    if w.init > 0 and init_sd > 0:
        terms["init"] = 0.5 * (delta**2).sum() / init_sd**2 * scale
    z = (model.log_theta - model.prior_mean) / model.prior_sigma
    terms["theta"] = 0.5 * (z**2).sum() / n_obs_total
    zero = pred.new_zeros(())
    terms["pde"] = torch.stack(aux["pde"]).mean() if "pde" in aux else zero
    terms["ode"] = torch.stack(aux["ode"]).mean() if "ode" in aux else zero
    op = torch.stack(aux["op"]).mean() if "op" in aux else zero
    if model.has_field:
        op = op + model.averaging.regularizer()
    terms["op"] = op
    if "corr" in aux:
        terms["orth"] = absorbed_part(torch.stack(aux["corr"]), torch.stack(aux["sens"]))
    total = sum(getattr(w, k) * v for k, v in terms.items())
    logs = {k: float(v.detach()) for k, v in terms.items()}
    logs["rmse_sigma"] = float(((r2.sum() + r2_pts) / max(batch.n_obs, 1)).sqrt().detach())
    return total, logs
