"""The observability-rank test gives the textbook answers, with both engines."""

import pytest
import sympy as sp

from pbhno_gym.identifiability.structural import ODEModel, observability_test, pathway_ode
from pbhno_gym.physics import get_pathway

x, x1, x2 = sp.symbols("x x1 x2", positive=True)
k1, k2, k01, k02, k12, k21, c, k = sp.symbols("k1 k2 k01 k02 k12 k21 c k", positive=True)
u = sp.Symbol("u")


@pytest.mark.parametrize("method", ["taylor", "lie"])
def test_textbook_models(method):
    # only the product k1 k2 of x' = -k1 k2 x is identifiable: null direction (1, -1) in log k
    r = observability_test(ODEModel([x], [k1, k2], [-k1 * k2 * x], [x]), method)
    assert r.identifiable == {"k1": False, "k2": False} and r.observable == {"x": True}
    assert r.rank == 2 and r.null_directions == [{"coords": "log", "k1": "-1", "k2": "1"}]
    # linear two-compartment model, input and output in compartment 1 (Godfrey 1983):
    # elimination from the central compartment only -> identifiable ...
    two3 = ODEModel(
        [x1, x2], [k01, k12, k21], [-(k01 + k21) * x1 + k12 * x2 + u, k21 * x1 - k12 * x2], [x1], inputs=[u]
    )
    r3 = observability_test(two3, method)
    assert r3.full_rank and all(r3.identifiable.values())
    # ... elimination from both compartments -> 4 rate constants, only 3 combinations identifiable
    two4 = ODEModel(
        [x1, x2],
        [k01, k02, k12, k21],
        [-(k01 + k21) * x1 + k12 * x2 + u, k21 * x1 - (k02 + k12) * x2],
        [x1],
        inputs=[u],
    )
    r4 = observability_test(two4, method)
    assert r4.rank == 5 and not any(r4.identifiable.values()) and r4.observable == {"x1": True, "x2": False}
    assert len(r4.null_directions) == 1 and r4.null_directions[0]["k12"] == "-1"
    # an unknown output gain c and initial value trade off; the rate stays identifiable
    r5 = observability_test(ODEModel([x], [k, c], [-k * x], [c * x]), method)
    assert r5.identifiable == {"k": True, "c": False} and r5.null_directions[0] == {
        "coords": "log",
        "x": "-1",
        "c": "1",
    }


def test_pathway_models_from_rate_expressions():
    m, missing = pathway_ode(get_pathway("mapk"), ["Z"])
    assert missing == [] and len(m.unknowns) == 10
    assert observability_test(m).full_rank  # the cascade is identifiable from active ERK alone
    n, missing = pathway_ode(get_pathway("notch"), ["N", "H"])
    assert missing == ["D_L", "lambda_L", "kappa_b"]  # field parameters leave the reduced model
    r = observability_test(n)
    assert r.rank == 19 and r.n_unknowns == 21
    assert {"k_on", "delta_N", "K_H", "alpha_H", "delta_H"} <= {p for p, ok in r.identifiable.items() if ok}
    # delta_D and sigma only enter as a sum; receptors/Delta/complex/alpha_N/k_cis share a scaling
    assert {"coords": "natural", "delta_D": "-1", "sigma": "1"} in r.null_directions
    h, _ = pathway_ode(get_pathway("notch"), ["H"])
    assert not observability_test(h).identifiable["K_H"]  # NICD unobserved: K_H scales with N
    with pytest.raises(ValueError, match="not species"):
        pathway_ode(get_pathway("notch"), ["Q"])
    with pytest.raises(ValueError, match="method"):
        observability_test(m, "magic")


@pytest.mark.slow
def test_lie_engine_agrees_on_a_notch_cell():
    """Symbolic Lie derivatives on the 5-species Notch cell with 6 unknown parameters (minutes)."""
    m, _ = pathway_ode(
        get_pathway("notch"),
        ["N", "H"],
        free=["k_on", "delta_C", "delta_N", "alpha_H", "K_H", "delta_H"],
        controls={"gsi": 0.0},
    )
    a, b = observability_test(m, "taylor"), observability_test(m, "lie")
    assert a.rank == b.rank and a.identifiable == b.identifiable
