"""Practical identifiability: Fisher information, Cramer-Rao bounds, profiles, Appendix-B diagnostics.

For an :class:`~pbhno_gym.discovery.problem.InverseProblem` (e.g. a dataset's true model) at a
parameter point:

* Fisher information ``F = J^T Sigma^-1 J`` from the sensitivities ``J = d h / d log theta``
  (forward-mode autograd through the float64 simulator), its eigen-spectrum (small eigenvalues =
  sloppy directions), and the Cramer-Rao lower bound ``sd_j >= sqrt((F^-1)_jj)`` of any unbiased
  estimator of ``log theta_j`` (roughly the relative error of theta_j). With the prior
  precision added (``F + Sigma_prior^-1``) it bounds the posterior sd (Bayesian CRLB).
* Profile-likelihood intervals (pyPESTO), a parameter being practically identifiable when its
  profile crosses the 95% threshold on both sides inside the prior box.
* The sensitivity-reweighting diagnostics of the paper's Appendix B: the weighted sensitivity
  column norms ``||Sigma^-1/2 J_j||``, the *weak* parameters (CRLB above the prior sd: the data
  add little to the prior), where in time each parameter's information comes from, and the
  measurement weights ``w_k`` that raise the residual weight at the times most informative
  about the weak parameters (mean 1), as PB-HNO's sensitivity term uses them.

:func:`practical_report` bundles all of it into a :class:`PracticalReport` with a markdown
table and a figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..discovery.problem import InverseProblem

__all__ = [
    "fisher_information",
    "crlb",
    "sensitivity_diagnostics",
    "PracticalReport",
    "practical_report",
]


def fisher_information(problem: InverseProblem, log_theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fisher information (p, p) and the weighted sensitivities ``Sigma^-1/2 J`` (R, p) at a point."""
    _, J = problem.predict(np.atleast_2d(log_theta), True)
    Jw = J[0] / problem.sigma[:, None]
    return Jw.T @ Jw, Jw


def crlb(F: np.ndarray, prior_sd: np.ndarray | None = None) -> np.ndarray:
    """(p,) Cramer-Rao lower bound on the sd of each log-parameter: sqrt(diag(F^-1)).

    With ``prior_sd`` the prior precision is added (Bayesian / posterior bound). A singular F
    (structurally non-identifiable direction) gives inf for the parameters in its null space.
    """
    F = np.asarray(F, dtype=np.float64)
    if prior_sd is not None:
        F = F + np.diag(1.0 / np.asarray(prior_sd) ** 2)
    w, V = np.linalg.eigh(F)
    tol = max(w.max(), 1e-300) * 1e-12
    inv = np.where(w > tol, 1.0 / np.where(w > tol, w, 1.0), np.inf)
    with np.errstate(invalid="ignore"):
        var = np.where(
            np.isinf(inv)[None, :] & (np.abs(V) > 1e-9), np.inf, V**2 * np.where(np.isinf(inv), 0, inv)
        ).sum(1)
    return np.sqrt(var)


def sensitivity_diagnostics(
    Jw: np.ndarray, times: np.ndarray, crlb_sd: np.ndarray, prior_sd: np.ndarray, boost: float = 1.0
) -> dict:
    """Appendix-B diagnostics from weighted sensitivities ``Jw`` (R, p) at data times (R,).

    Returns column norms (p,), the weak parameters (CRLB sd > prior sd), the information share
    of every distinct time per parameter (n_t, p) (columns sum to 1), and measurement weights
    (R,): ``w_k = 1 + boost * R * mean_{j weak} share_kj``, rescaled to mean 1 (all ones when no
    parameter is weak).
    """
    norms = np.sqrt((Jw**2).sum(0))
    weak = crlb_sd > prior_sd
    contrib = Jw**2  # (R, p) information of each datum about each parameter
    tot = contrib.sum(0, keepdims=True)
    share = np.where(tot > 0, contrib / np.where(tot > 0, tot, 1), 0.0)
    ut, inv = np.unique(times, return_inverse=True)
    time_share = np.zeros((len(ut), Jw.shape[1]))
    np.add.at(time_share, inv, share)
    R = Jw.shape[0]
    if weak.any():
        w = 1 + boost * R * share[:, weak].mean(1)
        w = w / w.mean()
    else:
        w = np.ones(R)
    return dict(column_norms=norms, weak=weak, times=ut, time_share=time_share, weights=w)


@dataclass
class PracticalReport:
    """Practical identifiability of the free parameters at one point (see the module docstring)."""

    names: tuple[str, ...]
    log_theta: np.ndarray
    fisher: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray
    crlb_sd: np.ndarray
    posterior_sd: np.ndarray
    prior_sd: np.ndarray
    diagnostics: dict
    profile: dict | None = None
    meta: dict = field(default_factory=dict)

    @property
    def identifiable(self) -> np.ndarray:
        """(p,) bool: the data bound the parameter better than its prior (CRLB sd < prior sd)
        and, when profiles were computed, its 95% profile interval is closed inside the box."""
        ok = self.crlb_sd < self.prior_sd
        if self.profile is not None:
            ok = ok & ~np.asarray(self.profile["bounded"]).any(1)
        return ok

    def rows(self) -> list[dict]:
        out = []
        d = self.diagnostics
        for j, n in enumerate(self.names):
            r = dict(
                parameter=n,
                log_theta=float(self.log_theta[j]),
                crlb_sd=float(self.crlb_sd[j]),
                posterior_sd=float(self.posterior_sd[j]),
                prior_sd=float(self.prior_sd[j]),
                column_norm=float(d["column_norms"][j]),
                weak=bool(d["weak"][j]),
                identifiable=bool(self.identifiable[j]),
            )
            if self.profile is not None:
                r["profile_low"] = float(self.profile["low"][j])
                r["profile_high"] = float(self.profile["high"][j])
            out.append(r)
        return out

    def table(self) -> str:
        """Markdown table: per parameter CRLB, posterior bound, column norm, profile interval."""
        prof = self.profile is not None
        head = (
            "| parameter | log theta | CRLB sd (log) | ~ rel. error | posterior sd | prior sd | col. norm "
            "| weak | identifiable |"
        )
        if prof:
            head += " 95% profile CI |"
        lines = [head, "|" + "---|" * (head.count("|") - 1)]
        for r in self.rows():
            rel = np.expm1(r["crlb_sd"]) if np.isfinite(r["crlb_sd"]) else np.inf
            line = (
                f"| `{r['parameter']}` | {r['log_theta']:.3f} | {r['crlb_sd']:.3g} | {100 * rel:.1f}% | "
                f"{r['posterior_sd']:.3g} | {r['prior_sd']:.3g} | {r['column_norm']:.3g} | "
                f"{'yes' if r['weak'] else 'no'} | {'yes' if r['identifiable'] else '**no**'} |"
            )
            if prof:
                line += f" [{r['profile_low']:.3f}, {r['profile_high']:.3f}] |"
            lines.append(line)
        ev = self.eigvals
        lines += [
            "",
            f"Fisher eigenvalues: {', '.join(f'{v:.3g}' for v in ev)} (condition number "
            f"{ev.max() / max(ev.min(), 1e-300):.3g}).",
        ]
        v = self.eigvecs[:, 0]
        top = np.argsort(-np.abs(v))[:3]
        lines.append(
            "Sloppiest direction (smallest eigenvalue): "
            + ", ".join(f"{self.names[i]} {v[i]:+.2f}" for i in top)
            + "."
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        d = dict(
            names=list(self.names),
            rows=self.rows(),
            eigvals=self.eigvals.tolist(),
            eigvecs=self.eigvecs.tolist(),
            fisher=self.fisher.tolist(),
            weights=self.diagnostics["weights"].tolist(),
            time_share=self.diagnostics["time_share"].tolist(),
            times=self.diagnostics["times"].tolist(),
            meta=self.meta,
        )
        if self.profile is not None:
            d["profiles"] = self.profile["profiles"]
        return d

    def plot(self, path: str | Path) -> Path:
        """Eigen-spectrum, CRLB vs prior, time-resolved information, profiles -> PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..utils.io import atomic_savefig

        n_ax = 4 if self.profile is not None else 3
        fig, axes = plt.subplots(1, n_ax, figsize=(4.6 * n_ax, 3.8))
        ax = axes[0]
        ax.semilogy(np.arange(1, len(self.eigvals) + 1), np.maximum(self.eigvals, 1e-16), "o-")
        ax.set_xlabel("eigenvalue index")
        ax.set_title("Fisher information spectrum")
        ax = axes[1]
        x = np.arange(len(self.names))
        ax.bar(x - 0.2, np.minimum(self.crlb_sd, 10), 0.4, label="CRLB sd")
        ax.bar(x + 0.2, self.posterior_sd, 0.4, label="posterior bound")
        ax.plot(x, self.prior_sd, "k_", ms=18, label="prior sd")
        ax.set_yscale("log")
        ax.set_xticks(x, self.names, rotation=45, ha="right")
        ax.set_title("bounds on sd(log theta)")
        ax.legend(fontsize=7)
        ax = axes[2]
        d = self.diagnostics
        im = ax.imshow(
            d["time_share"].T,
            aspect="auto",
            cmap="viridis",
            extent=(d["times"][0], d["times"][-1], len(self.names) - 0.5, -0.5),
        )
        ax.set_yticks(x, self.names)
        ax.set_xlabel("time (min)")
        ax.set_title("information share per time")
        fig.colorbar(im, ax=ax, fraction=0.046)
        if self.profile is not None:
            ax = axes[3]
            for n, (xs, dev) in self.profile["profiles"].items():
                j = self.names.index(n)
                ax.plot(np.asarray(xs) - self.log_theta[j], dev, label=n)
            ax.axhline(3.84, color="k", ls="--", lw=0.8)
            ax.set_ylim(0, 10)
            ax.set_xlabel("log theta - estimate")
            ax.set_ylabel("2 delta nll")
            ax.set_title("profile likelihoods")
            ax.legend(fontsize=7)
        fig.tight_layout()
        out = atomic_savefig(fig, path)
        plt.close(fig)
        return out


def practical_report(
    problem: InverseProblem,
    log_theta: np.ndarray,
    profile: bool = False,
    profile_use_prior: bool = False,
    boost: float = 1.0,
) -> PracticalReport:
    """Fisher spectrum, CRLB, Appendix-B diagnostics (and pyPESTO profiles) at ``log_theta``."""
    lt = np.asarray(log_theta, dtype=np.float64).reshape(-1)
    F, Jw = fisher_information(problem, lt)
    w, V = np.linalg.eigh(F)
    sd = crlb(F)
    post = crlb(F, problem.prior.sd)
    times = problem.data_times if problem.data_times is not None else np.arange(problem.n_data, dtype=float)
    diag = sensitivity_diagnostics(Jw, times, sd, problem.prior.sd, boost)
    prof = None
    if profile:
        from ..discovery.pypesto_bridge import profile_intervals

        prof = profile_intervals(problem, lt, profile_use_prior)
    return PracticalReport(
        problem.names,
        lt,
        F,
        w,
        V,
        sd,
        post,
        problem.prior.sd.copy(),
        diag,
        prof,
        meta=dict(n_data=problem.n_data),
    )
