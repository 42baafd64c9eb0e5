"""The paper's experiments (section V), one command each: ``pbhno reproduce <name>``.

Every experiment is a sweep of independent tasks (:mod:`.sweep`) over the methods of the
discovery registry - the baselines and, once registered, PB-HNO and its ablations - plus a
report: a markdown table, a CSV and a PNG in ``docs/results/<name>/<setting>/`` next to
``config.json`` (the exact configuration, seeds, versions and the design). Task records live
in ``runs/reproduce/<name>/<setting>/tasks`` so an interrupted run resumes.

* ``table1``: Notch two-cell, 12 irregular time points, 20% noise (the ``notch_sparse``
  design): MAE (std), MAPE (std), Var over the first 10 seeds as the paper reports them, and
  over all seeds bootstrap intervals, median APE, coverage of the 95% intervals, the Cramer-Rao
  bound, beside the paper's numbers.
* ``fig1``: parameter MAE vs observation noise (log y) for the same methods, with the CRLB.
* ``fig3``: the Wnt ligand field reconstructed from 16 edge samples (``wnt_edges``) vs the
  truth, the error map and the relative L2 error per method.
* ``counterfactual``: forecast error under unseen control inputs (long, strong pulses never
  seen in training) per method.

``quick=True`` runs minutes-scale settings on a CPU; the full settings are for a long run or a GPU.
"""

from __future__ import annotations

import datetime
import json
import platform
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..utils.io import atomic_savefig, atomic_write_json, atomic_write_text
from .sweep import Task, load_results, run_sweep

__all__ = ["EXPERIMENTS", "Experiment", "reproduce", "PAPER_TABLE1"]

PAPER_TABLE1 = {  # method: (MAE, MAE std, MAPE %, MAPE std, Var) - paper Table I, 10 seeds
    "pbhno": (0.042, 0.008, 7.9, 1.3, 0.0012),
    "sbinn": (0.072, 0.021, 14.8, 4.1, 0.0049),
    "fno": (0.098, 0.030, 19.3, 5.8, 0.0075),
}
CF_TEST = {"pulse": {"p_on": 0.05, "p_off": 0.05, "min_frac": 0.5}}


def _methods(requested: list[str] | None, need: str | None = None, quick: bool = False) -> list[str]:
    from ..discovery.registry import available_methods

    avail = available_methods()
    if requested:
        bad = [m for m in requested if m not in avail and m not in ("nominal", "crlb")]
        if bad:
            raise ValueError(f"unknown method(s) {bad}; available: {', '.join(sorted(avail))}, nominal, crlb")
        return list(requested)
    return [
        m
        for m, meth in avail.items()
        if (need is None or need in meth.provides) and (meth.in_quick or not quick)
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


def _ok(results: list[dict]) -> list[dict]:
    return [r for r in results if r["status"] == "ok"]


def _by_method(results: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in results:
        out.setdefault(r["task"]["method"], []).append(r)
    return out


def _design_text(name: str) -> str:
    from ..discovery.design import design_model, get_design

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


def _write_report(out: Path, stem: str, lines: list[str], csv: list[str], note: str, fig=None) -> None:
    """``<stem>.md`` (the lines and a closing note), ``<stem>.csv`` and, with ``fig``, ``<stem>.png``."""
    if fig is not None:
        import matplotlib.pyplot as plt

        fig.tight_layout()
        atomic_savefig(fig, out / f"{stem}.png")
        plt.close(fig)
    atomic_write_text(out / f"{stem}.md", "\n".join([*lines, "", note]) + "\n")
    atomic_write_text(out / f"{stem}.csv", "\n".join(csv) + "\n")


def _fmt(x: float, d: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{d}f}"


# ---------------------------------------------------------------------------- table1
class Table1(Experiment):
    def config(self, quick, methods, seeds):
        n = seeds or (3 if quick else 30)
        ms = _methods(methods, quick=quick)
        return dict(
            design="notch_sparse",
            seeds=list(range(n)),
            paper_seeds=list(range(min(10, n))),
            methods=ms + (["nominal"] if "nominal" not in ms else []),
            quick=quick,
        )

    def tasks(self, cfg):
        t = [
            Task(cfg["design"], s, m, quick=cfg["quick"], tag="table1")
            for s in cfg["seeds"]
            for m in cfg["methods"]
        ]
        return t + [Task(cfg["design"], s, "crlb", quick=cfg["quick"], tag="table1") for s in cfg["seeds"]]

    def report(self, results, cfg, out):
        from ..discovery.metrics import aggregate

        by = _by_method(results)
        crlb = np.array([r["crlb_sd"] for r in _ok(by.pop("crlb", []))])
        paper_seeds = set(cfg["paper_seeds"])
        rows, csv = (
            [],
            [
                "method,n_seeds,mae,mae_std,mape,mape_std,var,n_all,mae_all,mae_ci_low,mae_ci_high,"
                "mape_all,mape_ci_low,mape_ci_high,median_ape,coverage,mean_wall_s,status"
            ],
        )
        head = (
            f"| method | MAE (std), first {len(paper_seeds)} seeds | MAPE % (std) | Var | paper MAE (std) | "
            "paper MAPE % (10 seeds) | "
            "MAE all seeds [95% CI] | MAPE % [95% CI] | median APE % | 95% coverage | wall s |"
        )
        rows += [head, "|" + "---|" * 11]
        for m in cfg["methods"]:
            recs = by.get(m, [])
            ok = _ok(recs)
            if not ok:
                status = recs[0]["status"] if recs else "missing"
                msg = recs[0].get("message", "") if recs else ""
                rows.append(f"| {m} | {status}: {msg[:60]} |" + " |" * 9)
                csv.append(f"{m},0,,,,,,,,,,,,,,,,{status}")
                continue
            a10 = aggregate([r["metrics"] for r in ok if r["task"]["seed"] in paper_seeds])
            a = aggregate([r["metrics"] for r in ok])
            pp = PAPER_TABLE1.get(m)
            paper = (f"{pp[0]:.3f} ({pp[1]:.3f})", f"{pp[2]:.1f} ({pp[3]:.1f})") if pp else ("-", "-")
            wall = float(np.mean([r["wall_s"] for r in ok]))
            cov = a.get("coverage")
            rows.append(
                f"| {m} | {_fmt(a10['mae'])} ({_fmt(a10['mae_std'])}) | "
                f"{_fmt(a10['mape'], 1)} ({_fmt(a10['mape_std'], 1)}) "
                f"| {a10['var']:.4f} | {paper[0]} | {paper[1]} | {_fmt(a['mae'])} [{_fmt(a['mae_ci'][0])}, "
                f"{_fmt(a['mae_ci'][1])}] (n={a['n']}) | {_fmt(a['mape'], 1)} [{_fmt(a['mape_ci'][0], 1)}, "
                f"{_fmt(a['mape_ci'][1], 1)}] | {_fmt(a['median_ape'], 1)} | "
                f"{'-' if cov is None else f'{100 * cov:.0f}%'} | {wall:.0f} |"
            )
            csv.append(
                ",".join(
                    str(v)
                    for v in [
                        m,
                        a10["n"],
                        a10["mae"],
                        a10["mae_std"],
                        a10["mape"],
                        a10["mape_std"],
                        a10["var"],
                        a["n"],
                        a["mae"],
                        a["mae_ci"][0],
                        a["mae_ci"][1],
                        a["mape"],
                        a["mape_ci"][0],
                        a["mape_ci"][1],
                        a["median_ape"],
                        "" if cov is None else cov,
                        wall,
                        "ok",
                    ]
                )
            )
        for m, pp in PAPER_TABLE1.items():
            if m not in cfg["methods"]:
                rows.append(
                    f"| {m} (not run) | - | - | - | {pp[0]:.3f} ({pp[1]:.3f}) | {pp[2]:.1f} ({pp[3]:.1f}) |"
                    + " |" * 5
                )
        free = cfg.get("free", [])
        lines = [
            f"# Table I: Notch parameter recovery ({'quick' if cfg['quick'] else 'full'} setting)",
            "",
            _design_text(cfg["design"]),
            "",
            "\n".join(rows),
        ]
        if len(crlb):
            mean_crlb = crlb.mean(0)
            eff = float(np.sqrt(2 / np.pi) * mean_crlb.mean())
            lines += [
                "",
                "Cramer-Rao bound (Fisher information at the true parameters, autograd sensitivities), "
                "mean over "
                f"{len(crlb)} seeds, sd of log theta: "
                + ", ".join(f"`{n}` {v:.3f}" for n, v in zip(free, mean_crlb, strict=False))
                + f". An efficient unbiased estimator would have MAE ~ sqrt(2/pi) x CRLB = {eff:.3f}.",
            ]
            csv.append(f"crlb_efficient_mae,{len(crlb)},{eff},,,,,,,,,,,,,,,ok")
        note = (
            "MAE: mean |log theta_hat - log theta| over the free parameters (scale-free, ~ relative "
            "error); MAPE: 100 x mean |theta_hat/theta - 1|; Var: variance across seeds of the log errors, "
            "mean over parameters; coverage: fraction of (seed, parameter) pairs whose 95% interval "
            "(Laplace for MLE/MAP, ensemble or predicted variance for learned methods) contains the truth; "
            "brackets: percentile bootstrap over seeds. The paper does not state the scale of its MAE; its "
            "numbers are shown for reference only. `nominal` is the prior mean (no fitting)."
        )
        _write_report(out, "table1", lines, csv, note)
        self._plot(by, cfg, out)
        return {"rows": len(rows) - 2}

    def _plot(self, by, cfg, out):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ms = [m for m in cfg["methods"] if _ok(by.get(m, []))]
        fig, ax = plt.subplots(figsize=(1.3 * max(len(ms), 3) + 2, 3.6))
        data = [[r["metrics"]["mae"] for r in _ok(by[m])] for m in ms]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(ms) + 1), ms, rotation=20)
        ax.set_yscale("log")
        ax.set_ylabel("MAE of log theta (per seed)")
        ax.set_title("Notch two-cell, 12 irregular times, 20% noise")
        for m, pp in PAPER_TABLE1.items():
            if m in ms:
                ax.plot(ms.index(m) + 1, pp[0], "r*", ms=10)
        fig.tight_layout()
        atomic_savefig(fig, out / "table1.png")
        plt.close(fig)


# ---------------------------------------------------------------------------- fig1
class Fig1(Experiment):
    def config(self, quick, methods, seeds):
        n = seeds or (2 if quick else 10)
        noises = [0.05, 0.2, 0.4] if quick else [0.01, 0.05, 0.1, 0.2, 0.4]
        return dict(
            design="notch_sparse",
            seeds=list(range(n)),
            noises=noises,
            methods=_methods(methods, quick=quick),
            quick=quick,
        )

    def tasks(self, cfg):
        t = [
            Task(cfg["design"], s, m, noise=nz, quick=cfg["quick"], tag="fig1")
            for nz in cfg["noises"]
            for s in cfg["seeds"]
            for m in cfg["methods"]
        ]
        return t + [
            Task(cfg["design"], s, "crlb", noise=nz, quick=cfg["quick"], tag="fig1")
            for nz in cfg["noises"]
            for s in cfg["seeds"]
        ]

    def report(self, results, cfg, out):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..discovery.metrics import aggregate

        by = _by_method(results)
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        csv = ["method,noise,n,mae,mae_ci_low,mae_ci_high,mape"]
        lines = [
            f"# Fig. 1: parameter MAE vs observation noise ({'quick' if cfg['quick'] else 'full'} setting)",
            "",
            _design_text(cfg["design"]),
            "",
            "| method | " + " | ".join(f"noise {nz:g}" for nz in cfg["noises"]) + " |",
            "|---|" + "---|" * len(cfg["noises"]),
        ]
        for m in cfg["methods"] + ["crlb"]:
            xs, ys, lo, hi, cells = [], [], [], [], []
            for nz in cfg["noises"]:
                ok = [r for r in _ok(by.get(m, [])) if abs(r["noise"] - nz) < 1e-12]
                if not ok:
                    cells.append("-")
                    continue
                if m == "crlb":
                    v = float(np.sqrt(2 / np.pi) * np.mean([np.mean(r["crlb_sd"]) for r in ok]))
                    xs.append(nz)
                    ys.append(v)
                    lo.append(v)
                    hi.append(v)
                    cells.append(f"{v:.3f}")
                    csv.append(f"crlb_efficient_mae,{nz},{len(ok)},{v},,,")
                    continue
                a = aggregate([r["metrics"] for r in ok])
                xs.append(nz)
                ys.append(a["mae"])
                lo.append(a["mae_ci"][0] if np.isfinite(a["mae_ci"][0]) else a["mae"])
                hi.append(a["mae_ci"][1] if np.isfinite(a["mae_ci"][1]) else a["mae"])
                cells.append(f"{a['mae']:.3f}")
                csv.append(f"{m},{nz},{a['n']},{a['mae']},{a['mae_ci'][0]},{a['mae_ci'][1]},{a['mape']}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
            if xs:
                style = dict(ls="--", color="k") if m == "crlb" else {}
                label = "CRLB (efficient MAE)" if m == "crlb" else m
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[np.subtract(ys, lo), np.subtract(hi, ys)],
                    marker="o",
                    capsize=3,
                    label=label,
                    **style,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("observation noise (fraction of typical level)")
        ax.set_ylabel("parameter MAE (log theta)")
        ax.set_title(f"{cfg['design']}: MAE vs noise ({len(cfg['seeds'])} seeds, 95% bootstrap CI)")
        ax.legend(fontsize=7)
        note = "MAE of log theta, mean over seeds. CRLB row: sqrt(2/pi) x mean Cramer-Rao sd (efficient MAE)."
        _write_report(out, "fig1", lines, csv, note, fig)
        return {}


# ---------------------------------------------------------------------------- fig3
class Fig3(Experiment):
    def config(self, quick, methods, seeds):
        n = seeds or (1 if quick else 3)
        return dict(
            design="wnt_edges",
            seeds=list(range(n)),
            methods=_methods(methods, need="field", quick=quick),
            quick=quick,
        )

    def tasks(self, cfg):
        return [
            Task(cfg["design"], s, m, quick=cfg["quick"], field_check=True, tag="fig3")
            for s in cfg["seeds"]
            for m in cfg["methods"]
        ]

    def report(self, results, cfg, out):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..discovery.design import design_model, get_design

        by = _by_method(results)
        ms = [m for m in cfg["methods"] if _ok(by.get(m, []))]
        lines = [
            "# Fig. 3: Wnt ligand field from sparse edge samples "
            f"({'quick' if cfg['quick'] else 'full'} setting)",
            "",
            _design_text(cfg["design"]),
            "",
            "| method | relative L2 error (all times) | final time | parameter MAE | status |",
            "|---|---|---|---|---|",
        ]
        csv = ["method,seed,rel_l2,rel_l2_final,mae,status"]
        for m in cfg["methods"]:
            for r in by.get(m, []):
                if r["status"] != "ok":
                    lines.append(f"| {m} | - | - | - | {r['status']}: {r.get('message', '')[:60]} |")
                    csv.append(f"{m},{r['task']['seed']},,,,{r['status']}")
                    continue
                f = r["field"]
                lines.append(
                    f"| {m} (seed {r['task']['seed']}) | {f['rel_l2']:.3f} | "
                    f"{f['rel_l2_per_time'][-1]:.3f} | "
                    f"{r['metrics']['mae']:.3f} | ok |"
                )
                csv.append(
                    f"{m},{r['task']['seed']},{f['rel_l2']},{f['rel_l2_per_time'][-1]},{r['metrics']['mae']},ok"
                )
        seed0 = cfg["seeds"][0]
        recs = {
            m: next(r for r in _ok(by[m]) if r["task"]["seed"] == seed0)
            for m in ms
            if any(r["task"]["seed"] == seed0 for r in _ok(by[m]))
        }
        if recs:
            model = design_model(get_design(cfg["design"]))
            first = np.load(Path(cfg["task_dir"]) / next(iter(recs.values()))["field"]["arrays"])
            truth = first["truth"][0]  # trajectory 0, (T+1, H, W)
            t_show = truth.shape[0] // 2
            fig, axes = plt.subplots(2, 1 + len(recs), figsize=(3.3 * (1 + len(recs)), 6.2))
            axes = np.asarray(axes).reshape(2, -1)
            vmax = float(truth[t_show].max())
            ext = (0, model.sim.grid.length_x, 0, model.sim.grid.length_y)
            im = axes[0, 0].imshow(truth[t_show], origin="lower", cmap="magma", vmin=0, vmax=vmax, extent=ext)
            px = model.pixels.numpy()
            nx = model.sim.grid.nx
            hh = model.sim.grid.h
            axes[0, 0].plot((px % nx + 0.5) * hh, (px // nx + 0.5) * hh, "c.", ms=5, label="samples")
            axes[0, 0].set_title(f"truth, t = {t_show * model.spec.control_interval:g} min")
            axes[0, 0].legend(fontsize=6, loc="upper right")
            fig.colorbar(im, ax=axes[0, 0], fraction=0.046)
            axes[1, 0].axis("off")
            for j, (m, r) in enumerate(recs.items(), start=1):
                arr = np.load(Path(cfg["task_dir"]) / r["field"]["arrays"])["estimate"][0]
                axes[0, j].imshow(arr[t_show], origin="lower", cmap="magma", vmin=0, vmax=vmax, extent=ext)
                axes[0, j].set_title(f"{m}: rel. L2 {r['field']['rel_l2']:.3f}")
                err = axes[1, j].imshow(
                    arr[t_show] - truth[t_show],
                    origin="lower",
                    cmap="RdBu_r",
                    vmin=-0.3 * vmax,
                    vmax=0.3 * vmax,
                    extent=ext,
                )
                axes[1, j].set_title(f"{m}: error")
                fig.colorbar(err, ax=axes[1, j], fraction=0.046)
            fig.tight_layout()
            atomic_savefig(fig, out / "fig3.png")
            plt.close(fig)
        note = (
            "Relative L2 error ||L_hat - L|| / ||L|| over every pixel of every control time of every "
            "trajectory. MLE/MAP reconstruct by simulating the true model at their estimate; PINN-PDE "
            "evaluates its network on the grid."
        )
        _write_report(out, "fig3", lines, csv, note)
        return {}


# ---------------------------------------------------------------------------- counterfactual
class Counterfactual(Experiment):
    def config(self, quick, methods, seeds):
        n = seeds or (2 if quick else 10)
        ms = _methods(methods, need="forecast", quick=quick)
        return dict(
            design="notch_sparse",
            seeds=list(range(n)),
            methods=ms + (["nominal"] if "nominal" not in ms else []),
            test=CF_TEST,
            quick=quick,
        )

    def tasks(self, cfg):
        return [
            Task(cfg["design"], s, m, quick=cfg["quick"], counterfactual=cfg["test"], tag="cf")
            for s in cfg["seeds"]
            for m in cfg["methods"]
        ]

    def report(self, results, cfg, out):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..discovery.metrics import bootstrap_ci

        by = _by_method(results)
        lines = [
            "# Counterfactual forecasts under unseen controls "
            f"({'quick' if cfg['quick'] else 'full'} setting)",
            "",
            _design_text(cfg["design"]),
            "",
            f"Test inputs: new experiments on the same systems with random pulses of other statistics "
            f"({json.dumps(cfg['test']['pulse'])}: long, strong pulses), never seen in training.",
            "",
            "| method | forecast RMSE [95% CI] | relative RMSE | parameter MAE | seeds |",
            "|---|---|---|---|---|",
        ]
        csv = ["method,n,rmse,rmse_ci_low,rmse_ci_high,rel_rmse,mae"]
        names, vals = [], []
        for m in cfg["methods"]:
            ok = _ok(by.get(m, []))
            if not ok:
                st = by[m][0]["status"] if by.get(m) else "missing"
                lines.append(f"| {m} | {st} | | | |")
                continue
            rm = np.array([r["counterfactual"]["rmse"] for r in ok])
            rel = np.mean([r["counterfactual"]["rel_rmse"] for r in ok])
            mae = np.mean([r["metrics"]["mae"] for r in ok])
            ci = bootstrap_ci(rm)
            lines.append(
                f"| {m} | {rm.mean():.4f} [{_fmt(ci[0], 4)}, {_fmt(ci[1], 4)}] | {rel:.3f} | {mae:.3f} "
                f"| {len(ok)} |"
            )
            csv.append(f"{m},{len(ok)},{rm.mean()},{ci[0]},{ci[1]},{rel},{mae}")
            names.append(m)
            vals.append(rm)
        fig = None
        if names:
            fig, ax = plt.subplots(figsize=(1.3 * max(len(names), 3) + 2, 3.6))
            ax.boxplot(vals, showmeans=True)
            ax.set_xticks(range(1, len(names) + 1), names, rotation=20)
            ax.set_yscale("log")
            ax.set_ylabel("forecast RMSE (normalised units)")
            ax.set_title("counterfactual forecasts, unseen control inputs")
        note = (
            "RMSE of the noise-free measurement channels (normalised units, all channels and control "
            "times) of the test experiments. Parameter-estimation methods forecast with the true model at "
            "their estimate; PB-HNO and the plain FNO with their own forecasters; `nominal` is the "
            "prior-mean model."
        )
        _write_report(out, "counterfactual", lines, csv, note, fig)
        return {}


EXPERIMENTS: dict[str, Experiment] = {
    "table1": Table1("table1", "Notch parameter recovery, 12 irregular points, 20% noise (paper Table I)"),
    "fig1": Fig1("fig1", "parameter MAE vs observation noise (paper Fig. 1)"),
    "fig3": Fig3("fig3", "Wnt ligand field from sparse boundary observations (paper Fig. 3)"),
    "counterfactual": Counterfactual("counterfactual", "forecast error under unseen control inputs"),
}


def reproduce(
    name: str,
    quick: bool = True,
    methods: list[str] | None = None,
    seeds: int | None = None,
    results_dir: str | Path = "docs/results",
    runs_dir: str | Path = "runs/reproduce",
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = True,
    design: str | None = None,
    method_settings: dict[str, dict] | None = None,
    report_only: bool = False,
) -> dict:
    """Run (or resume) one experiment and write its report; returns paths and a summary.

    Args:
        design: run the experiment on another design than its own (e.g. a tiny one in tests).
        method_settings: per-method setting overrides on top of the quick/full settings.
        report_only: run nothing; report from the task records written so far (a partial or
            killed run; missing tasks are listed in config.json).
    """
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    exp = EXPERIMENTS[name]
    setting = "quick" if quick else "full"
    cfg = exp.config(quick, methods, seeds)
    if design is not None:
        cfg["design"] = design
    cfg["method_settings"] = dict(method_settings or {})
    # amortised models (the plain FNO) are cached on disk, so experiments sharing a design train once
    fno = {"cache_dir": str(Path(runs_dir) / "cache"), **cfg["method_settings"].get("fno", {})}
    cfg["method_settings"]["fno"] = fno
    from ..discovery.design import get_design
    from ..discovery.registry import available_methods

    design = get_design(cfg["design"])
    cfg["free"] = list(design.free)
    task_dir = Path(runs_dir) / name / setting
    cfg["task_dir"] = str(task_dir / "tasks")
    out = Path(results_dir) / name / setting
    tasks = [
        Task(**{**t.to_dict(), "settings": cfg["method_settings"].get(t.method, t.settings)})
        for t in exp.tasks(cfg)
    ]
    avail = available_methods()
    import torch

    cfg_record = dict(
        experiment=name,
        setting=setting,
        config={k: v for k, v in cfg.items() if k != "task_dir"},
        design=design.to_dict(),
        method_settings={
            m: avail[m].settings(quick, cfg["method_settings"].get(m))
            for m in cfg.get("methods", [])
            if m in avail
        },
        tasks=[t.to_dict() for t in tasks],
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions=dict(python=platform.python_version(), numpy=np.__version__, torch=torch.__version__),
        machine=platform.platform(),
        command=f"pbhno reproduce {name}{' --quick' if quick else ''}",
    )
    if report_only:
        results = load_results(task_dir, [t.id for t in tasks])
    else:
        results = run_sweep(tasks, task_dir, executor=executor, ray_address=ray_address, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    failed = [r for r in results if r["status"] == "failed"]
    cfg_record["failed_tasks"] = [dict(id=r["id"], message=r.get("message", "")) for r in failed]
    done = {r["id"] for r in results}
    cfg_record["missing_tasks"] = [t.id for t in tasks if t.id not in done]
    atomic_write_json(out / "config.json", cfg_record)
    summary = exp.report(results, cfg, out)
    return dict(
        out=str(out),
        n_tasks=len(tasks),
        n_failed=len(failed),
        n_missing=len(cfg_record["missing_tasks"]),
        **summary,
    )


def load_task_records(name: str, quick: bool = True, runs_dir: str | Path = "runs/reproduce") -> list[dict]:
    return load_results(Path(runs_dir) / name / ("quick" if quick else "full"))
