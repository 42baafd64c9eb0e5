"""Analytic solutions: the steady morphogen gradient (cosh profile) and MAPK steady states."""

import math

import numpy as np
import pytest
import torch

from pbhno_gym.physics import Grid, Simulator, get_pathway, no_field, wnt_tissue

SOURCE_UM = 16.0


def cosh_profile(x, length, a, s, diff, lam):
    """Steady 1-D solution of D L'' - lam L + s 1{x<a} = 0 with zero flux at 0 and length."""
    xi = math.sqrt(diff / lam)
    b = length - a
    inside = s / lam * (1 - np.sinh(b / xi) / np.sinh(length / xi) * np.cosh(x / xi))
    outside = s / lam * np.sinh(a / xi) / np.sinh(length / xi) * np.cosh((length - x) / xi)
    return np.where(x < a, inside, outside)


def steady_gradient(n: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run the Wnt simulator with receptors that do not take up ligand to its steady state."""
    g = Grid(n, n, 128.0)
    lay = wnt_tissue(g, rows=1, cols=1, cell_size=40.0, gap=8.0, source_width=SOURCE_UM)  # inert cells
    pw = get_pathway("wnt")
    # Steady states of the scheme are exact, so large steps reach them without bias.
    sim = Simulator(pw, lay, dt=200.0, substeps=4, max_stiffness=1e9, dtype=torch.float64)
    lt = sim.log_theta({"kappa_b": 1e-12})
    st = sim.initial_state(lt, 1)
    u = torch.zeros(1, sim.n_controls, dtype=torch.float64)
    for _ in range(40):
        st = sim.step(st, u, lt)
    th = {k: v.item() for k, v in sim.params.unpack(lt).items()}
    return g.x_centres().numpy(), st.L[0].mean(0).numpy(), th


def test_cosh_gradient_within_one_percent_at_default_resolution():
    x, prof, th = steady_gradient(64)
    exact = cosh_profile(x, 128.0, SOURCE_UM, th["s0"], th["D_L"], th["lambda_L"])
    assert np.abs(prof - exact).max() / exact.max() < 0.01
    # the profile is flat across y (the source strip spans the whole height)
    xi = math.sqrt(th["D_L"] / th["lambda_L"])
    far = (x > SOURCE_UM + xi) & (x < 128.0 - 2.5 * xi)  # away from both walls
    slope = np.polyfit(x[far], np.log(prof[far]), 1)[0]
    assert -1 / slope == pytest.approx(xi, rel=0.05)  # decay length sqrt(D/lambda), away from the wall


def test_spatial_convergence_order_is_two():
    errs = []
    for n in (16, 32, 64, 128):
        x, prof, th = steady_gradient(n)
        exact = cosh_profile(x, 128.0, SOURCE_UM, th["s0"], th["D_L"], th["lambda_L"])
        errs.append(np.abs(prof - exact).max())
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(3)]
    assert all(1.8 < p < 2.2 for p in orders), (errs, orders)


@pytest.mark.parametrize("stimulus,inhibitor", [(0.3, 0.0), (1.0, 0.0), (2.0, 3.0)])
def test_mapk_closed_form_steady_state(stimulus, inhibitor):
    pw = get_pathway("mapk")
    sim = Simulator(pw, no_field(), dt=5.0, substeps=10, dtype=torch.float64)
    lt = sim.log_theta({"k3": 1.5, "k6": 0.8})
    st = sim.initial_state(lt, 1)
    u = torch.tensor([[stimulus, inhibitor]], dtype=torch.float64)
    for _ in range(40):
        st = sim.step(st, u, lt)
    th = sim.params.unpack(lt)
    exact = pw.steady_state(
        th, torch.tensor([[stimulus]], dtype=torch.float64), torch.tensor([[inhibitor]], dtype=torch.float64)
    )
    assert torch.allclose(st.x[0, 0], exact[0], rtol=1e-9, atol=1e-12)


def test_mapk_feedback_variant_lowers_erk():
    sims = {
        name: Simulator(get_pathway(name), no_field(), 5.0, substeps=10, dtype=torch.float64)
        for name in ("mapk", "mapk_feedback")
    }
    z = {}
    for name, sim in sims.items():
        st = sim.initial_state(batch_size=1)
        for _ in range(40):
            st = sim.step(st, torch.tensor([[1.0, 0.0]], dtype=torch.float64))
        z[name] = st.x[0, 0, 2].item()
    assert z["mapk_feedback"] < 0.9 * z["mapk"]
    with pytest.raises(ValueError, match="closed form"):
        get_pathway("mapk_feedback").steady_state({}, 1.0)
