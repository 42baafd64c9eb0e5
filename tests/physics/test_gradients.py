"""Gradients through several steps w.r.t. parameters and controls, checked in float64."""

import pytest
import torch

from pbhno_gym.physics import Grid, lattice, no_field, two_cell, wnt_tissue

from .helpers import make_sim

TINY = [
    ("notch", two_cell(Grid(12, 12, 48.0), cell_size=20, gap=4), 15.0),
    ("notch", lattice(Grid(12, 12, 48.0), 2, 2, cell_size=16, gap=8, sources="uniform"), 15.0),
    ("wnt", wnt_tissue(Grid(12, 12, 48.0), 1, 2, cell_size=12, gap=4, source_width=8), 10.0),
    ("mapk", no_field(), 1.0),
    ("mapk_feedback", no_field(), 1.0),
]


@pytest.mark.parametrize("name,lay,dt", TINY, ids=[f"{t[0]}-{t[1].kind}" for t in TINY])
def test_gradcheck_theta_and_controls(name, lay, dt):
    sim = make_sim(name, lay, dt, substeps=3)
    g = torch.Generator().manual_seed(0)
    lt0 = sim.log_theta() + 0.1 * torch.randn(len(sim.params), generator=g, dtype=torch.float64)
    u0 = sim.control_low + (sim.control_high - sim.control_low) * (
        0.2 + 0.6 * torch.rand(3, sim.n_controls, generator=g, dtype=torch.float64)
    )
    st0 = sim.initial_state(lt0, 1)
    st0.x = st0.x + 0.3 * torch.rand(st0.x.shape, generator=g, dtype=torch.float64)  # off rest

    def run(lt, u):
        st = st0
        for t in range(u.shape[0]):
            st = sim.step(st, u[t : t + 1], lt)
        out = st.x.sum((0, 1)) * torch.arange(1, sim.n_species + 1, dtype=torch.float64)
        return out if st.L is None else torch.cat([out, st.L.flatten()[::7]])

    lt = lt0.clone().requires_grad_(True)
    u = u0.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(run, (lt, u), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_gradient_reaches_every_parameter_and_control():
    name, lay, dt = TINY[2]
    sim = make_sim(name, lay, dt, substeps=3)
    lt = sim.log_theta().requires_grad_(True)
    u = (0.5 * (sim.control_low + sim.control_high)).expand(4, -1).clone().requires_grad_(True)
    st = sim.initial_state(lt.detach(), 1)
    for t in range(4):
        st = sim.step(st, u[t : t + 1], lt)
    (st.x[..., 3].sum() + st.L.sum()).backward()
    assert (lt.grad.abs() > 0).all(), [n for n, g in zip(sim.params.names, lt.grad, strict=True) if g == 0]
    assert (u.grad[:-1].abs() > 0).all()
