"""Sensitivities, Fisher information, sensitivity reweighting and Laplace uncertainty (Appendix B).

* ``J_k = d h(z_{t_k}) / d log theta``: central finite differences of the model's predicted channels
  in log-parameter space (robust through the ODE solver and the FNO; exact derivatives are not
  needed for weighting and second-order uncertainty).
* Fisher information ``F = sum_k J_k^T Sigma_y^-1 J_k`` over the observed measurements.
* Reweighting: parameters whose Fisher column is weak get more weight on the measurements that are
  informative about them: ``w_kc = 1 + alpha * sum_j rho_j * info_kcj``, with
  ``info_kcj = (J_kcj^2 / sigma_kc^2) / mean_kc(J^2 / sigma^2)_j`` (mean 1 over measurements) and
  ``rho_j`` proportional to ``(max_j n_j / n_j)`` normalised to sum 1, ``n_j = sqrt(F_jj)``.
* Laplace: ``Cov(log theta) = (F + Sigma_prior^-1)^-1`` at the fitted parameters, conditional on the
  network weights (the deep ensemble in :mod:`.ensemble` covers the rest).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .data import EpisodeTensors
from .losses import predict_all, rollout_predictions

__all__ = [
    "sensitivities",
    "point_sensitivities",
    "fisher_information",
    "sensitivity_weights",
    "laplace_covariance",
]


@torch.no_grad()
def sensitivities(model, batch: EpisodeTensors, delta: Tensor, eps: float = 1e-2) -> Tensor:
    """(B, T+1, C, P_free) derivatives of the predicted channels w.r.t. the fitted log-parameters."""
    base = model.log_theta.detach()
    free = model.free_index.tolist()
    E, p = batch.actions.shape[0], len(free)
    steps = torch.zeros(2 * p, base.shape[0], dtype=base.dtype, device=base.device)
    for k, j in enumerate(free):  # rows +eps e_j then -eps e_j, every episode under each, one rollout
        steps[k, j], steps[p + k, j] = eps, -eps
    rows = (base + steps).repeat_interleave(E, 0)
    pred = rollout_predictions(model, batch.actions.repeat(2 * p, 1, 1), delta.repeat(2 * p, 1, 1), rows)
    pred = pred.reshape(2 * p, E, *pred.shape[1:])
    return ((pred[:p] - pred[p:]) / (2 * eps)).permute(1, 2, 3, 0)


@torch.no_grad()
def point_sensitivities(model, batch: EpisodeTensors, delta: Tensor, eps: float = 1e-2) -> Tensor | None:
    """(M, P_free) derivatives of the predicted measurement points (None without points)."""
    if batch.points is None or len(batch.points) == 0:
        return None
    base = model.log_theta.detach()
    cols = []
    for j in model.free_index.tolist():
        e = torch.zeros_like(base)
        e[j] = eps
        hi = predict_all(model, batch.actions, delta, base + e, points=batch.points)[1]
        lo = predict_all(model, batch.actions, delta, base - e, points=batch.points)[1]
        cols.append((hi - lo) / (2 * eps))
    return torch.stack(cols, -1)


def fisher_information(J: Tensor, var: Tensor, mask: Tensor) -> Tensor:
    """(P, P) = sum over observed (episode, time, channel) of J^T J / var."""
    w = torch.where(mask, 1.0 / var, torch.zeros_like(var))[..., None]
    Jw = (J * w.sqrt()).reshape(-1, J.shape[-1])
    return Jw.T @ Jw


def sensitivity_weights(J: Tensor, var: Tensor, mask: Tensor, alpha: float = 1.0) -> Tensor:
    """(B, T+1, C) measurement weights >= 1 emphasising practically weak parameter directions."""
    info = torch.where(mask[..., None], J**2 / var[..., None], torch.zeros_like(J))  # (B,T+1,C,P)
    n_obs = mask.sum().clamp_min(1)
    mean_info = info.sum((0, 1, 2)) / n_obs  # (P,)
    col_norm = (info.sum((0, 1, 2))).sqrt().clamp_min(1e-12)
    rho = col_norm.max() / col_norm
    rho = rho / rho.sum()
    rel = info / mean_info.clamp_min(1e-12)
    return 1.0 + alpha * (rel * rho).sum(-1) * mask


def laplace_covariance(fisher: Tensor, prior_sigma: Tensor) -> Tensor:
    """(P, P) Gauss-Newton Laplace covariance of the fitted log-parameters."""
    prec = fisher + torch.diag(1.0 / prior_sigma**2)
    return torch.linalg.inv(prec.double()).to(fisher.dtype)
