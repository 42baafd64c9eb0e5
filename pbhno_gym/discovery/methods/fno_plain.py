"""Plain FNO baseline: an operator learner without physics, theta regressed from data.

Amortised, simulation-based: the design's simulator draws ``n_train`` systems from the prior
(same controls statistics, sparsity and noise as the dataset), and two Fourier neural operators
(Li et al., ICLR 2021) over the time axis learn

* an *encoder* from the irregular, masked measurement sequences of every trajectory (values,
  mask, controls, time) to a Gaussian over the free log-parameters (mean and log-variance per
  parameter, Gaussian negative log-likelihood; trajectories mean-pooled, so any number works);
* a *forecaster* from (control schedule, theta) to the noise-free measurement channels, used for
  counterfactual forecasts under new controls with the encoder's estimate.

No kinetics enter training: the simulator only supplies input/output pairs. Trained models are
cached per (design, noise, sparsity, settings) in memory and optionally on disk
(``cache_dir``), so a sweep trains once and applies the encoder to every seed.

The spectral convolution is local to this module for now; once ``pbhno_gym.surrogate.fno``
exists on main it should import that layer instead (see the report of issue 7).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ...data.format import Dataset
from ..design import Design, dataset_design, design_model, simulate_prior
from ..method import Method
from ..prior import Prior
from ..result import FitResult

__all__ = ["SpectralConv1d", "FNO1d", "fit_fno", "FNO_DEFAULTS"]

FNO_DEFAULTS = dict(
    n_train=512,
    width=32,
    modes=12,
    layers=4,
    epochs=300,
    batch=32,
    lr=2e-3,
    weight_decay=1e-4,
    cache_dir=None,
    train_seed=1_000_000,
    forecaster=True,
    device=None,
)


class SpectralConv1d(nn.Module):
    """Fourier layer: FFT over time, a learned complex mixing of the lowest ``modes`` modes, iFFT."""

    def __init__(self, width: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (width * width)
        self.w = nn.Parameter(scale * torch.randn(width, width, modes, dtype=torch.cfloat))

    def forward(self, x: Tensor) -> Tensor:  # (B, width, T)
        xf = torch.fft.rfft(x, dim=-1)
        m = min(self.modes, xf.shape[-1])
        out = torch.zeros_like(xf)
        out[..., :m] = torch.einsum("bim,iom->bom", xf[..., :m], self.w[..., :m])
        return torch.fft.irfft(out, n=x.shape[-1], dim=-1)


class FNO1d(nn.Module):
    """Lift -> ``layers`` x (spectral conv + pointwise conv, GELU) -> per-time features (B, width, T)."""

    def __init__(self, d_in: int, width: int, modes: int, layers: int) -> None:
        super().__init__()
        self.lift = nn.Conv1d(d_in, width, 1)
        self.spectral = nn.ModuleList([SpectralConv1d(width, modes) for _ in range(layers)])
        self.pointwise = nn.ModuleList([nn.Conv1d(width, width, 1) for _ in range(layers)])

    def forward(self, x: Tensor) -> Tensor:
        h = self.lift(x)
        for i, (s, p) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            h = s(h) + p(h)
            if i < len(self.spectral) - 1:
                h = nn.functional.gelu(h)
        return h


class _Encoder(nn.Module):
    def __init__(self, d_in: int, p: int, width: int, modes: int, layers: int) -> None:
        super().__init__()
        self.init_args = (d_in, p, width, modes, layers)  # to rebuild it from a plain cache file
        self.fno = FNO1d(d_in, width, modes, layers)
        self.head = nn.Sequential(nn.Linear(2 * width, 64), nn.GELU(), nn.Linear(64, 2 * p))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # x (B, E, F, T)
        B, E = x.shape[:2]
        h = self.fno(x.flatten(0, 1))  # (B E, w, T)
        h = torch.cat([h.mean(-1), h.amax(-1)], -1).reshape(B, E, -1).mean(1)
        out = self.head(h)
        p = out.shape[-1] // 2
        return out[:, :p], out[:, p:].clamp(-10, 5)


class _Forecaster(nn.Module):
    def __init__(self, d_in: int, c_out: int, width: int, modes: int, layers: int) -> None:
        super().__init__()
        self.init_args = (d_in, c_out, width, modes, layers)
        self.fno = FNO1d(d_in, width, modes, layers)
        self.proj = nn.Conv1d(width, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:  # (B, F, T) -> (B, C, T)
        return self.proj(nn.functional.gelu(self.fno(x)))


def _features(values: np.ndarray, mask: np.ndarray, actions: np.ndarray, u_scale: np.ndarray) -> np.ndarray:
    """(..., E, T+1, C) measurements + (..., E, T, U) controls -> (..., E, 2C+U+1, T+1)."""
    T1 = values.shape[-2]
    u = np.concatenate([actions, actions[..., -1:, :]], -2) / u_scale  # hold the last control
    tau = np.broadcast_to(np.linspace(0, 1, T1)[:, None], (*values.shape[:-1], 1))
    f = np.concatenate([np.nan_to_num(values) * mask, mask.astype(float), u, tau], -1)
    return np.swapaxes(f, -1, -2).astype(np.float32)


def _forecast_features(actions: np.ndarray, z: np.ndarray, u_scale: np.ndarray) -> np.ndarray:
    """(n, T, U) controls + (n, p) normalised theta -> (n, U+1+p, T+1)."""
    T1 = actions.shape[-2] + 1
    u = np.concatenate([actions, actions[..., -1:, :]], -2) / u_scale
    tau = np.broadcast_to(np.linspace(0, 1, T1)[:, None], (*actions.shape[:-2], T1, 1))
    zz = np.broadcast_to(z[..., None, :], (*actions.shape[:-2], T1, z.shape[-1]))
    return np.swapaxes(np.concatenate([u, tau, zz], -1), -1, -2).astype(np.float32)


_CACHE: dict[str, dict] = {}


def _key(design: Design, s: dict) -> str:
    d = {**design.to_dict(), "name": "", "description": ""}
    blob = json.dumps(
        {"design": d, "settings": {k: v for k, v in s.items() if k != "cache_dir"}}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _fit_net(
    net: nn.Module, loss_fn: str, inputs: Tensor, targets: Tensor, s: dict, gen: torch.Generator
) -> dict:
    """AdamW with cosine decay on 90% of the pairs; the weights of the best validation epoch
    (the other 10%) are kept (early stopping, as in the paper's training protocol)."""
    m = inputs.shape[0]
    perm = torch.randperm(m, generator=gen)
    n_val = max(1, m // 10)
    val, tr = perm[:n_val], perm[n_val:]

    def loss_of(idx: Tensor) -> Tensor:
        if loss_fn == "nll":
            mean, logvar = net(inputs[idx])
            return 0.5 * (logvar + (targets[idx] - mean) ** 2 / logvar.exp()).mean()
        return ((net(inputs[idx]) - targets[idx]) ** 2).mean()

    opt = torch.optim.AdamW(net.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, int(s["epochs"]))
    best, best_state, train_l, val_l = float("inf"), None, [], []
    for _ in range(int(s["epochs"])):
        net.train()
        order = tr[torch.randperm(len(tr), generator=gen)]
        tot = 0.0
        for b in range(0, len(order), int(s["batch"])):
            idx = order[b : b + int(s["batch"])]
            opt.zero_grad()
            loss = loss_of(idx)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            tot += float(loss.detach()) * len(idx)
        sched.step()
        net.eval()
        with torch.no_grad():
            v = float(loss_of(val))
        train_l.append(tot / len(tr))
        val_l.append(v)
        if v < best:
            best, best_state = v, {k: t.detach().clone() for k, t in net.state_dict().items()}
    net.load_state_dict(best_state)
    step = max(1, len(train_l) // 20)
    return dict(train=train_l[::step] + [train_l[-1]], val=val_l[::step] + [val_l[-1]], best_val=best)


def _train(design: Design, prior: Prior, s: dict, progress: bool = False) -> dict:
    """Simulate the prior and train encoder + forecaster (see the module docstring)."""
    model = design_model(design)
    seeds = [int(s["train_seed"]) + i for i in range(int(s["n_train"]))]
    data = simulate_prior(design, seeds)  # the float64 simulator on the CPU
    device = torch.device(s["device"] or "cpu")
    with torch.device(device):
        return _train_on(data, model, prior, s, device)


def _train_on(data: dict, model, prior: Prior, s: dict, device: torch.device) -> dict:
    torch.manual_seed(int(s["train_seed"]))
    u_scale = np.maximum(model.sim.control_high.cpu().numpy(), 1e-9)
    X = torch.as_tensor(_features(data["meas_values"], data["meas_mask"], data["actions"], u_scale))
    free_idx = model.free_idx
    z = (data["log_theta"][:, free_idx] - prior.mean) / prior.sd
    Z = torch.as_tensor(z, dtype=torch.float32)
    n, E = X.shape[:2]
    p = prior.size
    enc = _Encoder(X.shape[2], p, s["width"], s["modes"], s["layers"])
    Uf = torch.as_tensor(
        _forecast_features(
            data["actions"].reshape(n * E, *data["actions"].shape[2:]), np.repeat(z, E, 0), u_scale
        )
    )
    Yf = torch.as_tensor(
        np.swapaxes(data["clean"].reshape(n * E, *data["clean"].shape[2:]), -1, -2), dtype=torch.float32
    )
    fc = _Forecaster(Uf.shape[1], Yf.shape[1], s["width"], s["modes"], s["layers"])
    gen = torch.Generator(device=device).manual_seed(int(s["train_seed"]))
    hist = {}
    jobs = [("encoder", enc, "nll", X, Z)] + ([("forecaster", fc, "mse", Uf, Yf)] if s["forecaster"] else [])
    for name, net, loss_fn, inputs, targets in jobs:
        hist[name] = _fit_net(net, loss_fn, inputs, targets, s, gen)
    return dict(
        device=str(device),
        encoder=enc.eval(),
        forecaster=fc.eval() if s["forecaster"] else None,
        u_scale=u_scale,
        history=hist,
        n_train=n,
    )


def _to_plain(blob: dict) -> dict:
    """The trained blob with its networks as constructor arguments + state dicts (safe to load)."""
    nets = {
        k: {"args": list(blob[k].init_args), "state": blob[k].state_dict()}
        for k in ("encoder", "forecaster")
        if blob[k] is not None
    }
    return {**blob, "encoder": nets["encoder"], "forecaster": nets.get("forecaster")}


def _from_plain(plain: dict) -> dict:
    """Inverse of :func:`_to_plain`: rebuild the networks (in eval mode) on the loaded device."""
    out = dict(plain, u_scale=np.asarray(plain["u_scale"]))
    for k, cls in (("encoder", _Encoder), ("forecaster", _Forecaster)):
        if plain[k] is not None:
            net = cls(*plain[k]["args"])
            net.load_state_dict(plain[k]["state"])
            out[k] = net.to(plain["device"]).eval()
    return out


def _trained(design: Design, prior: Prior, s: dict) -> dict:
    key = _key(design, s)
    if key in _CACHE:
        return _CACHE[key]
    from ...utils.io import CheckpointError, safe_torch_load

    path = Path(s["cache_dir"]) / f"fno_plain_{key}.pt" if s.get("cache_dir") else None
    blob = None
    if path is not None and path.is_file():
        try:
            blob = _from_plain(safe_torch_load(path, map_location=torch.device(s["device"] or "cpu")))
        except CheckpointError as e:  # an old pickled (or corrupt) cache file: retrain and replace it
            warnings.warn(f"fno: ignoring the cache file ({e})", stacklevel=2)
    if blob is None:
        blob = _train(design, prior, s)
        if path is not None:
            from ...utils.io import atomic_torch_save

            atomic_torch_save(_to_plain(blob), path)
    _CACHE[key] = blob
    return blob


class FNOPredictor:
    """Forecasts measurement channels under any controls with the forecaster at the estimate."""

    def __init__(self, blob: dict, z: np.ndarray) -> None:
        self.blob, self.z = blob, z

    def forecast(self, dataset: Dataset) -> np.ndarray:
        if self.blob["forecaster"] is None:
            raise ValueError("fno: trained with forecaster=False, so it cannot forecast")
        u = dataset["actions"].astype(np.float64)
        f = torch.as_tensor(_forecast_features(u, np.tile(self.z, (len(u), 1)), self.blob["u_scale"]))
        with torch.no_grad():
            out = self.blob["forecaster"](f.to(self.blob.get("device", "cpu")))
        return np.swapaxes(out.double().cpu().numpy(), -1, -2)

    def field(self, dataset: Dataset) -> None:
        return None


def fit_fno(
    dataset: Dataset, free: Sequence[str], prior: Prior, *, seed: int = 0, settings: dict | None = None
) -> FitResult:
    """Apply (training once per design and settings) the amortised FNO encoder to ``dataset``."""
    s = {**FNO_DEFAULTS, **(settings or {})}
    unknown = set(s) - set(FNO_DEFAULTS)
    if unknown:
        raise ValueError(f"fno: unknown setting(s) {sorted(unknown)}; known: {sorted(FNO_DEFAULTS)}")
    t0 = time.perf_counter()
    base = dataset_design(dataset)
    design = base.replace(free=tuple(free), n_traj=dataset["actions"].shape[0])
    cached = _key(design, s) in _CACHE
    blob = _trained(design, prior, s)
    t_train = time.perf_counter() - t0
    X = torch.as_tensor(
        _features(
            dataset["meas_values"][None],
            dataset["meas_mask"][None],
            dataset["actions"][None].astype(np.float64),
            blob["u_scale"],
        )
    )
    with torch.no_grad():
        mean, logvar = blob["encoder"](X.to(blob.get("device", "cpu")))
    z = mean[0].double().cpu().numpy()
    var = np.exp(logvar[0].double().cpu().numpy())
    est = prior.mean + prior.sd * z
    cov = np.diag(var * prior.sd**2)
    res = FitResult(
        "fno",
        prior.names,
        np.clip(est, prior.lower, prior.upper),
        cov=cov,
        success=True,
        wall_s=time.perf_counter() - t0,
        meta=dict(
            settings={k: v for k, v in s.items() if k != "cache_dir"},
            best_val={k: v["best_val"] for k, v in blob["history"].items()},
            history=blob["history"],  # per network: train / val loss, ~20 points over the epochs
            train_s=0.0 if cached else t_train,
            n_train=blob["n_train"],
            reused_model=cached,
        ),
    )
    res.predictor = FNOPredictor(blob, z)
    return res


#: the methods this module adds to :mod:`pbhno_gym.discovery.registry`
METHODS = (
    Method(
        "fno",
        fit_fno,
        "plain FNO: amortised encoder (measurements -> theta) + forecaster, no physics",
        family="operator",
        quick={"n_train": 512, "epochs": 100},
        full={"n_train": 4096, "epochs": 300, "width": 48},
        provides=("forecast", "intervals"),
    ),
)
