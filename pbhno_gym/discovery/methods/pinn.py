"""Single-scale physics-informed networks (Raissi, Perdikaris & Karniadakis 2019), one per scale.

* **PINN-ODE**: the cell ODEs alone - the shared engine of :mod:`.sbinn` in its vanilla form
  (plain tanh MLP on time, no feature layer, free log-parameters projected onto the prior box,
  one training stage). For field pathways the membrane ligand is a latent network output.
* **PINN-PDE**: the ligand PDE alone, ``dL/dt = D lap L - lambda L + sources`` on the tissue,
  a network ``L(x, y, t)`` per trajectory fitted to the ligand samples with the PDE residual
  (autograd second derivatives), zero-flux outer boundary and an empty initial field imposed
  exactly (``L = scale * t/t_end * softplus(NN)``). The cells appear only as what a single-scale
  model can know of them: a constant uptake rate and a constant emission per cell (trainable,
  non-negative), so cell parameters are not estimated (they keep their prior) and ``kappa_b``
  is absorbed into the uptake constants. Estimates ``D_L``, ``lambda_L`` and the basal secretion
  ``s0`` when free, and reconstructs the field (``predictor.field``). Needs ligand measurements:
  on a design without them it raises :class:`NotApplicable`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from ...data.format import Dataset
from ..design import dataset_design, design_model
from ..method import Method
from ..prior import Prior
from ..result import FitResult
from .nets import BatchedMLP
from .sbinn import fit_cell_pinn

__all__ = ["fit_pinn_ode", "fit_pinn_pde", "NotApplicable", "PINN_PDE_DEFAULTS"]


class NotApplicable(ValueError):
    """The method cannot be applied to this dataset (the message says why)."""


def fit_pinn_ode(
    dataset: Dataset, free: Sequence[str], prior: Prior, *, seed: int = 0, settings: dict | None = None
) -> FitResult:
    """Vanilla PINN on the cell ODEs (see the module docstring)."""
    s = {"features": 0, "squash": False, "staged": False, **(settings or {})}
    return fit_cell_pinn(dataset, free, prior, seed=seed, settings=s, method="pinn_ode")


PINN_PDE_DEFAULTS = dict(
    width=64,
    depth=4,
    epochs=3000,
    lr=2e-3,
    lr_theta=1e-2,
    lambda_pde=1.0,
    lambda_bc=1.0,
    lambda_theta=1.0,
    n_colloc=1024,
    n_boundary=256,
    ensemble=1,
    clip=1.0,
    device=None,
)
FIELD_PARAMS = ("D_L", "lambda_L", "s0")


class FieldPredictor:
    """Evaluates a trained PINN-PDE field on the grid of the dataset it was fitted to."""

    def __init__(self, fields: np.ndarray) -> None:
        self.fields = fields

    def forecast(self, dataset: Dataset) -> np.ndarray:
        raise NotApplicable("pinn_pde has no cell model: it cannot forecast measurements")

    def field(self, dataset: Dataset) -> np.ndarray:
        if dataset["actions"].shape[0] != self.fields.shape[0]:
            raise NotApplicable("pinn_pde reconstructs only the trajectories it was fitted to")
        return self.fields


def fit_pinn_pde(
    dataset: Dataset, free: Sequence[str], prior: Prior, *, seed: int = 0, settings: dict | None = None
) -> FitResult:
    """PINN on the ligand PDE alone (see the module docstring)."""
    s = {**PINN_PDE_DEFAULTS, **(settings or {})}
    unknown = set(s) - set(PINN_PDE_DEFAULTS)
    if unknown:
        raise ValueError(
            f"pinn_pde: unknown setting(s) {sorted(unknown)}; known: {sorted(PINN_PDE_DEFAULTS)}"
        )
    chans = dataset.meta["channels"]
    if not any(c["kind"] == "ligand" for c in chans):
        raise NotApplicable("pinn_pde needs ligand measurements; this design measures none")
    device = torch.device(s["device"] or "cpu")
    with torch.device(device):
        return _fit_pinn_pde(dataset, free, prior, seed, s, device)


def _fit_pinn_pde(dataset, free, prior, seed, s, device) -> FitResult:
    t0 = time.perf_counter()
    chans = dataset.meta["channels"]
    lig = [i for i, c in enumerate(chans) if c["kind"] == "ligand"]
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    design = dataset_design(dataset).replace(free=tuple(free))
    model = design_model(design)
    sim, pw = model.sim, model.pathway
    grid = sim.grid
    dtype = torch.float32
    ny, nx, h = grid.ny, grid.nx, grid.h
    Lx, Ly = grid.length_x, grid.length_y
    times = torch.as_tensor(dataset["times"], dtype=dtype)
    t_end = float(times[-1])
    E = dataset["actions"].shape[0]
    K = int(s["ensemble"])
    G = K * E
    lig_scale = float(np.mean(np.asarray(dataset.meta["channel_scale"])[lig]))

    # ---- data: ligand channels at their pixels
    rows = torch.as_tensor([chans[i]["row"] for i in lig], dtype=dtype)
    cols = torch.as_tensor([chans[i]["col"] for i in lig], dtype=dtype)
    mask = torch.as_tensor(dataset["meas_mask"][..., lig])  # (E, T+1, Cl)
    y = torch.as_tensor(np.nan_to_num(dataset["meas_values"][..., lig]), dtype=dtype)
    cs = torch.as_tensor(np.asarray(dataset.meta["channel_scale"])[lig], dtype=dtype)
    n_data = int(mask.sum())
    T1, Cl = mask.shape[1], mask.shape[2]
    data_xyt = (
        torch.stack(
            [
                ((cols + 0.5) * h / Lx).expand(T1, -1),
                ((rows + 0.5) * h / Ly).expand(T1, -1),
                (times / t_end)[:, None].expand(-1, Cl),
            ],
            -1,
        )
        .reshape(1, T1 * Cl, 3)
        .expand(G, -1, -1)
    )

    # ---- operators on pixels: source regions (K_src, HW), membranes (N, HW)
    S_masks = sim.S.to(dtype=dtype, device=device)
    memb = sim.M.to(dtype=dtype, device=device)
    N = sim.n_cells
    names = list(dataset.meta["control_names"])
    actions = torch.as_tensor(dataset["actions"], dtype=dtype)
    n_src = sim.n_sources
    src_idx = [names.index(f"ligand_{r}") for r in sim.layout.source_names]

    # ---- parameters: field parameters free or fixed; everything else keeps the prior
    names_p = list(prior.names)
    fit_idx = [j for j, n in enumerate(names_p) if n in FIELD_PARAMS and n in model.params]
    nominal = {n: float(np.exp(model.prior_mean[model.params.index[n]])) for n in model.params.names}
    mu = torch.as_tensor(prior.mean, dtype=dtype)
    sd = torch.as_tensor(prior.sd, dtype=dtype)
    lo, hi = torch.as_tensor(prior.lower, dtype=dtype), torch.as_tensor(prior.upper, dtype=dtype)
    z0 = 0.3 * torch.randn(K, prior.size, generator=gen, dtype=dtype)
    lt = torch.nn.Parameter(mu + sd * z0)
    coup = torch.nn.Parameter(
        torch.full((G, 2, N), -3.0, dtype=dtype)
    )  # softplus -> uptake, emission (1/min, nM/min)
    net = BatchedMLP(G, 3, 1, s["width"], s["depth"], generator=gen, dtype=dtype)

    def field_param(name: str) -> torch.Tensor:
        if name in names_p and names_p.index(name) in fit_idx:
            return torch.exp(lt[:, names_p.index(name)]).repeat_interleave(E)  # (G,)
        return torch.full((G,), nominal[name], dtype=dtype)

    def L_of(xyt: torch.Tensor) -> torch.Tensor:
        return lig_scale * xyt[..., 2:3] * torch.nn.functional.softplus(net(xyt))

    def pixel_of(xyt: torch.Tensor) -> torch.Tensor:
        c = torch.clamp((xyt[..., 0] * Lx / h).long(), 0, nx - 1)
        r = torch.clamp((xyt[..., 1] * Ly / h).long(), 0, ny - 1)
        return r * nx + c

    params = list(net.parameters()) + [coup]
    opt = torch.optim.Adam([{"params": params}, {"params": [lt], "lr": s["lr_theta"]}], lr=s["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(int(s["epochs"]), 1))
    history = []
    traj = torch.arange(G) % E
    for step in range(int(s["epochs"])):
        opt.zero_grad()
        pred = L_of(data_xyt)[..., 0].reshape(G, T1, Cl) / cs
        r = (pred - y.repeat(K, 1, 1)) * mask.repeat(K, 1, 1)
        l_data = (r**2).sum() / (n_data * K)
        # PDE residual at random (pixel, time) points
        M = int(s["n_colloc"])
        xyt = torch.rand(G, M, 3, generator=gen, dtype=dtype).requires_grad_(True)
        Lc = L_of(xyt)
        g1 = torch.autograd.grad(Lc.sum(), xyt, create_graph=True)[0]
        Lxx = torch.autograd.grad(g1[..., 0].sum(), xyt, create_graph=True)[0][..., 0]
        Lyy = torch.autograd.grad(g1[..., 1].sum(), xyt, create_graph=True)[0][..., 1]
        lap = Lxx / Lx**2 + Lyy / Ly**2
        dLdt = g1[..., 2] / t_end
        pix = pixel_of(xyt.detach())
        k = torch.clamp((xyt[..., 2].detach() * t_end / sim.dt).long(), 0, actions.shape[1] - 1)
        u = actions[traj[:, None], k]  # (G, M, U)
        amp = u[..., src_idx] if n_src else torch.zeros(G, M, 0, dtype=dtype)
        if pw.basal_source({"s0": torch.ones(1)}) is not None:
            s0 = field_param("s0")[:, None]
            amp = amp + torch.nn.functional.pad(s0[..., None], (0, n_src - 1)).expand_as(amp)
        src = (amp * S_masks.T[pix]).sum(-1)  # (G, M)
        cp = torch.nn.functional.softplus(coup)
        mem = memb.T[pix]  # (G, M, N)
        sink = (mem * cp[:, None, 0]).sum(-1) * Lc[..., 0]
        emit = (mem * cp[:, None, 1]).sum(-1)
        Dl, lam = field_param("D_L")[:, None], field_param("lambda_L")[:, None]
        res = (dLdt - Dl * lap + lam * Lc[..., 0] - src + sink - emit) * (sim.dt / lig_scale)
        l_pde = (res**2).mean()
        # zero flux through the outer boundary
        nb = int(s["n_boundary"])
        b = torch.rand(G, nb, 3, generator=gen, dtype=dtype)
        side = torch.randint(0, 4, (G, nb), generator=gen, device=device)
        b[..., 0] = torch.where(side == 0, 0.0, torch.where(side == 1, 1.0, b[..., 0]))
        b[..., 1] = torch.where(side == 2, 0.0, torch.where(side == 3, 1.0, b[..., 1]))
        b.requires_grad_(True)
        gb = torch.autograd.grad(L_of(b).sum(), b, create_graph=True)[0]
        normal = torch.where(side < 2, gb[..., 0] / Lx, gb[..., 1] / Ly) * (h / lig_scale)
        l_bc = (normal**2).mean()
        l_prior = (((lt - mu) / sd) ** 2).sum() * float(np.mean(dataset.meta["noise_sd"])) ** 2 / (K * n_data)
        loss = l_data + s["lambda_pde"] * l_pde + s["lambda_bc"] * l_bc + s["lambda_theta"] * l_prior
        if not torch.isfinite(loss):
            raise RuntimeError(f"pinn_pde: loss became non-finite at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params + [lt], s["clip"])
        opt.step()
        sched.step()
        with torch.no_grad():
            lt.copy_(torch.maximum(torch.minimum(lt, hi), lo))
            keep = torch.ones(prior.size, dtype=torch.bool)
            keep[fit_idx] = False
            lt[:, keep] = mu[keep]  # parameters the PDE cannot see stay at the prior mean
        if step % 250 == 0 or step == int(s["epochs"]) - 1:
            history.append(
                dict(
                    step=step, data=float(l_data.detach()), pde=float(l_pde.detach()), bc=float(l_bc.detach())
                )
            )
    # ---- reconstruct the field on the grid at the control times (ensemble mean)
    with torch.no_grad():
        xc = (torch.arange(nx, dtype=dtype) + 0.5) * h / Lx
        yc = (torch.arange(ny, dtype=dtype) + 0.5) * h / Ly
        Y, X = torch.meshgrid(yc, xc, indexing="ij")
        fields = []
        for t in times / t_end:
            pts = torch.stack([X.flatten(), Y.flatten(), torch.full((ny * nx,), float(t))], -1)
            fields.append(L_of(pts.expand(G, -1, -1))[..., 0].reshape(K, E, ny, nx).mean(0))
        fields = torch.stack(fields, 1).double().cpu().numpy()  # (E, T+1, H, W)
    est_all = lt.detach().double().cpu().numpy()
    est = est_all.mean(0)
    cov = np.diag(prior.sd**2).astype(float)
    if K >= 2:
        c = np.cov(est_all.T, ddof=1).reshape(prior.size, prior.size)
        for a in fit_idx:
            for b_ in fit_idx:
                cov[a, b_] = c[a, b_]
    else:
        for a in fit_idx:  # no ensemble: no uncertainty for fitted parameters
            cov[a, a] = np.nan
    res = FitResult(
        "pinn_pde",
        prior.names,
        est,
        cov=None if np.isnan(cov).any() else cov,
        success=True,
        wall_s=time.perf_counter() - t0,
        meta=dict(
            settings={**s, "device": str(device)},
            history=history,
            estimated=[names_p[j] for j in fit_idx],
            kept_prior=[n for j, n in enumerate(names_p) if j not in fit_idx],
            n_data=n_data,
        ),
    )
    res.predictor = FieldPredictor(fields)
    return res


#: the methods this module adds to :mod:`pbhno_gym.discovery.registry`
METHODS = (
    Method(
        "pinn_ode",
        fit_pinn_ode,
        "PINN-ODE: vanilla PINN on the cell ODEs (latent membrane ligand)",
        family="physics-informed",
        quick={"epochs": 3000, "ensemble": 3},
        full={"epochs": 12000, "ensemble": 5, "n_colloc": 512},
        provides=("forecast", "intervals"),
    ),
    Method(
        "pinn_pde",
        fit_pinn_pde,
        "PINN-PDE: PINN on the ligand PDE alone (cells as constant sinks/sources)",
        family="physics-informed",
        quick={"epochs": 1500},
        full={"epochs": 8000, "ensemble": 3},
        provides=("field",),
    ),
)
