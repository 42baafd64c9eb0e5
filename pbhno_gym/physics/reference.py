"""SciPy reference: the same method-of-lines system integrated by ``solve_ivp`` (BDF/Radau).

Independent of the stepper's time integration (no exponential integrator, no Patankar weights):
the right-hand side is :meth:`Simulator.rhs` (the 5-point Laplacian written as a stencil, the
reaction fluxes of the pathway) evaluated in float64, and SciPy's stiff solvers integrate it at
tight tolerances, restarting at every control switch. Used by the verification tests.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.integrate import solve_ivp

from .simulator import SimState, Simulator

__all__ = ["reference_rollout", "jacobian_sparsity", "budgeted_schedule"]


def jacobian_sparsity(sim: Simulator) -> sp.csr_matrix | None:
    """Sparsity of d(rhs)/d(state) for the flattened state [L (H*W), x (N*S)]."""
    N, S = sim.n_cells, sim.n_species
    cells = sp.kron(sp.eye(N), np.ones((S, S)))
    if sim.grid is None:
        return cells.tocsr()
    ny, nx = sim.grid.shape
    ey, ex = sp.eye(ny), sp.eye(nx)
    ty = sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(ny, ny))
    tx = sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(nx, nx))
    lap = (sp.kron(ty, ex) + sp.kron(ey, tx)) > 0
    memb = sim.layout.membranes.flatten(1).numpy().astype(float)  # (N, HW)
    # field pixels on Gamma_i depend on x_i; x_i depends on every pixel of Gamma_i
    field_cells = sp.csr_matrix(np.kron(memb.T, np.ones((1, S))))  # (HW, N*S)
    cells_field = sp.csr_matrix(np.kron(memb, np.ones((S, 1))))  # (N*S, HW)
    return sp.bmat([[lap, field_cells], [cells_field, cells]]).tocsr()


def reference_rollout(
    sim: Simulator,
    state: SimState,
    controls: torch.Tensor,
    log_theta: torch.Tensor | None = None,
    method: str = "BDF",
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Integrate one environment through a piecewise-constant control schedule.

    Args:
        sim: the simulator whose system is integrated (its dtype is ignored: float64 is used).
        state: a batch-of-one initial state.
        controls: (T, n_controls) schedule, one row per control interval ``sim.dt``.
    Returns:
        cell states (T+1, N, S) and fields (T+1, H, W) (or None) at the control times.
    """
    if state.batch_size != 1:
        raise ValueError("reference_rollout integrates one environment: give a batch-of-one state")
    sim64 = sim.to(torch.float64)
    lt = None if log_theta is None else log_theta.to(torch.float64).reshape(1, -1)
    N, S = sim.n_cells, sim.n_species
    has_field = sim.grid is not None
    hw = 0 if not has_field else sim.grid.ny * sim.grid.nx

    def pack(st: SimState) -> np.ndarray:
        parts = [st.x.reshape(-1)] if not has_field else [st.L.reshape(-1), st.x.reshape(-1)]
        return torch.cat(parts).detach().to(torch.float64).numpy()

    def unpack(y: np.ndarray) -> SimState:
        t = torch.from_numpy(y)
        x = t[hw:].reshape(1, N, S)
        L = t[:hw].reshape(1, *sim.grid.shape) if has_field else None
        return SimState(x, L, torch.zeros(1, dtype=torch.float64))

    sparsity = jacobian_sparsity(sim64) if method in ("BDF", "Radau", "LSODA") else None
    y = pack(state.to(torch.float64))
    xs, Ls = [state.x[0].detach().double().numpy()], [None if not has_field else state.L[0].double().numpy()]
    for k in range(controls.shape[0]):
        u = controls[k : k + 1].to(torch.float64)

        def fun(_t, yy, u=u):
            with torch.no_grad():
                dL, dx = sim64.rhs(unpack(yy), u, lt)
            parts = [dx.reshape(-1)] if not has_field else [dL.reshape(-1), dx.reshape(-1)]
            return torch.cat(parts).numpy()

        kw = {"jac_sparsity": sparsity} if sparsity is not None and method != "LSODA" else {}
        sol = solve_ivp(fun, (0.0, sim.dt), y, method=method, rtol=rtol, atol=atol, **kw)
        if not sol.success:
            raise RuntimeError(f"reference solve failed at control step {k}: {sol.message}")
        y = sol.y[:, -1]
        st = unpack(y)
        xs.append(st.x[0].numpy().copy())
        Ls.append(None if not has_field else st.L[0].numpy().copy())
    return np.stack(xs), (np.stack(Ls) if has_field else None)


def budgeted_schedule(sim: Simulator, horizon: int, budget: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """(horizon, n_controls) float64 uniform random controls in the box, each channel cut off once
    its dose budget is spent, the way the env cuts it (an accuracy-check schedule)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = sim.control_low.double(), sim.control_high.double()
    U = lo + (hi - lo) * torch.rand(horizon, sim.n_controls, generator=g, dtype=torch.float64)
    left = budget.double().clone()
    for t in range(horizon):
        U[t] = torch.minimum(U[t], (left / sim.dt).clamp_min(0))
        left = left - U[t] * sim.dt
    return U
