"""Parameter discovery with uncertainty: Laplace/Fisher intervals, deep ensembles, a report.

For each fitted parameter the report gives the estimate, a Laplace (Gauss-Newton Fisher + prior)
standard deviation in log space and its 95% interval in natural units, and, with an ensemble,
the spread of the members' estimates and the combined interval
(``var = mean_m var_Laplace,m + var_m(mean_m)``, a mixture of Gaussians in log space). A parameter
is called *practically identifiable* when the data shrink its prior sd (0.5 in log space) at least
by half. With ground truth in the dataset, errors and interval coverage are reported too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.format import Dataset
from ..utils.io import atomic_write_json, atomic_write_text
from .data import EpisodeTensors
from .fisher import fisher_information, laplace_covariance, point_sensitivities, sensitivities

__all__ = [
    "laplace_summary",
    "sandwich_covariance",
    "marginal_covariance",
    "combine_members",
    "theta_report",
    "write_report",
]


def laplace_summary(
    model, dataset: Dataset, delta: torch.Tensor | None = None, max_episodes: int = 32
) -> dict:
    """Fitted log-parameters and their Laplace covariance (conditional on the network weights)."""
    d = EpisodeTensors.from_dataset(dataset, model.device, model.dtype)
    idx = torch.arange(min(d.n_episodes, max_episodes), device=model.device)
    if delta is None:
        delta = torch.zeros(
            d.n_episodes, model.n_cells, len(model.pathway.species), dtype=model.dtype, device=model.device
        )
    sub = d.index(idx)
    J = sensitivities(model, sub, delta[idx].detach())
    F = fisher_information(J, d.var[idx], d.mask[idx])
    Jp = point_sensitivities(model, sub, delta[idx].detach())
    if Jp is not None:  # off-grid measurements and replicates
        F = F + Jp.T @ (Jp / sub.points.var[:, None])
    F = F * (d.n_episodes / len(idx))
    prior_sd = model.prior_sigma[model.free_index]
    cov = laplace_covariance(F, prior_sd)
    return {
        "names": list(model.free_names),
        "log_theta": model.log_theta_free.detach().cpu().double(),
        "cov": cov.cpu().double(),
        "fisher": F.cpu().double(),
        "prior_sd": prior_sd.cpu().double(),
        "prior_mean": model.prior_mean[model.free_index].cpu().double(),
    }


@torch.no_grad()
def sandwich_covariance(model, dataset: Dataset, delta: torch.Tensor, block: int = 5) -> torch.Tensor:
    """(p, p) robust (sandwich) covariance of the fitted log-parameters: ``H^-1 B H^-1``.

    ``H`` is the Laplace precision (Gauss-Newton Fisher + prior), ``B`` the empirical variance of
    the score summed over blocks of ``block`` consecutive measured times of each episode (residuals
    of a misspecified model are correlated in time, so single measurements are not independent).
    Where the model is right ``B ~ F`` and this is the Laplace covariance; where it is wrong the
    residuals are larger and structured, and the interval widens with them (Huber/White).
    """
    d = EpisodeTensors.from_dataset(dataset, model.device, model.dtype)
    idx = torch.arange(d.n_episodes, device=model.device)
    J = sensitivities(model, d, delta.detach()).double()  # (E, T+1, C, p)
    from .losses import rollout_predictions

    pred = rollout_predictions(model, d.actions, delta.detach()).double()
    var, mask = d.var.double(), d.mask
    F = fisher_information(J, var, mask)
    prior_sd = model.prior_sigma[model.free_index].double()
    H = F + torch.diag(1.0 / prior_sd**2)
    score = torch.where(mask[..., None], J * ((pred - d.y.double()) / var)[..., None], torch.zeros_like(J))
    per_time = score.sum(2)  # (E, T+1, p)
    blocks = []
    for e in idx.tolist():
        times = torch.nonzero(mask[e].any(-1)).flatten()
        for k in range(0, len(times), block):
            blocks.append(per_time[e, times[k : k + block]].sum(0))
    S = torch.stack(blocks)
    B = S.T @ S + torch.diag(1.0 / prior_sd**2)  # the prior's curvature enters once, as in H
    Hi = torch.linalg.inv(H)
    return (Hi @ B @ Hi).to(torch.float64).cpu()


def _observed(model, data: EpisodeTensors, delta: Tensor, log_theta: Tensor | None = None) -> Tensor:
    """(N,) whitened predictions of every observation: the grid's measured entries, then the
    off-grid points (the order of :class:`~.calibrate.ModelProblem`)."""
    from .losses import predict_all

    return _whitened(data, *predict_all(model, data.actions, delta, log_theta, points=data.points))


def _whitened(data: EpisodeTensors, grid: Tensor, pts: Tensor | None) -> Tensor:
    """(N,) grid values at the measured entries, then the points' values, over their noise sd."""
    out = (grid / data.var.sqrt())[data.mask]
    return out if pts is None or len(pts) == 0 else torch.cat([out, pts / data.points.var.sqrt()])


def _network_jacobian(model, data: EpisodeTensors, delta: Tensor, chunk: int = 64) -> tuple[Tensor, Tensor]:
    """Whitened Jacobians of the observations (:func:`_observed`) w.r.t. the network weights
    (N, P) and the initial-state offsets (N, D), by reverse mode: one backward pass per chunk of
    observations (batched vector-Jacobian products, falling back to one pass per observation)."""
    params = [p for n, p in model.named_parameters() if n != "log_theta_free" and p.requires_grad]
    dl = delta.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = _observed(model, data, dl)
        N, wrt = out.shape[0], [*params, dl]
        rows: list[Tensor] = []
        for s in range(0, N, chunk):
            k = min(chunk, N - s)
            eye = torch.zeros(k, N, dtype=out.dtype, device=out.device)
            eye[torch.arange(k), s + torch.arange(k)] = 1.0
            try:
                g = torch.autograd.grad(
                    out, wrt, eye, retain_graph=True, allow_unused=True, is_grads_batched=True
                )
                rows.append(torch.cat([_flat(gi, w, k) for gi, w in zip(g, wrt, strict=True)], 1))
            except RuntimeError:  # an op without a batching rule: one backward pass per row
                for i in range(k):
                    g = torch.autograd.grad(out, wrt, eye[i], retain_graph=True, allow_unused=True)
                    rows.append(torch.cat([_flat(gi, w, 1) for gi, w in zip(g, wrt, strict=True)], 1))
    J = torch.cat(rows).double()
    n_d = dl.numel()
    return J[:, : J.shape[1] - n_d], J[:, J.shape[1] - n_d :]


def _flat(g: Tensor | None, w: Tensor, k: int) -> Tensor:
    """(k, numel(w)) rows of a batched gradient (zeros where ``w`` is unused)."""
    if g is None:
        return torch.zeros(k, w.numel(), dtype=w.dtype, device=w.device)
    return g.reshape(k, -1)


@contextmanager
def _weights_set(model: torch.nn.Module, values: dict[str, Tensor]) -> Iterator[torch.nn.Module]:
    """``model`` with the named parameters set to ``values`` inside the block; the previous values
    come back afterwards, also when the block raises."""
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in values}
    try:
        with torch.no_grad():
            for n, v in values.items():
                params[n].copy_(v.to(params[n]))
        yield model
    finally:
        with torch.no_grad():
            for n, v in saved.items():
                params[n].copy_(v)


def marginal_covariance(
    model,
    dataset: Dataset,
    delta: Tensor,
    init_params: dict[str, Tensor],
    init_sd: float,
    log10_lambda: Sequence[float] = tuple(np.linspace(-6.0, 10.0, 81)),
) -> tuple[Tensor, dict[str, float]]:
    """(p, p) covariance of the fitted log-parameters with the learned parts marginalised out.

    The Laplace covariance conditions on the network weights, so it ignores that the networks can
    absorb what theta explains: under model error the intervals are too narrow along exactly the
    directions where theta and the correction trade off. Here the networks are linearised at the
    trained weights ``w`` with the prior ``w ~ N(w0, I / lambda)`` around their initial values
    ``init_params`` (the zero-output skeleton), and the initial-state offsets keep their prior
    ``N(0, init_sd^2)``. Marginalising both gives (push-through identity, whitened units)

        Cov(log theta) = (J_t^T Sigma^-1 J_t + Sigma_prior^-1)^-1,
        Sigma = I + init_sd^2 J_d J_d^T + J_w J_w^T / lambda,

    i.e. the neural-tangent kernel of the correction acts as a discrepancy covariance
    (Kennedy-O'Hagan calibration with the network's own function space). ``lambda`` is chosen by
    type-II maximum likelihood of the skeleton's residual at the fitted theta (the data minus the
    zero-output model, offsets 0) on a grid of ``log10_lambda``; where the skeleton is right the
    evidence picks a large lambda and this is the Laplace covariance (with the offsets
    marginalised). Returns the covariance and ``{"log10_lambda", "log_evidence_gain"}`` (the log
    Bayes factor of the discrepancy against none, a misspecification diagnostic).
    """
    d = EpisodeTensors.from_dataset(dataset, model.device, model.dtype)
    names = {n for n, p in model.named_parameters() if n != "log_theta_free" and p.requires_grad}
    missing = names - set(init_params)
    if missing:
        raise ValueError(f"marginal_covariance: init_params lacks {sorted(missing)}")
    sd = d.var.sqrt()
    Jt = (sensitivities(model, d, delta.detach()) / sd[..., None])[d.mask].double()  # (N, p)
    Jp = point_sensitivities(model, d, delta.detach())
    if Jp is not None:  # off-grid measurement points after the grid's
        Jt = torch.cat([Jt, (Jp / d.points.var.sqrt()[:, None]).double()])
    Jw, Jd = _network_jacobian(model, d, delta)
    # the skeleton: the networks at their (zero-output) initial weights, offsets 0
    with _weights_set(model, {n: init_params[n] for n in names}), torch.no_grad():
        pred0 = _observed(model, d, torch.zeros_like(delta))
    r = (_whitened(d, d.y, None if d.points is None else d.points.y) - pred0).double()
    N = r.shape[0]
    A = torch.eye(N, dtype=torch.float64, device=r.device) + init_sd**2 * (Jd @ Jd.T)
    L = torch.linalg.cholesky(A)
    W = torch.linalg.solve_triangular(L, Jw, upper=False)  # A = L L^T; whiten the network block
    s, U = torch.linalg.eigh(W @ W.T)
    s = s.clamp_min(0.0)
    rz = U.T @ torch.linalg.solve_triangular(L, r[:, None], upper=False)[:, 0]
    logdet_a = 2.0 * torch.log(torch.diagonal(L)).sum()

    def log_ev(lam: float) -> float:
        v = 1.0 + s / lam
        return float(-0.5 * ((rz**2 / v).sum() + torch.log(v).sum() + logdet_a))

    grid = [float(x) for x in log10_lambda]
    evs = [log_ev(10.0**x) for x in grid]
    best = int(np.argmax(evs))
    lam = 10.0 ** grid[best]
    Tz = U.T @ torch.linalg.solve_triangular(L, Jt, upper=False)  # Sigma^-1 = L^-T U diag(1/v) U^T L^-1
    prec_data = Tz.T @ (Tz / (1.0 + s / lam)[:, None])
    prior_sd = model.prior_sigma[model.free_index].double().to(prec_data.device)
    cov = torch.linalg.inv(prec_data + torch.diag(1.0 / prior_sd**2))
    info = {
        "log10_lambda": grid[best],
        "log_evidence_gain": evs[best] - float(-0.5 * ((rz**2).sum() + logdet_a)),
    }
    return cov.cpu(), info


def combine_members(summaries: list[dict]) -> dict:
    """Pool Laplace summaries of ensemble members (mixture moments in log space)."""
    mus = torch.stack([s["log_theta"] for s in summaries])
    var_l = torch.stack([torch.diagonal(s["cov"]) for s in summaries])
    mean = mus.mean(0)
    between = mus.var(0, unbiased=True) if len(summaries) > 1 else torch.zeros_like(mean)
    return {
        **summaries[0],
        "log_theta": mean,
        "sd_laplace": var_l.mean(0).sqrt(),
        "sd_ensemble": between.sqrt(),
        "sd_total": (var_l.mean(0) + between).sqrt(),
        "members": mus,
    }


def theta_report(summary: dict, dataset: Dataset | None = None) -> dict[str, Any]:
    """Per-parameter table rows (natural units) with identifiability flags and, if known, truth."""
    names = summary["names"]
    mu = summary["log_theta"]
    sd = summary.get("sd_total", torch.diagonal(summary["cov"]).sqrt())
    truth = None
    if dataset is not None and "log_theta" in dataset.arrays:
        lt = np.asarray(dataset["log_theta"], float)
        all_names = dataset.meta["param_names"]
        truth = {n: float(np.exp(lt[:, all_names.index(n)].mean())) for n in names}
    rows = []
    for j, n in enumerate(names):
        est = math.exp(float(mu[j]))
        lo, hi = math.exp(float(mu[j] - 1.96 * sd[j])), math.exp(float(mu[j] + 1.96 * sd[j]))
        row = {
            "name": n,
            "estimate": est,
            "sd_log": float(sd[j]),
            "ci95": [lo, hi],
            "prior": math.exp(float(summary["prior_mean"][j])),
            "shrinkage": float(sd[j] / summary["prior_sd"][j]),
            "identifiable": bool(sd[j] <= 0.5 * summary["prior_sd"][j]),
        }
        if "sd_ensemble" in summary:
            row["sd_log_laplace"], row["sd_log_ensemble"] = (
                float(summary["sd_laplace"][j]),
                float(summary["sd_ensemble"][j]),
            )
        if truth is not None:
            row["true"] = truth[n]
            row["ape"] = abs(est - truth[n]) / truth[n]
            row["covered"] = bool(lo <= truth[n] <= hi)
        rows.append(row)
    out: dict[str, Any] = {"parameters": rows}
    if truth is not None:
        apes = [r["ape"] for r in rows]
        out["mape"], out["median_ape"] = float(np.mean(apes)), float(np.median(apes))
        out["coverage"] = float(np.mean([r["covered"] for r in rows]))
    return out


def write_report(report: dict[str, Any], out_dir: str | Path, stem: str = "theta") -> tuple[Path, Path]:
    """theta.json and a markdown table theta.md (atomic)."""
    out_dir = Path(out_dir)
    j = atomic_write_json(out_dir / f"{stem}.json", report)
    head = "| parameter | estimate | 95% interval | sd (log) | prior | identifiable |"
    sep = "|---|---:|---|---:|---:|---|"
    has_truth = "true" in report["parameters"][0]
    if has_truth:
        head, sep = head + " true | APE | covered |", sep + "---:|---:|---|"
    lines = [head, sep]
    for r in report["parameters"]:
        line = (
            f"| `{r['name']}` | {r['estimate']:.4g} | [{r['ci95'][0]:.3g}, {r['ci95'][1]:.3g}] | "
            f"{r['sd_log']:.3f} | {r['prior']:.3g} | {'yes' if r['identifiable'] else 'no'} |"
        )
        if has_truth:
            line += f" {r['true']:.4g} | {100 * r['ape']:.1f}% | {'yes' if r['covered'] else 'no'} |"
        lines.append(line)
    if "mape" in report:
        lines += [
            "",
            f"MAPE {100 * report['mape']:.1f}%, median APE {100 * report['median_ape']:.1f}%, "
            f"95% interval coverage {100 * report['coverage']:.0f}%.",
        ]
    m = atomic_write_text(out_dir / f"{stem}.md", "\n".join(lines) + "\n")
    return j, m


def load_report(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
