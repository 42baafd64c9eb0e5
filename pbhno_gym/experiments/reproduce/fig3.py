"""Fig. 3: the Wnt ligand field reconstructed from sparse edge samples (design ``wnt_edges``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...utils.io import atomic_savefig
from ..sweep import Task
from .base import Experiment, by_method, design_text, ok_records, select_methods, write_report

__all__ = ["Fig3"]


class Fig3(Experiment):
    """Relative L2 error of the reconstructed Wnt ligand field per method, with maps."""

    def config(self, quick, methods, seeds):
        n = seeds or (1 if quick else 3)
        return dict(
            design="wnt_edges",
            seeds=list(range(n)),
            methods=select_methods(methods, need="field", quick=quick),
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

        from ...discovery.design import design_model
        from ...discovery.designs import get_design

        by = by_method(results)
        ms = [m for m in cfg["methods"] if ok_records(by.get(m, []))]
        lines = [
            "# Fig. 3: Wnt ligand field from sparse edge samples "
            f"({'quick' if cfg['quick'] else 'full'} setting)",
            "",
            design_text(cfg["design"]),
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
            m: next(r for r in ok_records(by[m]) if r["task"]["seed"] == seed0)
            for m in ms
            if any(r["task"]["seed"] == seed0 for r in ok_records(by[m]))
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
        write_report(out, "fig3", lines, csv, note)
        return {}
