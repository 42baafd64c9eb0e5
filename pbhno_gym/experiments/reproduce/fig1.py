"""Fig. 1: parameter MAE vs observation noise, with the Cramer-Rao bound."""

from __future__ import annotations

import numpy as np

from ..sweep import Task
from .base import Experiment, by_method, design_text, ok_records, select_methods, write_report

__all__ = ["Fig1"]


class Fig1(Experiment):
    """Parameter MAE per method at each observation noise level, beside the CRLB."""

    def config(self, quick, methods, seeds):
        n = seeds or (2 if quick else 10)
        noises = [0.05, 0.2, 0.4] if quick else [0.01, 0.05, 0.1, 0.2, 0.4]
        return dict(
            design="notch_sparse",
            seeds=list(range(n)),
            noises=noises,
            methods=select_methods(methods, quick=quick),
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

        from ...discovery.metrics import aggregate

        by = by_method(results)
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        csv = ["method,noise,n,mae,mae_ci_low,mae_ci_high,mape"]
        lines = [
            f"# Fig. 1: parameter MAE vs observation noise ({'quick' if cfg['quick'] else 'full'} setting)",
            "",
            design_text(cfg["design"]),
            "",
            "| method | " + " | ".join(f"noise {nz:g}" for nz in cfg["noises"]) + " |",
            "|---|" + "---|" * len(cfg["noises"]),
        ]
        for m in cfg["methods"] + ["crlb"]:
            xs, ys, lo, hi, cells = [], [], [], [], []
            for nz in cfg["noises"]:
                ok = [r for r in ok_records(by.get(m, [])) if abs(r["noise"] - nz) < 1e-12]
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
        write_report(out, "fig1", lines, csv, note, fig)
        return {}
