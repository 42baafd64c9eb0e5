"""Shared plumbing of the paper experiments: the :class:`Experiment` interface, method selection,
record filters and the report writer (markdown + CSV + PNG)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...utils.io import atomic_savefig, atomic_write_text
from ..sweep import Task

__all__ = ["Experiment", "by_method", "design_text", "fmt", "ok_records", "select_methods", "write_report"]


def select_methods(requested: list[str] | None, need: str | None = None, quick: bool = False) -> list[str]:
    from ...discovery.registry import available_methods

    avail = available_methods()
    if requested:
        bad = [m for m in requested if m not in avail and m not in ("nominal", "crlb")]
        if bad:
            raise ValueError(f"unknown method(s) {bad}; available: {', '.join(sorted(avail))}, nominal, crlb")
        return list(requested)
    return [
        m
        for m, meth in avail.items()
        if (need is None or need in meth.provides) and (meth.in_quick or not quick) and meth.in_default
    ]


@dataclass
class Experiment(ABC):
    """One paper experiment: its configuration, its sweep tasks and its report."""

    name: str
    description: str

    @abstractmethod
    def config(self, quick: bool, methods: list[str] | None, seeds: int | None) -> dict: ...

    @abstractmethod
    def tasks(self, cfg: dict) -> list[Task]: ...

    @abstractmethod
    def report(self, results: list[dict], cfg: dict, out: Path) -> dict: ...


def ok_records(results: list[dict]) -> list[dict]:
    return [r for r in results if r["status"] == "ok"]


def by_method(results: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in results:
        out.setdefault(r["task"]["method"], []).append(r)
    return out


def design_text(name: str) -> str:
    from ...discovery.design import design_model
    from ...discovery.designs import get_design

    d = get_design(name)
    m = design_model(d)
    pr = m.prior
    ctrl = d.controls or tuple(c.name for c in m.sim.control_specs)
    lines = [
        f"**Design `{d.name}`** ({d.env}): {d.description}.",
        f"- observed: {', '.join(d.observed) or 'no species'} in each of {m.sim.n_cells} cells"
        + (f", ligand at {d.ligand_samples} edge pixels" if d.ligand_samples else "")
        + f"; {d.n_times} irregular times per trajectory out of {m.spec.horizon} steps of "
        f"{m.spec.control_interval:g} min; {d.n_traj} trajectories (experiments) per dataset",
        f"- free parameters: {', '.join(f'`{n}`' for n in d.free)}; all others fixed at nominal values",
        f"- prior: log theta ~ N(log nominal, {pr.sd[0]:g}^2) per parameter; bounds = prior mean +- "
        f"{pr.width:g} sd; true values drawn from the prior truncated at {d.theta_truncate:g} sd per seed",
        f"- noise: additive Gaussian, sd = {d.noise:g} x each species' typical level (normalised units)",
        f"- controls: {d.schedule} on {', '.join(ctrl)}; initial state: {d.initial}",
    ]
    return "\n".join(lines)


def write_report(out: Path, stem: str, lines: list[str], csv: list[str], note: str, fig=None) -> None:
    """``<stem>.md`` (the lines and a closing note), ``<stem>.csv`` and, with ``fig``, ``<stem>.png``."""
    if fig is not None:
        import matplotlib.pyplot as plt

        fig.tight_layout()
        atomic_savefig(fig, out / f"{stem}.png")
        plt.close(fig)
    atomic_write_text(out / f"{stem}.md", "\n".join([*lines, "", note]) + "\n")
    atomic_write_text(out / f"{stem}.csv", "\n".join(csv) + "\n")


def fmt(x: float, d: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{d}f}"
