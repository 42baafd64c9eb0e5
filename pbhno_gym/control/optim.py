"""Batched optimisers for many independent small problems (planning, estimation).

Both keep per-problem state and convergence; problems that have converged leave the active
batch, so each problem's iterates are those it would have alone (up to BLAS round-off).

* :func:`adam_minimize`: Adam on a per-problem cost, optionally projected after each step
  (the projected gradient method of Algorithm 2), best iterate kept.
* :func:`lm_least_squares`: Levenberg-Marquardt on per-problem residual vectors with
  Jacobians from :func:`.jacobian.batched_jacobian`, Marquardt scaling, gain-ratio damping
  update (Nielsen), and a step accepted only when it lowers the sum of squares.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .jacobian import batched_jacobian

__all__ = ["OptResult", "adam_minimize", "lm_least_squares", "lm_update"]


@dataclass
class OptResult:
    """x (B, ...) best point, f (B,) its cost, iterations (B,), converged (B,), history
    ((iterations + 1, B) best cost per iteration, or None)."""

    x: Tensor
    f: Tensor
    iterations: Tensor
    converged: Tensor
    history: Tensor | None = None


def _pad_history(hist: list[Tensor] | None, n: int, last: Tensor) -> Tensor | None:
    if hist is None:
        return None
    while len(hist) < n:
        hist.append(last.clone())
    return torch.stack(hist)


def adam_minimize(
    fn: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    iterations: int,
    lr: float,
    tol: float = 1e-4,
    patience: int = 5,
    project: Callable[[Tensor, Tensor], Tensor] | None = None,
    history: bool = False,
) -> OptResult:
    """Minimise ``fn(x, idx) -> (len(idx),)`` per problem with (projected) Adam.

    ``idx`` are the indices of the problems in ``x`` (the active ones); ``project(x, idx)``
    maps iterates back to the feasible set. A problem stops when its best cost has not dropped
    by a relative ``tol`` for ``patience`` consecutive iterations.
    """
    B = x0.shape[0]
    dev = x0.device
    b1, b2, eps = 0.9, 0.999, 1e-8
    x = x0.detach().clone()
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    best_x, best = x.clone(), torch.full((B,), math.inf, dtype=x.dtype, device=dev)
    stall = torch.zeros(B, dtype=torch.long, device=dev)
    iters = torch.zeros(B, dtype=torch.long, device=dev)
    conv = torch.zeros(B, dtype=torch.bool, device=dev)
    shape = (-1,) + (1,) * (x.ndim - 1)
    hist = [] if history else None
    for it in range(iterations + 1):
        act = (~conv).nonzero().flatten()
        if len(act) == 0:
            break
        xa = x[act].requires_grad_(True)
        with torch.enable_grad():
            f = fn(xa, act)
            (grad,) = torch.autograd.grad(f.sum(), xa)
        f = f.detach()
        grad = torch.nan_to_num(grad, 0.0, 0.0, 0.0)  # inf*0 at exactly-zero species, see .jacobian
        improved = f < best[act]
        better = (best[act] - f) > tol * f.abs()
        best_x[act] = torch.where(improved.view(shape), xa.detach(), best_x[act])
        best[act] = torch.where(improved, f, best[act])
        stall[act] = torch.where(better, torch.zeros_like(stall[act]), stall[act] + 1)
        if hist is not None:
            hist.append(best.clone())
        if it == iterations:
            break
        done = stall[act] >= patience
        conv[act] = done
        keep = ~done
        go = act[keep]
        if len(go) == 0:
            break
        g = grad[keep]
        n = (iters[go] + 1).to(x.dtype).view(shape)
        m[go] = b1 * m[go] + (1 - b1) * g
        v[go] = b2 * v[go] + (1 - b2) * g * g
        upd = (m[go] / (1 - b1**n)) / ((v[go] / (1 - b2**n)).sqrt() + eps)
        xn = x[go] - lr * upd
        x[go] = project(xn, go) if project is not None else xn
        iters[go] += 1
    return OptResult(best_x, best, iters, conv, _pad_history(hist, iterations + 1, best))


def lm_update(lam: Tensor, gain: Tensor, pred: Tensor) -> tuple[Tensor, Tensor]:
    """Accept mask and new damping from actual vs predicted decrease (Nielsen's rule)."""
    ok = gain > 0
    rho = gain / pred.clamp_min(1e-300)
    new = torch.where(ok, lam * torch.clamp(1 - (2 * rho - 1) ** 3, min=1 / 3, max=1.0), lam * 10)
    return ok, new.clamp(1e-12, 1e12)


def _lm_system(r: Tensor, J: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r64, J64 = r.double(), J.double()
    return r64.pow(2).sum(1), torch.einsum("brk,br->bk", J64, r64), torch.einsum("brk,brl->bkl", J64, J64)


def lm_least_squares(
    fn: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    iterations: int,
    tol: float = 1e-6,
    damping: float = 1e-3,
    chunk: int = 256,
    history: bool = False,
    jac: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
) -> OptResult:
    """Minimise ``||fn(x, rep)||^2`` per problem by Levenberg-Marquardt.

    Args:
        fn: residuals ``fn(x_rows (R, K), rep (R,)) -> (R, n_res)``, ``rep`` the problem of
            each row (rows may repeat a problem; see :func:`.jacobian.batched_jacobian`).
        x0: (B, K) start.
        iterations: maximum LM steps.
        tol: stop when an accepted step lowers the cost by less than ``tol`` relative.
        jac: optional ``jac(x (b, K), idx (b,)) -> (residuals, Jacobians)`` for problems
            ``idx``, replacing the replicated reverse mode over ``fn``'s rows.
    """
    B, K = x0.shape
    dev = x0.device
    if jac is None:
        n_res = fn(x0[:1].detach(), torch.zeros(1, dtype=torch.long, device=dev)).shape[1]

        def jac(xs: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
            return batched_jacobian(lambda xr, rep: fn(xr, idx[rep]), xs, n_res, chunk)

    x = x0.detach().clone()
    with torch.no_grad():
        r, J = jac(x, torch.arange(B, device=dev))
    f, g, H = _lm_system(r, J)
    lam = torch.full((B,), damping, dtype=torch.float64, device=dev)
    iters = torch.zeros(B, dtype=torch.long, device=dev)
    conv = torch.zeros(B, dtype=torch.bool, device=dev)
    hist = [f.clone()] if history else None
    for _ in range(iterations):
        act = (~conv).nonzero().flatten()
        if len(act) == 0:
            break
        Ha, ga, la = H[act], g[act], lam[act]
        d = torch.diagonal(Ha, dim1=1, dim2=2)
        # Gauss-Newton decrement g H^-1 g / 2: what the undamped model still promises
        L0, info0 = torch.linalg.cholesky_ex(Ha + torch.diag_embed(1e-9 * d + 1e-12))
        dec = 0.5 * (ga * torch.cholesky_solve(ga[..., None], L0)[..., 0]).sum(1)
        at_opt = (info0 == 0) & (dec <= tol * f[act] + 1e-14)
        if bool(at_opt.any()):
            conv[act[at_opt]] = True
            keep = ~at_opt
            act, Ha, ga, la, d = act[keep], Ha[keep], ga[keep], la[keep], d[keep]
            if len(act) == 0:
                break
        A = Ha + torch.diag_embed(la[:, None] * (d + 1e-9))
        L, info = torch.linalg.cholesky_ex(A)
        step = torch.cholesky_solve(-ga[..., None], L)[..., 0]
        step = torch.where((info != 0)[:, None], -ga / (la[:, None] * (d + 1e-9) + 1e-12), step)
        x_try = x[act] + step.to(x.dtype)
        finite = torch.isfinite(x_try).all(1)
        x_try = torch.where(finite[:, None], x_try, x[act])
        with torch.no_grad():
            r_t, J_t = jac(x_try, act)
        f_t, g_t, H_t = _lm_system(r_t, J_t)
        finite = finite & torch.isfinite(f_t) & torch.isfinite(H_t).flatten(1).all(1)
        f_t = torch.where(finite, f_t, torch.full_like(f_t, math.inf))  # a blown-up trial is rejected
        pred = -(ga * step).sum(1) - 0.5 * torch.einsum("bk,bkl,bl->b", step, Ha, step)
        gain = f[act] - f_t
        ok, lam[act] = lm_update(la, gain, pred)
        ok = ok & finite
        small = gain <= tol * f[act] + 1e-14
        conv[act] = (ok & small) | (~ok & (lam[act] >= 1e10)) | (pred.abs() <= 1e-14)
        acc = act[ok]
        x[acc], f[acc], g[acc], H[acc] = x_try[ok], f_t[ok], g_t[ok], H_t[ok]
        iters[act] += 1
        if hist is not None:
            hist.append(f.clone())
    return OptResult(x, f.to(x.dtype), iters, conv, _pad_history(hist, iterations + 1, f))
