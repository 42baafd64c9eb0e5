"""Simulator behaviour: batching, per-env parameters, bad input, noise, biology sanity."""

import pytest
import torch

from pbhno_gym.physics import (
    Grid,
    ParamSpec,
    SimState,
    Simulator,
    get_pathway,
    no_field,
    two_cell,
    wnt_tissue,
)

from .helpers import make_sim, random_schedule, small_cases


@pytest.mark.parametrize("case", small_cases(), ids=[c[0] for c in small_cases()])
def test_batch_with_per_env_parameters_equals_separate_runs(case):
    _, name, lay, dt = case
    sim = make_sim(name, lay, dt, substeps=4)
    lt = sim.params.sample_prior(3, torch.Generator().manual_seed(2), torch.float64)
    U = random_schedule(sim, 3, batch=3)
    _, xs, Ls = sim.rollout(sim.initial_state(lt), U, lt)
    for b in range(3):
        _, xb, Lb = sim.rollout(sim.initial_state(lt[b]), U[b : b + 1], lt[b])
        assert torch.allclose(xs[b], xb[0], rtol=1e-12, atol=1e-14)
        if Ls is not None:
            assert torch.allclose(Ls[b], Lb[0], rtol=1e-12, atol=1e-14)


def test_auto_substeps_follow_stiffness():
    _, name, lay, dt = small_cases()[0]
    sim = Simulator(get_pathway(name), lay, dt, substeps="auto", dtype=torch.float64)
    st = sim.initial_state(batch_size=1)
    u = sim.control_high[None]
    k = sim.n_substeps(st, u, None)
    assert k == max(1, -(-dt * sim.max_rate(st, u).item() // sim.cfl))
    stiff = sim.log_theta({"k_cis": 1.0})
    assert sim.n_substeps(sim.initial_state(stiff, 1), u, stiff) > 3 * k


def test_bad_input_names_the_field():
    pw = get_pathway("notch")
    lay = two_cell(Grid(20, 20, 80.0))
    with pytest.raises(ValueError, match="Simulator.dt"):
        Simulator(pw, lay, dt=0.0)
    with pytest.raises(ValueError, match="Simulator.substeps"):
        Simulator(pw, lay, dt=10.0, substeps=0)
    with pytest.raises(ValueError, match=r"substeps=1 gives a substep of 600 min.*ligand field go negative"):
        Simulator(get_pathway("wnt"), wnt_tissue(), dt=600.0, substeps=1)
    with pytest.raises(ValueError, match=r"substeps=2 gives a substep of 30 min.*exceeds max_stiffness=4"):
        Simulator(pw, lay, dt=60.0, substeps=2)
    with pytest.raises(ValueError, match="needs a ligand field"):
        Simulator(pw, no_field(), dt=10.0)
    with pytest.raises(ValueError, match="ODE-only"):
        Simulator(get_pathway("mapk"), lay, dt=1.0)
    with pytest.raises(ValueError, match="unknown pathway 'erk'"):
        get_pathway("erk")
    sim = Simulator(pw, lay, dt=10.0)
    with pytest.raises(ValueError, match="parameter 'k_on' must be positive"):
        sim.log_theta({"k_on": -0.1})
    with pytest.raises(ValueError, match="unknown parameter 'k_onn'"):
        sim.log_theta({"k_onn": 0.1})
    lt = sim.log_theta()
    lt[3] = float("nan")
    with pytest.raises(ValueError, match="parameter 'k_cis' is not finite"):
        sim.step(sim.initial_state(batch_size=1), torch.zeros(1, sim.n_controls), lt)
    with pytest.raises(
        ValueError, match=r"controls must have shape \(B, 3\) \[ligand_left, ligand_right, gsi\]"
    ):
        sim.step(sim.initial_state(batch_size=1), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="nominal must be positive"):
        ParamSpec("bad", -1.0, "1/min", "a negative rate")


def test_chemical_langevin_is_seeded_and_shrinks_with_volume():
    _, name, lay, dt = small_cases()[3]  # MAPK
    sim = make_sim(name, lay, dt, substeps=4)
    u = torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(400, -1)

    def run(seed, volume):
        sim.pathway.volume = volume
        g = torch.Generator().manual_seed(seed)
        st = sim.initial_state(batch_size=400)
        for _ in range(15):
            st = sim.step(st, u, noise=g)
        return st.x[:, 0, 2]

    try:
        a, b = run(0, 100.0), run(0, 100.0)
        assert torch.equal(a, b)
        assert not torch.equal(a, run(1, 100.0))
        big = run(0, 10000.0)
        det = sim.pathway.steady_state(
            sim.params.unpack(sim.log_theta()), torch.ones(1, 1, dtype=torch.float64)
        )[0, 2]
        assert abs(big.mean() - det) < 0.01
        assert 70 < (a.var() / big.var()).item() < 140  # variance scales as 1/volume (x100)
        assert (a >= 0).all() and (a <= 1).all()
    finally:
        sim.pathway.volume = type(sim.pathway).volume


def test_notch_two_cell_lateral_inhibition_and_controlled_fate():
    """The cell that receives a brief ligand pulse becomes the Hes-high receiver; its neighbour
    locks into the sender fate (the behaviour the Notch environment asks a controller to set)."""
    sim = Simulator(get_pathway("notch"), two_cell(), 30.0, substeps="auto", dtype=torch.float64)
    st = sim.initial_state(batch_size=2)
    u = torch.zeros(2, sim.n_controls, dtype=torch.float64)
    u[0, 0] = 0.02  # left cell
    u[1, 1] = 0.02  # right cell
    for i in range(48):  # 6 h pulse, then 18 h free
        st = sim.step(st, u if i < 12 else torch.zeros_like(u))
    H = st.x[..., 4]
    assert H[0, 0] > 5 * H[0, 1] and H[1, 1] > 5 * H[1, 0]
    D = st.x[..., 1]
    assert D[0, 1] > 5 * D[0, 0]  # sender keeps Delta high, receiver represses it


def test_state_helpers_and_rhs_shapes():
    _, name, lay, dt = small_cases()[2]
    sim = make_sim(name, lay, dt)
    a, b = sim.initial_state(batch_size=3), sim.initial_state(batch_size=3)
    b = SimState(b.x + 1, b.L + 1, b.t + 5)
    m = torch.tensor([True, False, True])
    c = a.where(m, b)
    assert (
        torch.equal(c.x[0], b.x[0])
        and torch.equal(c.x[1], a.x[1])
        and torch.equal(c.t, torch.tensor([5.0, 0.0, 5.0], dtype=torch.float64))
    )
    assert c.index(slice(0, 2)).batch_size == 2 and c.is_finite().all()
    dL, dx = sim.rhs(a, torch.zeros(3, sim.n_controls, dtype=torch.float64))
    assert dL.shape == a.L.shape and dx.shape == a.x.shape
    moved = sim.to(torch.float32)
    assert moved.initial_state(batch_size=1).L.dtype == torch.float32


def test_consuming_fluxes_are_linear_in_what_they_consume():
    """destruction_coefficients relies on it: every consuming flux divided by the consumed
    species equals that flux evaluated with the species set to one (mass action)."""
    for name in ("notch", "wnt", "mapk", "mapk_feedback"):
        pw = get_pathway(name)
        th = pw.params.unpack(pw.params.log_theta(dtype=torch.float64))
        g = torch.Generator().manual_seed(0)
        x = 0.1 + torch.rand(3, 2, len(pw.species), generator=g, dtype=torch.float64)
        x = x if name.startswith("mapk") else 10 * x
        ell = None if name.startswith("mapk") else torch.rand(3, 2, generator=g, dtype=torch.float64)
        u = pw.inhibitor_dict(torch.rand(3, len(pw.inhibitors), generator=g, dtype=torch.float64), 3, x)
        v = pw.fluxes(x, ell, th, u)
        direct = (v @ (-pw.nu(x.dtype, x.device)).clamp_min(0)) / x
        assert torch.allclose(pw.destruction_coefficients(x, ell, th, u), direct, rtol=1e-12), name


def test_gradients_finite_from_exact_zero_states():
    """Rest states have exact zeros (Notch C, N, H; MAPK everything): differentiating through the
    stepper from them must give finite gradients (a ratio d(x)/x would give inf * 0 = NaN)."""
    for name, lay, dt in [
        ("notch", two_cell(Grid(16, 16, 64.0), cell_size=24, gap=4), 30.0),
        ("mapk", no_field(), 1.0),
    ]:
        sim = Simulator(get_pathway(name), lay, dt, substeps=4, max_stiffness=1e9, dtype=torch.float32)
        lt = sim.log_theta().requires_grad_(True)
        st = sim.initial_state(lt.detach(), 2)
        assert (st.x == 0).any()
        u = (0.3 * sim.control_high).expand(2, -1).requires_grad_(True)
        for _ in range(3):
            st = sim.step(st, u, lt)
        st.x.sum().backward()
        assert torch.isfinite(lt.grad).all() and torch.isfinite(u.grad).all() and lt.grad.abs().sum() > 0
