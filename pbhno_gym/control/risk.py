"""Aggregating the costs of an ensemble's members into one planning objective.

Every aggregate is returned with its gradient with respect to the member costs, ``omega``
(B, M). The Adam planner backpropagates the aggregate itself; the Gauss-Newton planner uses
``omega`` as per-member residual weights (iteratively reweighted least squares), which is the
exact gradient of the aggregate at the current plan, and accepts steps on the true aggregate.

* ``mean``: ``sum_m w_m c_m`` (w: member weights, uniform or posterior).
* ``mean_std``: ``mean + k * std`` (weighted), a variance-penalised, risk-averse cost.
* ``cvar``: the weighted mean of the worst ``alpha`` fraction of members (conditional value at
  risk); ``alpha = 1`` is the mean.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["RISKS", "aggregate_costs"]

RISKS = ("mean", "mean_std", "cvar")


def aggregate_costs(
    costs: Tensor, weights: Tensor | None = None, risk: str = "mean", k: float = 1.0, alpha: float = 0.3
) -> tuple[Tensor, Tensor]:
    """(B,) aggregate of member costs (B, M) and its gradient ``omega`` (B, M) (detached).

    Args:
        costs: member costs.
        weights: (B, M) non-negative member weights summing to 1 (None: uniform).
        risk: "mean", "mean_std" or "cvar".
        k: std multiplier of "mean_std".
        alpha: tail fraction of "cvar", in (0, 1].
    """
    if risk not in RISKS:
        raise ValueError(f"risk must be one of {', '.join(RISKS)}, got {risk!r}")
    B, M = costs.shape
    w = costs.new_full((B, M), 1.0 / M) if weights is None else weights.to(costs.dtype)
    mean = (w * costs).sum(1)
    if risk == "mean" or M == 1:
        return mean, w.detach()
    if risk == "mean_std":
        dev = costs - mean[:, None]
        std = ((w * dev**2).sum(1) + 1e-30).sqrt()
        omega = w * (1 + k * dev / std[:, None])
        return mean + k * std, omega.detach()
    if not 0 < alpha <= 1:
        raise ValueError(f"cvar alpha must be in (0, 1], got {alpha}")
    order = torch.argsort(costs.detach(), 1, descending=True)
    ws = w.gather(1, order)
    before = ws.cumsum(1) - ws
    take = (alpha - before).clamp_min(0).minimum(ws) / alpha  # weight of each sorted member
    omega = torch.zeros_like(w).scatter(1, order, take)
    return (omega * costs).sum(1), omega.detach()
