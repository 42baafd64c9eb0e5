"""Small layouts shared by the physics tests (fast on one CPU thread)."""

import torch

from pbhno_gym.physics import Grid, Simulator, get_pathway, lattice, no_field, two_cell, wnt_tissue


def small_cases():
    """(id, pathway name, layout, control interval) for every pathway and layout family."""
    return [
        ("notch-two_cell", "notch", two_cell(Grid(20, 20, 80.0), cell_size=36, gap=4), 15.0),
        ("notch-lattice", "notch", lattice(Grid(24, 24, 96.0), 2, 2, cell_size=32, gap=8), 15.0),
        ("wnt", "wnt", wnt_tissue(Grid(24, 24, 96.0), 2, 2, cell_size=20, gap=8, source_width=16), 10.0),
        ("mapk", "mapk", no_field(), 1.0),
        ("mapk_feedback", "mapk_feedback", no_field(2), 1.0),
    ]


def make_sim(name, layout, dt, substeps=8, dtype=torch.float64, **kw):
    return Simulator(get_pathway(name), layout, dt, substeps=substeps, max_stiffness=1e9, dtype=dtype, **kw)


def random_schedule(sim, T, seed=1, batch=None):
    g = torch.Generator().manual_seed(seed)
    shape = (T, sim.n_controls) if batch is None else (batch, T, sim.n_controls)
    r = torch.rand(shape, generator=g, dtype=torch.float64).to(sim.dtype)
    return sim.control_low + (sim.control_high - sim.control_low) * r
