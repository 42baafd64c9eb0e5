"""Per-problem Jacobians of batched residual functions, by reverse mode on a replicated batch.

A planner or estimator solves B independent problems at once; the Jacobian it needs is the
block diagonal of the full one, ``J_b = d r_b / d x_b``. Each problem is replicated once per
residual row, every replica backpropagates its own row (a one-hot cotangent), and one backward
pass through the replicated batch yields all blocks. This is the ``torch.func.vmap(vjp)``
construction written as a plain batch: it runs through any batched ``ControlModel`` (no vmap
support needed, e.g. data-dependent substep counts) and costs one forward + backward at batch
``B * rows``. Rows are processed in chunks to bound memory.

For small latents (ODE pathways) the one-step Jacobians can instead come from forward mode
(:func:`local_jacobians_forward`): one tangent per input column, *shared* by all problems
(problem b's output tangent is ``J_b e_k`` because rows are independent), so a step and its
Jacobian are one ``torch.func.jacfwd`` call at batch B, with no replicas, no autograd graph and no
backward pass. A model may supply that call compiled (:meth:`ControlModel.step_jacobian`).

Non-finite derivative entries are set to zero: the simulator's Patankar weights
``dest / x.clamp_min(tiny)`` have an ``inf * 0`` derivative at species that are exactly zero
(e.g. MAPK at rest), although the true one-sided derivative is finite. Zeroing them only loses
sensitivity through those exact zeros, for one step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..physics.simulator import SimState

__all__ = [
    "batched_jacobian",
    "local_jacobians",
    "local_jacobians_forward",
    "step_jacobian",
    "condense",
    "LocalJacobians",
    "flat_state",
    "state_dim",
    "JACOBIANS",
]

#: Jacobian modes of the planner and the estimator: replicated reverse rows, one-step Jacobians by
#: replicated reverse mode ("condensed") or by shared-tangent forward mode ("forward"), or "auto".
JACOBIANS = ("auto", "rows", "condensed", "forward")


def batched_jacobian(
    fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, n_out: int, chunk: int = 256
) -> tuple[Tensor, Tensor]:
    """Values and per-problem Jacobians of ``fn``.

    Args:
        fn: ``fn(x_rep, rep) -> (len(rep), n_out)`` where ``x_rep`` (R, K) holds inputs of the
            problems ``rep`` (R,) (problem index of each row); row i of the output may depend
            only on ``x_rep[i]`` and problem ``rep[i]``'s data.
        x: (B, K) inputs.
        n_out: number of outputs per problem.
        chunk: output rows per backward pass.
    Returns:
        ``fn(x)`` (B, n_out) and the Jacobians (B, n_out, K), detached.
    """
    if x.ndim != 2:
        raise ValueError(f"x must have shape (B, K), got {tuple(x.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    B, K = x.shape
    J = x.new_empty(B, n_out, K)
    value = None
    idx = torch.arange(B, device=x.device)
    for c0 in range(0, n_out, chunk):
        c = min(chunk, n_out - c0)
        rep = idx.repeat_interleave(c)
        xr = x.detach()[rep].requires_grad_(True)
        with torch.enable_grad():
            out = fn(xr, rep).reshape(B, c, n_out)
            sel = torch.zeros(c, n_out, dtype=out.dtype, device=out.device)
            sel[torch.arange(c), c0 + torch.arange(c)] = 1
            (grad,) = torch.autograd.grad((out * sel).sum(), xr, allow_unused=True)
        J[:, c0 : c0 + c] = 0 if grad is None else torch.nan_to_num(grad, 0.0, 0.0, 0.0).reshape(B, c, K)
        if value is None:
            value = out[:, 0].detach()
    if value is None:  # n_out == 0
        value = x.new_zeros(B, 0)
    return value, J


def flat_state(z: SimState) -> Tensor:
    """(B, D) latent as one vector per problem: cell species, then the field (if any)."""
    B = z.batch_size
    return z.x.reshape(B, -1) if z.L is None else torch.cat([z.x.reshape(B, -1), z.L.reshape(B, -1)], 1)


def state_dim(z: SimState) -> int:
    return z.x[0].numel() + (0 if z.L is None else z.L[0].numel())


@dataclass
class LocalJacobians:
    """Rollout ``z_{t+1} = f(z_t, u_t, theta)`` (optionally frozen where ``active`` is false)
    with outputs ``y_{t+1} = g(z_{t+1})`` and their one-step Jacobians (all detached).

    Attributes:
        z: states z_0..z_T (B rows each).
        y: (B, T, Ny) outputs of z_1..z_T.
        A: (B, T, D, D) dz_{t+1}/dz_t;  Bu: (B, T, D, n_u) dz_{t+1}/du_t;
        Bth: (B, T, D, P) dz_{t+1}/dtheta or None;
        Yz, Yu, Yth: the same for y_{t+1} (Ny rows).
    """

    z: list[SimState]
    y: Tensor
    A: Tensor
    Bu: Tensor
    Bth: Tensor | None
    Yz: Tensor
    Yu: Tensor
    Yth: Tensor | None


def local_jacobians(
    model,
    z0: SimState,
    U: Tensor,
    log_theta: Tensor,
    output: Callable[[SimState], Tensor],
    active: Tensor | None = None,
    wrt_theta: bool = False,
) -> LocalJacobians:
    """One-step Jacobians along a rollout, for latents small enough to replicate (ODE pathways).

    Every step starts from fresh leaves replicated ``D + Ny`` times per problem (one replica
    per row of ``[z_{t+1}; y_{t+1}]``); all steps' graphs are summed with one-hot row
    selectors and differentiated by ONE backward pass, so the cost is one rollout forward and
    backward at batch ``B (D + Ny)`` whatever the horizon, instead of ``B T Ny`` replicas for
    whole-trajectory rows. :func:`condense` turns them into trajectory Jacobians.

    Args:
        model: a :class:`ControlModel`.
        z0: (B) start; U: (B, T, n_u) controls; log_theta: (B, P).
        output: ``g`` (e.g. ``model.phenotype`` or ``model.measure``).
        active: (B, T) bool; False freezes the state over that step (MHE padding).
        wrt_theta: also differentiate with respect to log theta.
    """
    B, T, n_u = U.shape
    D = state_dim(z0)
    with torch.no_grad():
        Ny = output(z0).shape[1]
    R = D + Ny
    rep = torch.arange(B, device=U.device).repeat_interleave(R)
    sel = torch.eye(R, dtype=U.dtype, device=U.device).repeat(B, 1)  # (B*R, R)
    lt_rep = log_theta.detach()[rep]
    leaves, ys, zs, total = [], [], [z0], 0.0
    z = z0
    with torch.enable_grad():
        for t in range(T):
            x = z.x.detach()[rep].requires_grad_(True)
            L = None if z.L is None else z.L.detach()[rep].requires_grad_(True)
            u = U[:, t].detach()[rep].requires_grad_(True)
            th = lt_rep.clone().requires_grad_(True) if wrt_theta else lt_rep
            zl = SimState(x, L, z.t[rep])
            zn = model.step(zl, u, th)
            if active is not None:
                zn = zl.where(active[rep, t], zn)
            y = output(zn)
            total = total + (torch.cat([flat_state(zn), y], 1) * sel).sum()
            leaves.append((x, L, u, th))
            ys.append(y.detach()[::R])
            z = SimState(zn.x.detach()[::R], None if zn.L is None else zn.L.detach()[::R], zn.t.detach()[::R])
            zs.append(z)
        flat_leaves = [a for lv in leaves for a in lv if a is not None and a.requires_grad]
        grads = iter(torch.autograd.grad(total, flat_leaves, allow_unused=True))
    Jz, Ju, Jth = [], [], []
    for x, L, _u, th in leaves:
        gx = next(grads)
        gz = [torch.zeros_like(x) if gx is None else gx]
        if L is not None:
            gL = next(grads)
            gz.append(torch.zeros_like(L) if gL is None else gL)
        Jz.append(torch.cat([g.reshape(B, R, -1) for g in gz], 2))
        gu = next(grads)
        Ju.append((torch.zeros_like(_u) if gu is None else gu).reshape(B, R, n_u))
        if wrt_theta:
            gt = next(grads)
            Jth.append((torch.zeros_like(th) if gt is None else gt).reshape(B, R, -1))
    fin = lambda a: torch.nan_to_num(a, 0.0, 0.0, 0.0)  # noqa: E731 - see the module docstring
    Jz, Ju = fin(torch.stack(Jz, 1)), fin(torch.stack(Ju, 1))  # (B, T, R, D), (B, T, R, n_u)
    Jt = fin(torch.stack(Jth, 1)) if wrt_theta else None
    return LocalJacobians(
        zs,
        torch.stack(ys, 1),
        Jz[:, :, :D],
        Ju[:, :, :D],
        None if Jt is None else Jt[:, :, :D],
        Jz[:, :, D:],
        Ju[:, :, D:],
        None if Jt is None else Jt[:, :, D:],
    )


def step_jacobian(
    model,
    x: Tensor,
    t: Tensor,
    u: Tensor,
    log_theta: Tensor,
    active: Tensor,
    output: str,
    wrt_theta: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One ODE step with its Jacobians by forward mode, tangents shared across the batch.

    Args:
        model: a :class:`ControlModel` of an ODE pathway (no field).
        x: (B, N, S) species; t: (B,) time; u: (B, n_u); log_theta: (B, P).
        active: (B,) bool; False keeps the state (an identity transition, MHE padding).
        output: name of the model's output map, "phenotype" or "measure".
        wrt_theta: also differentiate with respect to log theta.
    Returns:
        ``x_next`` (B, N, S), ``y_next`` (B, Ny), ``t_next`` (B,) and the Jacobian of
        ``[x_next; y_next]`` (flattened, B, D + Ny) with respect to ``[x; u; log theta]``
        (B, D + Ny, D + n_u (+ P)), non-finite entries zeroed (see the module docstring).
    """
    B = x.shape[0]
    D, n_u = x[0].numel(), u.shape[1]
    out_fn = getattr(model, output)

    def f(v: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        xv = x + v[:D].reshape(x.shape[1:])
        uv = u + v[D : D + n_u]
        lv = log_theta + v[D + n_u :] if wrt_theta else log_theta
        z = SimState(xv, None, t)
        zn = z.where(active, model.step(z, uv, lv))
        flat = torch.cat([zn.x.reshape(B, -1), out_fn(zn)], 1)
        return flat, (flat, zn.t)

    K = D + n_u + (log_theta.shape[1] if wrt_theta else 0)
    J, (flat, t1) = torch.func.jacfwd(f, has_aux=True)(x.new_zeros(K))
    J = torch.nan_to_num(J, 0.0, 0.0, 0.0)
    return flat[:, :D].reshape(x.shape).contiguous(), flat[:, D:].contiguous(), t1, J


def local_jacobians_forward(
    model,
    z0: SimState,
    U: Tensor,
    log_theta: Tensor,
    output: str,
    active: Tensor | None = None,
    wrt_theta: bool = False,
) -> LocalJacobians:
    """:func:`local_jacobians` by forward mode (ODE latents only): T calls of
    ``model.step_jacobian`` (:func:`step_jacobian`, or a compiled version of it) at batch B,
    no replicas and no backward pass. ``output`` names the output map ("phenotype" or
    "measure"); ``active`` (B, T) as in :func:`local_jacobians`."""
    if z0.L is not None:
        raise ValueError("local_jacobians_forward: ODE latents only (the state has a field)")
    B, T, n_u = U.shape
    D = state_dim(z0)
    lt = log_theta.detach().expand(B, -1)
    if active is None:
        active = torch.ones(B, T, dtype=torch.bool, device=U.device)
    x, t = z0.x.detach(), z0.t.detach()
    zs, ys, Js = [z0], [], []
    for u_k, a_k in zip(U.detach().unbind(1), active.unbind(1), strict=True):
        x, y, t, J = model.step_jacobian(x, t, u_k, lt, a_k, output, wrt_theta)
        zs.append(SimState(x, None, t))
        ys.append(y)
        Js.append(J)
    J = torch.stack(Js, 1)  # (B, T, D + Ny, K)
    u, th = slice(D, D + n_u), slice(D + n_u, None)
    return LocalJacobians(
        zs,
        torch.stack(ys, 1),
        J[:, :, :D, :D],
        J[:, :, :D, u],
        J[:, :, :D, th] if wrt_theta else None,
        J[:, :, D:, :D],
        J[:, :, D:, u],
        J[:, :, D:, th] if wrt_theta else None,
    )


def condense(lj: LocalJacobians, G0: Tensor, u_cols: bool = False, theta_col: int | None = None) -> Tensor:
    """Trajectory Jacobians ``dy_{t+1}/dv`` (B, T, Ny, K) by the chain rule through the steps.

    Args:
        lj: one-step Jacobians.
        G0: (B, D, K) ``dz_0/dv``.
        u_cols: the first ``T n_u`` columns of v are the controls ``u_0..u_{T-1}``.
        theta_col: v's log theta starts at this column (needs ``wrt_theta``).

    The direct inputs of every step (``Bu``, ``Bth``; ``Yu``, ``Yth`` for the outputs) are placed
    in their columns once for all steps, so the recursion ``G_{t+1} = A_t G_t + E_t`` is one fused
    ``baddbmm`` per step and the outputs one batched matmul after it (at batch 1 each small op
    costs microseconds of dispatch: the per-step form took 1.2 ms of a ~3 ms MAPK Gauss-Newton
    evaluation, this one 0.3 ms).
    """
    B, T, D, _ = lj.A.shape
    n_u, Ny, K = lj.Bu.shape[3], lj.Yz.shape[2], G0.shape[2]
    E = G0.new_zeros(B, T, D, K)  # dz_{t+1}/dv through step t's direct inputs
    Ey = G0.new_zeros(B, T, Ny, K)
    if u_cols:  # block diagonal: step t's controls are columns t n_u .. (t + 1) n_u
        for M, blocks in ((E, lj.Bu), (Ey, lj.Yu)):
            d = torch.diagonal(M[..., : T * n_u].unflatten(-1, (T, n_u)), dim1=1, dim2=3)
            d.copy_(blocks.permute(0, 2, 3, 1))  # (B, rows, n_u, T)
    if theta_col is not None:
        c = slice(theta_col, theta_col + lj.Bth.shape[3])
        E[..., c] = lj.Bth
        Ey[..., c] = lj.Yth
    G, Gs = G0, [G0]
    for A, e in zip(lj.A.unbind(1)[:-1], E.unbind(1)[:-1], strict=True):
        G = torch.baddbmm(e, A, G)
        Gs.append(G)
    return torch.matmul(lj.Yz, torch.stack(Gs, 1)).add_(Ey)
