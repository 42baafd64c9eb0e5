"""Per-problem Jacobians of batched residual functions, by reverse mode on a replicated batch.

A planner or estimator solves B independent problems at once; the Jacobian it needs is the
block diagonal of the full one, ``J_b = d r_b / d x_b``. Each problem is replicated once per
residual row, every replica backpropagates its own row (a one-hot cotangent), and one backward
pass through the replicated batch yields all blocks. This is the ``torch.func.vmap(vjp)``
construction written as a plain batch: it runs through any batched ``ControlModel`` (no vmap
support needed, e.g. data-dependent substep counts) and costs one forward + backward at batch
``B * rows``. Rows are processed in chunks to bound memory.

Forward mode (one replica per input column) was measured slower on the simulator in this
torch build (decomposed forward-AD formulas for mul/add), so it is not offered.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["batched_jacobian"]


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
        J[:, c0 : c0 + c] = 0 if grad is None else grad.reshape(B, c, K)
        if value is None:
            value = out[:, 0].detach()
    if value is None:  # n_out == 0
        value = x.new_zeros(B, 0)
    return value, J
