"""A short demo: simulate every pathway under a simple intervention and save one figure.

Wnt: a ligand pulse in the source domain, then an antagonist. Notch: a brief ligand pulse to one
cell of a pair sets the fate split; a lattice self-organises. MAPK: a stimulus step, then a MEK
inhibitor. Runs in seconds on a CPU.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..physics import Simulator, get_pathway, lattice, no_field, two_cell, wnt_tissue  # noqa: E402
from ..utils.io import atomic_savefig  # noqa: E402


def _schedule(sim: Simulator, steps: int, pulses: dict[str, tuple[float, int, int]]) -> torch.Tensor:
    """(1, T, n_controls) schedule: {control name: (value, first step, last step)}."""
    u = torch.zeros(1, steps, sim.n_controls)
    names = [c.name for c in sim.control_specs]
    for name, (val, a, b) in pulses.items():
        u[0, a:b, names.index(name)] = val
    return u


def run_demo(out: str | Path = "outputs/demo", seed: int = 0) -> dict:
    """Simulate the four systems and write ``demo.png``; returns timings and final readouts."""
    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cases = {
        "Wnt (morphogen)": (
            Simulator(get_pathway("wnt"), wnt_tissue(), 10.0),
            48,
            {"ligand_source": (2.0, 0, 24), "antagonist": (5.0, 36, 48)},
        ),
        "Notch two-cell": (
            Simulator(get_pathway("notch"), two_cell(), 30.0),
            48,
            {"ligand_left": (0.02, 0, 12)},
        ),
        "Notch lattice": (Simulator(get_pathway("notch"), lattice(rows=4, cols=4), 30.0), 48, {}),
        "MAPK cascade": (
            Simulator(get_pathway("mapk"), no_field(), 1.0),
            60,
            {"stimulus": (1.0, 5, 60), "mek_inhibitor": (2.0, 35, 60)},
        ),
    }
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
    summary = {}
    for j, (title, (sim, steps, pulses)) in enumerate(cases.items()):
        u = _schedule(sim, steps, pulses)
        st = sim.initial_state(batch_size=1)
        if title == "Notch lattice":  # break symmetry with small cell-to-cell variation
            st.x[..., 4] += 0.2 * torch.rand(st.x.shape[:-1])
        t0 = time.perf_counter()
        with torch.no_grad():
            final, xs, Ls = sim.rollout(st, u)
        wall = time.perf_counter() - t0
        pheno = sim.pathway.phenotype_index()[0]
        times = (torch.arange(steps + 1) * sim.dt).numpy()
        ax = axes[0, j]
        if Ls is not None:
            im = ax.imshow(
                Ls[0, -1].numpy(),
                origin="lower",
                cmap="magma",
                extent=(0, sim.grid.length_x, 0, sim.grid.length_y),
            )
            memb = sim.layout.membranes.any(0).numpy()
            ax.contour(
                memb,
                levels=[0.5],
                colors="cyan",
                linewidths=0.6,
                origin="lower",
                extent=(0, sim.grid.length_x, 0, sim.grid.length_y),
            )
            fig.colorbar(im, ax=ax, fraction=0.046, label="ligand L (nM)")
            ax.set_xlabel("x (um)")
        else:
            for s, name in enumerate(sim.pathway.species):
                ax.plot(times, xs[0, :, 0, s].numpy(), label=name)
            ax.legend()
            ax.set_xlabel("time (min)")
        ax.set_title(f"{title}: t = {times[-1]:.0f} min")
        ax = axes[1, j]
        for i in range(min(sim.n_cells, 16)):
            ax.plot(times, xs[0, :, i, pheno].numpy(), lw=1)
        ax.set_xlabel("time (min)")
        ax.set_ylabel(f"{sim.pathway.phenotype[0]} per cell")
        ax2 = ax.twinx()
        for c, spec in enumerate(sim.control_specs[:4]):
            ax2.step(times[:-1], u[0, :, c].numpy(), where="post", ls="--", alpha=0.6, label=spec.name)
        ax2.legend(fontsize=7, loc="upper right")
        summary[title] = dict(wall_s=round(wall, 3), final_phenotype=xs[0, -1, :, pheno].tolist())
    fig.tight_layout()
    path = atomic_savefig(fig, out / "demo.png")
    plt.close(fig)
    summary["figure"] = str(path)
    return summary
