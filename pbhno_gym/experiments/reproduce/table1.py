"""Table I: Notch parameter recovery (design ``notch_sparse``), beside the paper's numbers."""

from __future__ import annotations

import numpy as np

from ...utils.io import atomic_savefig
from ..sweep import Task
from .base import Experiment, by_method, design_text, fmt, ok_records, select_methods, write_report

__all__ = ["PAPER_TABLE1", "Table1"]

PAPER_TABLE1 = {  # method: (MAE, MAE std, MAPE %, MAPE std, Var) - paper Table I, 10 seeds
    "pbhno": (0.042, 0.008, 7.9, 1.3, 0.0012),
    "sbinn": (0.072, 0.021, 14.8, 4.1, 0.0049),
    "fno": (0.098, 0.030, 19.3, 5.8, 0.0075),
}


class Table1(Experiment):
    """Notch recovery on ``notch_sparse``: per-method errors, the CRLB and the paper's row."""

    def config(self, quick, methods, seeds):
        n = seeds or (3 if quick else 30)
        ms = select_methods(methods, quick=quick)
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
        from ...discovery.metrics import aggregate

        by = by_method(results)
        crlb = np.array([r["crlb_sd"] for r in ok_records(by.pop("crlb", []))])
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
            ok = ok_records(recs)
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
                f"| {m} | {fmt(a10['mae'])} ({fmt(a10['mae_std'])}) | "
                f"{fmt(a10['mape'], 1)} ({fmt(a10['mape_std'], 1)}) "
                f"| {a10['var']:.4f} | {paper[0]} | {paper[1]} | {fmt(a['mae'])} [{fmt(a['mae_ci'][0])}, "
                f"{fmt(a['mae_ci'][1])}] (n={a['n']}) | {fmt(a['mape'], 1)} [{fmt(a['mape_ci'][0], 1)}, "
                f"{fmt(a['mape_ci'][1], 1)}] | {fmt(a['median_ape'], 1)} | "
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
            design_text(cfg["design"]),
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
        write_report(out, "table1", lines, csv, note)
        self._plot(by, cfg, out)
        return {"rows": len(rows) - 2}

    def _plot(self, by, cfg, out):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ms = [m for m in cfg["methods"] if ok_records(by.get(m, []))]
        fig, ax = plt.subplots(figsize=(1.3 * max(len(ms), 3) + 2, 3.6))
        data = [[r["metrics"]["mae"] for r in ok_records(by[m])] for m in ms]
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
