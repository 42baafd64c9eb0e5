"""SBINN: systems-biology-informed neural networks (Yazdani, Lu, Raissi & Karniadakis, PLoS
Comput Biol 2020), on the same data, prior and bounds as PB-HNO.

A network per trajectory maps time to every species of every cell (and, for field pathways, the
membrane ligand ``ell_i(t)`` as a latent function: SBINN is single-scale and has no PDE); the
known kinetics enter as the ODE residual ``dx/dt - f(x, ell; theta, u)`` at collocation points,
and theta is a trainable log-parameter vector. Following the reference design: a feature layer
``[t, sin(k pi t)]``, outputs scaled by each species' typical level (softplus keeps them
positive), the parameters squashed into the prior box ``mean +- 3 sd`` by tanh (the reference
code squashes around the nominal value; we use PB-HNO's box), and two-stage training (data
first, then data + physics). Loss (cf. paper eq. 7):

    mean_data (h(x) - y)^2 + lambda_ode mean_coll (dt * residual / scale)^2
        + lambda_theta s^2 / n_data sum ((log theta - mu) / sd)^2

in normalised units: the residual is the change per control interval ``dt`` the kinetics do not
explain, on each species' scale, so it is commensurate with a measurement error; ``s`` is the
mean measurement noise sd, so data and prior keep their MAP proportions. A known initial state
(the design's rest state, a function of theta) is imposed
exactly, ``x(t) = x0(theta) + scale * (t / t_end) * NN(t)``; otherwise outputs are positive
(softplus).

Uncertainty: a deep ensemble (``ensemble`` members with different initialisations and
collocation draws, trained in the same batched matmuls); the estimate is the ensemble mean of
log theta and the covariance the ensemble covariance. Forecasts plug the estimate into the
true model (:class:`~pbhno_gym.discovery.predictors.MechanisticPredictor`).

:func:`fit_cell_pinn` is the shared engine; the vanilla PINN-ODE of :mod:`.pinn` is the same
engine without features, squashing or staging.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from ...data.format import Dataset
from ..design import dataset_design, design_model
from ..method import Method
from ..predictors import MechanisticPredictor
from ..prior import Prior
from ..result import FitResult
from .nets import BatchedMLP, time_features

__all__ = ["fit_cell_pinn", "fit_sbinn", "SBINN_DEFAULTS"]

SBINN_DEFAULTS = dict(
    width=64,
    depth=3,
    features=6,
    epochs_data=1000,
    epochs=3000,
    lr=2e-3,
    lr_theta=1e-2,
    lambda_ode=10.0,
    lambda_theta=1.0,
    n_colloc=256,
    ensemble=4,
    squash=True,
    staged=True,
    clip=1.0,
    device=None,
)


def _controls_at(actions: torch.Tensor, t: torch.Tensor, dt: float) -> torch.Tensor:
    """Piecewise-constant controls (E, T, U) at times t (G, M) of trajectory g % E -> (G, M, U)."""
    E, T, _ = actions.shape
    G = t.shape[0]
    k = torch.clamp((t / dt).long(), 0, T - 1)
    traj = torch.arange(G, device=t.device) % E
    return actions[traj[:, None], k]


def fit_cell_pinn(
    dataset: Dataset,
    free: Sequence[str],
    prior: Prior,
    *,
    seed: int = 0,
    settings: dict | None = None,
    method: str = "sbinn",
) -> FitResult:
    """Train the physics-informed state network(s) and theta (see the module docstring)."""
    s = {**SBINN_DEFAULTS, **(settings or {})}
    unknown = set(s) - set(SBINN_DEFAULTS)
    if unknown:
        raise ValueError(f"{method}: unknown setting(s) {sorted(unknown)}; known: {sorted(SBINN_DEFAULTS)}")
    device = torch.device(s["device"] or "cpu")
    with torch.device(device):
        return _fit_cell_pinn(dataset, free, prior, seed, s, method, device)


def _fit_cell_pinn(dataset, free, prior, seed, s, method, device) -> FitResult:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    design = dataset_design(dataset).replace(free=tuple(free))
    model = design_model(design)
    pw, sim = model.pathway, model.sim
    N, S = sim.n_cells, len(pw.species)
    has_field = pw.has_field
    sp_scale, ell_scale = model.typical_levels()
    dtype = torch.float32
    sp_scale_t = torch.as_tensor(sp_scale, dtype=dtype)

    # ---- data: species channels only (single-scale: ligand pixels cannot be predicted)
    chans = dataset.meta["channels"]
    ch_scale = np.asarray(dataset.meta["channel_scale"])
    ch_low = np.asarray(dataset.meta["channel_low"])
    sp_ch = [i for i, c in enumerate(chans) if c["kind"] == "species"]
    if not sp_ch:
        raise ValueError(f"{method}: the dataset measures no species; a cell-level PINN has no data to fit")
    ch_cell = torch.as_tensor([chans[i]["cell"] for i in sp_ch])
    ch_sp = torch.as_tensor([pw.species_index[chans[i]["species"]] for i in sp_ch])
    mask = torch.as_tensor(dataset["meas_mask"][..., sp_ch])  # (E, T+1, Cs)
    y = torch.as_tensor(np.nan_to_num(dataset["meas_values"][..., sp_ch]), dtype=dtype)
    sig = torch.as_tensor(np.asarray(dataset.meta["noise_sd"])[sp_ch], dtype=dtype).clamp_min(1e-6)
    cs = torch.as_tensor(ch_scale[sp_ch], dtype=dtype)
    cl = torch.as_tensor(ch_low[sp_ch], dtype=dtype)
    times = torch.as_tensor(dataset["times"], dtype=dtype)
    E = mask.shape[0]
    t_end = float(times[-1])
    n_data = int(mask.sum())
    actions = torch.as_tensor(dataset["actions"], dtype=dtype)
    names = list(dataset.meta["control_names"])
    inh_idx = [names.index(c.name) for c in pw.inhibitors]

    # ---- model: G = K ensemble members x E trajectories
    K = int(s["ensemble"])
    G = K * E
    d_out = N * S + (N if has_field else 0)
    d_in = 1 + int(s["features"])
    net = BatchedMLP(G, d_in, d_out, s["width"], s["depth"], generator=gen, dtype=dtype)
    mu = torch.as_tensor(prior.mean, dtype=dtype)
    sd = torch.as_tensor(prior.sd, dtype=dtype)
    lo, hi = torch.as_tensor(prior.lower, dtype=dtype), torch.as_tensor(prior.upper, dtype=dtype)
    half = (hi - lo) / 2
    z0 = 0.3 * torch.randn(K, prior.size, generator=gen, dtype=dtype)
    if s["squash"]:  # log theta = centre + half * tanh(raw), starting near the prior mean
        centre = (hi + lo) / 2
        raw = torch.nn.Parameter(torch.atanh(((mu + sd * z0) - centre) / half).clamp(-3, 3))
    else:
        raw = torch.nn.Parameter(mu + sd * z0)
    base = torch.as_tensor(model.prior_mean, dtype=dtype)
    free_idx = torch.as_tensor(model.free_idx)

    def log_theta() -> torch.Tensor:
        if s["squash"]:
            return (hi + lo) / 2 + half * torch.tanh(raw)
        return raw

    def theta_dict(lt_free: torch.Tensor) -> dict[str, torch.Tensor]:
        full = base.expand(K, -1).clone()
        full[:, free_idx] = lt_free
        th = torch.exp(full)
        return {n: th[:, i].view(K, 1, 1) for i, n in enumerate(model.params.names)}

    x0_known = design.initial == "rest"

    def states(tau: torch.Tensor, with_dt: bool, x0: torch.Tensor | None):
        """tau (G, M) -> x (G, M, N, S), dx/dtau or None, ell (G, M, N) or None.

        With a known initial state x0 (G, N, S) the initial condition is hard:
        ``x = x0 + scale * tau * z``; otherwise ``x = scale * softplus(z)`` (positive)."""
        f, df = time_features(tau[..., None], int(s["features"]))
        if with_dt:
            z, dz = net.forward_dt(f, df)
        else:
            z, dz = net(f), None
        zs, dzs = (
            z[..., : N * S].reshape(*tau.shape, N, S),
            None if dz is None else dz[..., : N * S].reshape(*tau.shape, N, S),
        )
        if x0 is not None:
            tt = tau[..., None, None]
            x = x0[:, None] + sp_scale_t * tt * zs
            dx = None if dzs is None else sp_scale_t * (zs + tt * dzs)
        else:
            x = torch.nn.functional.softplus(zs) * sp_scale_t
            dx = None if dzs is None else torch.sigmoid(zs) * dzs * sp_scale_t
        ell = torch.nn.functional.softplus(z[..., N * S :]) * ell_scale if has_field else None
        return x, dx, ell

    params = list(net.parameters())
    opt_net = torch.optim.Adam(params, lr=s["lr"])
    opt_all = torch.optim.Adam([{"params": params}, {"params": [raw], "lr": s["lr_theta"]}], lr=s["lr"])
    n1 = int(s["epochs_data"]) if s["staged"] else 0
    n2 = int(s["epochs"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_all, max(n2, 1))
    tau_grid = (times / t_end).expand(G, -1)
    history = []

    def losses(with_physics: bool):
        lt = log_theta()
        th = theta_dict(lt)
        th2 = {n: v.reshape(K, 1) for n, v in th.items()}  # (B, 1) as initial_state expects
        x0 = pw.initial_state(th2, N).to(dtype).repeat_interleave(E, 0) if x0_known else None  # (G, N, S)
        x, _, _ = states(tau_grid, False, x0)  # (G, T+1, N, S)
        pred = (x[:, :, ch_cell, ch_sp] - cl) / cs  # (G, T+1, Cs)
        r = (pred - y.repeat(K, 1, 1)) * mask.repeat(K, 1, 1)
        out = {"data": (r**2).sum() / (n_data * K)}
        if with_physics:
            tau = torch.rand(G, int(s["n_colloc"]), generator=gen, dtype=dtype)
            xc, dxc, ell = states(tau, True, x0)
            u = _controls_at(actions, tau * t_end, sim.dt)
            inh = {
                c.name: u[..., j : j + 1].reshape(K, -1, 1)
                for c, j in zip(pw.inhibitors, inh_idx, strict=True)
            }
            M = tau.shape[1]
            xk = xc.reshape(K, E * M, N, S)
            ellk = None if ell is None else ell.reshape(K, E * M, N)
            f = pw.drift(xk, ellk, th, inh).reshape(G, M, N, S)
            res = (dxc / t_end - f) * (sim.dt / sp_scale_t)  # unexplained change per control interval
            out["ode"] = (res**2).mean()
            out["prior"] = (((lt - mu) / sd) ** 2).sum() * float(sig.mean()) ** 2 / (K * n_data)
        return out

    w = {"data": 1.0, "ode": s["lambda_ode"], "prior": s["lambda_theta"]}
    for step in range(n1 + n2):
        phys = step >= n1
        opt = opt_all if phys else opt_net
        opt.zero_grad()
        ls = losses(phys)
        loss = sum(w[k] * v for k, v in ls.items())
        if not torch.isfinite(loss):
            raise RuntimeError(
                f"{method}: loss became non-finite at step {step} ({ {k: float(v) for k, v in ls.items()} })"
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params + [raw], s["clip"])
        opt.step()
        if phys:
            sched.step()
            if not s["squash"]:
                with torch.no_grad():
                    raw.copy_(torch.maximum(torch.minimum(raw, hi), lo))
        if step % 250 == 0 or step == n1 + n2 - 1:
            history.append({"step": step, **{k: float(v.detach()) for k, v in ls.items()}})
    lt = log_theta().detach().double().cpu().numpy()  # (K, p)
    est = lt.mean(0)
    cov = np.cov(lt.T, ddof=1).reshape(prior.size, prior.size) if K >= 2 else None
    res = FitResult(
        method,
        prior.names,
        est,
        cov=cov,
        samples=lt if K >= 2 else None,
        success=bool(np.isfinite(est).all()),
        wall_s=time.perf_counter() - t0,
        meta=dict(
            settings={**s, "device": str(device)},
            history=history,
            ensemble_log_theta=lt.tolist(),
            n_data=n_data,
            latent_ell=has_field,
        ),
    )
    res.predictor = MechanisticPredictor(prior.names, est)
    return res


def fit_sbinn(
    dataset: Dataset, free: Sequence[str], prior: Prior, *, seed: int = 0, settings: dict | None = None
) -> FitResult:
    """SBINN (Yazdani et al. 2020) with PB-HNO's prior and bounds; see the module docstring."""
    return fit_cell_pinn(dataset, free, prior, seed=seed, settings=settings, method="sbinn")


_ = math

#: the methods this module adds to :mod:`pbhno_gym.discovery.registry`
METHODS = (
    Method(
        "sbinn",
        fit_sbinn,
        "SBINN: state network + ODE residual, theta squashed into the prior box",
        family="physics-informed",
        quick={"epochs_data": 500, "epochs": 3000, "ensemble": 3},
        full={"epochs_data": 2000, "epochs": 10000, "ensemble": 5, "n_colloc": 512},
        provides=("forecast", "intervals"),
    ),
)
