"""Conservation and positivity: the discrete ligand mass balance closes, species stay >= 0."""

import pytest
import torch

from pbhno_gym.physics import Grid, Simulator, get_pathway, lattice, two_cell, wnt_tissue

from .helpers import make_sim, random_schedule, small_cases

FIELD_CASES = [c for c in small_cases() if c[2].grid is not None]


@pytest.mark.parametrize("case", FIELD_CASES, ids=[c[0] for c in FIELD_CASES])
def test_mass_balance_closes_to_round_off(case):
    _, name, lay, dt = case
    sim = make_sim(name, lay, dt, substeps=5)
    U = random_schedule(sim, 6, batch=3)
    lt = sim.params.sample_prior(3, torch.Generator().manual_seed(3), torch.float64)  # per-env theta
    st = sim.initial_state(lt)
    total = {k: 0.0 for k in ("source", "uptake", "decay")}
    m0 = None
    for t in range(U.shape[1]):
        st, b = sim.step(st, U[:, t], lt, budget=True)
        closure = b["mass1"] - (b["mass0"] - b["decay"] + b["source"] - b["uptake"])
        scale = b["mass0"].abs() + b["source"].abs() + b["uptake"].abs() + b["decay"].abs()
        assert (closure.abs() <= 1e-12 * scale + 1e-300).all(), closure
        m0 = b["mass0"] if m0 is None else m0
        for k in total:
            total[k] = total[k] + b[k]
        assert (b["source"] >= 0).all() and (b["uptake"] >= 0).all() and (b["decay"] >= 0).all()
    # over the whole rollout, too
    final = st.L.flatten(1).sum(1) * sim.grid.pixel_area
    assert torch.allclose(final, m0 - total["decay"] + total["source"] - total["uptake"], rtol=1e-11)
    assert (total["uptake"] > 0).all()  # the membranes really take up ligand


@pytest.mark.parametrize(
    "name,lay,dt",
    [
        ("notch", two_cell(), 15.0),
        ("notch", lattice(rows=4, cols=4), 15.0),
        ("wnt", wnt_tissue(), 10.0),
    ],
    ids=["notch-two_cell", "notch-lattice", "wnt"],
)
def test_species_and_field_stay_non_negative_under_random_controls(name, lay, dt):
    sim = Simulator(get_pathway(name), lay, dt, substeps="auto", dtype=torch.float32)
    U = random_schedule(sim, 12, batch=4)
    lt = sim.params.sample_prior(4, torch.Generator().manual_seed(5))
    st = sim.initial_state(lt)
    for t in range(U.shape[1]):
        st = sim.step(st, U[:, t], lt)
        assert st.x.min() >= 0
        assert st.L.min() >= -1e-6 * st.L.abs().max()  # float32 transform round-off only
    assert st.is_finite().all()


def test_patankar_keeps_stiff_kinetics_positive_at_any_step():
    """Strong cis-inactivation (20/min) with 15-min substeps: positive, finite, no blow-up."""
    pw = get_pathway("notch")
    sim = Simulator(
        pw,
        two_cell(Grid(24, 24, 96.0), cell_size=40, gap=4),
        15.0,
        substeps=1,
        max_stiffness=1e9,
        dtype=torch.float64,
    )
    lt = sim.log_theta({"k_cis": 0.5, "alpha_D": 0.5})
    st = sim.initial_state(lt, 1)
    u = torch.zeros(1, sim.n_controls, dtype=torch.float64)
    assert sim.max_rate(st, u, lt).item() * 15.0 > 50  # genuinely stiff
    for _ in range(20):
        st = sim.step(st, u, lt)
        assert st.x.min() >= 0 and st.is_finite().all()


def test_fixed_points_are_exact_for_any_step_size():
    """A steady state of the scheme at one step size is a root of the continuous rhs."""
    _, name, lay, dt = small_cases()[2]  # Wnt
    sim = make_sim(name, lay, 50.0, substeps=2)
    u = torch.zeros(1, sim.n_controls, dtype=torch.float64)
    st = sim.initial_state(batch_size=1)
    for _ in range(200):
        st = sim.step(st, u)
    dL, dx = sim.rhs(st, u)
    assert dL.abs().max() < 1e-9 * st.L.abs().max() and dx.abs().max() < 1e-9 * st.x.abs().max()
