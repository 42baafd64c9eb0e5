"""Comparison figures: success rate vs environment samples, and closed-loop trajectories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..evaluation.episodes import EvalResult  # noqa: E402
from ..utils.io import atomic_savefig  # noqa: E402

__all__ = ["plot_learning_curves", "plot_trajectories"]


def _colors(names: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def plot_learning_curves(
    rows: list[dict[str, Any]], curves: dict[tuple[str, str], list[dict[str, Any]]], path: str | Path
) -> Path:
    """Success rate (validation episodes, Wilson band) vs env samples per learning agent, one panel
    per env; agents that do not learn appear as horizontal lines at their test success."""
    envs = list(dict.fromkeys(r["env"] for r in rows))
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    col = _colors(agents)
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.0), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        rs = [r for r in rows if r["env"] == env]
        xmax = max([1] + [p["env_samples"] for r in rs for p in curves.get((env, r["agent"]), [])])
        for r in rs:
            pts = curves.get((env, r["agent"]), [])
            c = col[r["agent"]]
            if pts:
                x = np.array([p["env_samples"] for p in pts], float)
                y = np.array([p["success_rate"] for p in pts])
                ax.plot(x, y, "o-", color=c, label=r["agent"])
                ax.fill_between(
                    x, [p["success_lo"] for p in pts], [p["success_hi"] for p in pts], color=c, alpha=0.15
                )
            else:
                ax.axhline(r["success_rate"], color=c, ls="--", lw=1.2, label=f"{r['agent']} (0 samples)")
        ax.set_xscale("log")
        ax.set_xlim(max(1.0, xmax / 100), xmax * 1.5)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("environment samples used to train")
        ax.set_ylabel("success rate")
        ax.set_title(env)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    out = atomic_savefig(fig, path)
    plt.close(fig)
    return out


def plot_trajectories(env: str, results: dict[str, EvalResult], path: str | Path, episode: int = 0) -> Path:
    """Episode ``episode`` (the same seed for every agent) per agent: phenotype per cell against
    its target (left) and the doses, as fractions of each channel's maximum (right)."""
    names = [n for n, r in results.items() if r.trajectories]
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 2.1 * len(names) + 0.6), squeeze=False, sharex=True)
    for row, name in enumerate(names):
        res = results[name]
        tr = res.trajectories
        ph, tg, u = tr["phenotype"][episode], tr["target"][episode], tr["dose"][episode]
        t = np.arange(ph.shape[0]) * res.dt
        ax = axes[row, 0]
        n_cells = ph.shape[1]
        cm = plt.get_cmap("coolwarm")
        for i in range(n_cells):
            c = cm(float(tg[-1, i] > 0.5)) if n_cells > 1 else "C0"
            ax.plot(t, ph[:, i], color=c, lw=0.9, alpha=0.8)
            ax.plot(t, tg[:, i], color=c, lw=1.0, ls="--", alpha=0.6)
        status = "success" if res.success[episode] else "failure"
        ax.set_ylabel(f"{name}\nphenotype", fontsize=8)
        ax.set_title(f"{name}: {status}, final error {res.final_error[episode]:.3f}", fontsize=8)
        ax = axes[row, 1]
        for j, cname in enumerate(res.control_names):
            ax.step(t[:-1], u[:, j], where="post", lw=1.0, label=cname if j < 6 else None)
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("dose / max", fontsize=8)
        if row == 0:
            ax.legend(fontsize=6, loc="upper right", ncol=2)
    for ax in axes[-1]:
        ax.set_xlabel("time (min)")
    seed = results[names[0]].seeds[episode]
    fig.suptitle(f"{env}: closed loop, test episode seed {seed} (dashed: target)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out = atomic_savefig(fig, path)
    plt.close(fig)
    return out
