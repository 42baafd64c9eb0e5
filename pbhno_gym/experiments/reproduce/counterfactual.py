"""Counterfactual forecasts: error under control inputs never seen in training."""

from __future__ import annotations

import json

import numpy as np

from ..sweep import Task
from .base import Experiment, by_method, design_text, fmt, ok_records, select_methods, write_report

__all__ = ["CF_TEST", "Counterfactual"]

CF_TEST = {"pulse": {"p_on": 0.05, "p_off": 0.05, "min_frac": 0.5}}


class Counterfactual(Experiment):
    """Forecast RMSE per method on test experiments with unseen pulse statistics."""

    def config(self, quick, methods, seeds):
        n = seeds or (2 if quick else 10)
        ms = select_methods(methods, need="forecast", quick=quick)
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

        from ...discovery.metrics import bootstrap_ci

        by = by_method(results)
        lines = [
            "# Counterfactual forecasts under unseen controls "
            f"({'quick' if cfg['quick'] else 'full'} setting)",
            "",
            design_text(cfg["design"]),
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
            ok = ok_records(by.get(m, []))
            if not ok:
                st = by[m][0]["status"] if by.get(m) else "missing"
                lines.append(f"| {m} | {st} | | | |")
                continue
            rm = np.array([r["counterfactual"]["rmse"] for r in ok])
            rel = np.mean([r["counterfactual"]["rel_rmse"] for r in ok])
            mae = np.mean([r["metrics"]["mae"] for r in ok])
            ci = bootstrap_ci(rm)
            lines.append(
                f"| {m} | {rm.mean():.4f} [{fmt(ci[0], 4)}, {fmt(ci[1], 4)}] | {rel:.3f} | {mae:.3f} "
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
        write_report(out, "counterfactual", lines, csv, note, fig)
        return {}
