"""Exact Euclidean projection of control schedules onto the admissible set.

The admissible set of a schedule ``U`` (B, T, n_u) is, per environment and control channel,
the box ``low <= u_t <= high`` intersected with the remaining cumulative dose
``sum_t u_t * dt <= dose_left`` (a box-capped simplex). Projecting (instead of squashing the
controls through a sigmoid) keeps the planner exact on active bounds: a projected-gradient or
projected-Newton step can land on a bound and stay there.

The KKT conditions give ``v_t = clip(u_t - mu, low, high)`` with one multiplier ``mu >= 0`` per
channel: ``mu = 0`` if the clipped schedule is within the dose, otherwise the root of the
non-increasing, piecewise-linear ``h(mu) = sum_t clip(u_t - mu, low, high) = dose_left / dt``.
Its kinks are at ``u_t - high`` and ``u_t - low``; we evaluate ``h`` at every kink (batched,
O(T^2) per channel, no iteration), pick the segment that brackets the root, and interpolate,
which is exact because ``h`` is linear on it. No Python loops over environments or steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["project_schedule", "is_feasible"]


def _per_channel(v: Tensor | float, B: int, n: int, like: Tensor, name: str) -> Tensor:
    """(B, n) view of a scalar, (n,) or (B, n) bound."""
    t = torch.as_tensor(v, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(n)
    if t.ndim == 1:
        if t.shape[0] != n:
            raise ValueError(f"{name} must have {n} channels, got shape {tuple(t.shape)}")
        t = t.expand(B, n)
    if t.shape != (B, n):
        raise ValueError(f"{name} must be a scalar, ({n},) or ({B}, {n}), got {tuple(t.shape)}")
    return t


def project_schedule(
    U: Tensor,
    low: Tensor | float,
    high: Tensor | float,
    dose_left: Tensor | float | None = None,
    dt: float = 1.0,
) -> Tensor:
    """Euclidean projection of ``U`` (B, T, n_u) onto box ∩ cumulative-dose set, per channel.

    Args:
        U: schedules to project (not modified).
        low, high: box bounds, scalar, (n_u,) or (B, n_u).
        dose_left: remaining dose per channel (rate x time units), scalar, (n_u,) or (B, n_u);
            ``inf`` or None means unlimited. A dose below ``T * low * dt`` cannot be met: the
            result is then ``low`` (the admissible point of least dose).
        dt: duration of one schedule step.
    Returns:
        (B, T, n_u) projected schedule: feasible, and the closest feasible schedule to ``U``.
    """
    if U.ndim != 3:
        raise ValueError(f"U must have shape (B, T, n_u), got {tuple(U.shape)}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    B, T, n = U.shape
    lo = _per_channel(low, B, n, U, "low")[:, :, None]  # (B, n, 1)
    hi = _per_channel(high, B, n, U, "high")[:, :, None]
    if bool((hi < lo).any()):
        raise ValueError("high must be >= low in every channel")
    u = U.transpose(1, 2)  # (B, n, T)
    box = torch.minimum(torch.maximum(u, lo), hi)
    if dose_left is None:
        return box.transpose(1, 2).contiguous()
    cap = _per_channel(dose_left, B, n, U, "dose_left") / dt  # (B, n) in rate x steps
    need = box.sum(-1) > cap
    if not bool(need.any()):
        return box.transpose(1, 2).contiguous()
    cap_f = torch.where(torch.isfinite(cap), cap, torch.zeros_like(cap))
    # kinks of h(mu) at mu >= 0, plus mu = 0, sorted: h is linear between neighbours
    kinks = torch.cat([u - hi, u - lo, torch.zeros_like(u[..., :1])], -1).clamp_min(0)
    kinks = torch.sort(kinks, -1).values  # (B, n, 2T+1)
    h = torch.minimum(torch.maximum(u[..., None, :] - kinks[..., :, None], lo[..., None]), hi[..., None])
    h = h.sum(-1)  # (B, n, 2T+1), non-increasing in mu
    k = (h > cap_f[..., None]).sum(-1, keepdim=True)  # first kink with h <= cap
    k_hi = k.clamp(1, 2 * T)
    m0, m1 = kinks.gather(-1, k_hi - 1), kinks.gather(-1, k_hi)
    h0, h1 = h.gather(-1, k_hi - 1), h.gather(-1, k_hi)
    frac = ((h0 - cap_f[..., None]) / (h0 - h1).clamp_min(torch.finfo(U.dtype).tiny)).clamp(0, 1)
    mu = m0 + frac * (m1 - m0)  # (B, n, 1)
    proj = torch.minimum(torch.maximum(u - mu, lo), hi)
    infeasible = (cap_f < T * lo[..., 0])[..., None]
    proj = torch.where(infeasible, lo.expand_as(proj), proj)
    out = torch.where(need[..., None], proj, box)
    return out.transpose(1, 2).contiguous()


def is_feasible(
    U: Tensor,
    low: Tensor | float,
    high: Tensor | float,
    dose_left: Tensor | float | None = None,
    dt: float = 1.0,
    atol: float = 1e-6,
) -> Tensor:
    """(B,) bool: every step within the box and every channel within its dose (to ``atol``)."""
    B, T, n = U.shape
    lo = _per_channel(low, B, n, U, "low")[:, None]
    hi = _per_channel(high, B, n, U, "high")[:, None]
    ok = ((U >= lo - atol) & (U <= hi + atol)).flatten(1).all(1)
    if dose_left is not None:
        cap = _per_channel(dose_left, B, n, U, "dose_left")
        scale = cap.abs().clamp_min(1.0)
        ok = ok & (U.sum(1) * dt <= cap + atol * scale).all(1)
    return ok
