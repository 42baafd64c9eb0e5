"""Batched kinetics (``Pathway.kinetics``, ``fluxes``) equal the per-reaction formulation they replace.

The reference (``benchmarks.kinetics.reference_kinetics``) is the former implementation: one
rate-law evaluation per consumed species, each flux broadcast and stacked in Python, destruction
coefficients summed per reaction. Both
evaluate the same rate expressions on the same numbers, so they may differ only in the order of
the few additions per species: tolerances are a handful of ulps of the dtype.
"""

from __future__ import annotations

import pytest
import torch

from pbhno_gym.benchmarks.kinetics import per_reaction_kinetics, reference_kinetics
from pbhno_gym.physics import Simulator, get_pathway
from pbhno_gym.physics.geometry import Grid, no_field, two_cell
from pbhno_gym.physics.pathways import MECHANISMS, PATHWAYS, Pathway, with_mechanisms

KINETICS = [(name, ()) for name in PATHWAYS] + [(p, (m,)) for p, ms in MECHANISMS.items() for m in ms]


def _pathway(name, mechs):
    return with_mechanisms(get_pathway(name), mechs)


def _inputs(pw, dtype, B=3, N=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    scale = 1.0 if pw.upper_bound == 1.0 else 20.0
    x = scale * torch.rand(B, N, len(pw.species), generator=g, dtype=dtype)
    x[0, 0] = 0.0  # exact zeros, as at rest
    ell = None if not pw.has_field else 5 * torch.rand(B, N, generator=g, dtype=dtype)
    lt = pw.params.log_nominal(dtype) + 0.3 * torch.randn(B, len(pw.params), generator=g, dtype=dtype)
    hi = torch.tensor([c.high for c in pw.inhibitors], dtype=dtype)
    u = hi * torch.rand(B, len(pw.inhibitors), generator=g, dtype=dtype)
    return x, ell, lt, u


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("name", "mechs"), KINETICS)
def test_batched_kinetics_equal_reference(name, mechs, dtype):
    pw = _pathway(name, mechs)
    x, ell, lt, u_inh = _inputs(pw, dtype)
    th, u = pw.params.unpack(lt), pw.inhibitor_dict(u_inh, x.shape[0], x)
    v0, p0, d0 = reference_kinetics(pw, x, ell, th, u)
    p1, d1 = pw.kinetics(x, ell, th, u)
    v1 = pw.fluxes(x, ell, th, u)
    eps = torch.finfo(dtype).eps
    for new, ref in ((v1, v0), (p1, p0), (d1, d0)):
        assert new.shape == ref.shape and new.dtype == dtype
        # a few additions per entry: 4 ulps of the entry, or of the largest term for cancellation
        torch.testing.assert_close(new, ref, rtol=4 * eps, atol=4 * eps * float(ref.abs().max()))
    torch.testing.assert_close(pw.destruction_coefficients(x, ell, th, u), d1, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, raised while importing dynamo
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("name", "mechs"), KINETICS)
def test_traced_kinetics_equal_reference(name, mechs, dtype):
    """Under torch.compile the table is applied flux by flux (one fusible expression instead of a
    stack and a matmul); traced (dynamo, eager backend: that branch's arithmetic, no codegen) it
    equals the reference within the same few ulps."""
    import torch._dynamo

    pw = _pathway(name, mechs)
    x, ell, lt, u_inh = _inputs(pw, dtype)
    th, u = pw.params.unpack(lt), pw.inhibitor_dict(u_inh, x.shape[0], x)
    _, p0, d0 = reference_kinetics(pw, x, ell, th, u)
    pw.kinetics(x, ell, th, u)  # builds the cached tables eagerly, as the simulators do
    torch._dynamo.reset()
    seen = []

    def traced(x, ell, th, u):
        seen.append(torch.compiler.is_compiling())
        return pw.kinetics(x, ell, th, u)

    p1, d1 = torch.compile(traced, backend="eager", fullgraph=True)(x, ell, th, u)
    assert seen == [True]  # the compiled branch ran, traced once
    eps = torch.finfo(dtype).eps
    for new, ref in ((p1, p0), (d1, d0)):
        assert new.shape == ref.shape and new.dtype == dtype
        torch.testing.assert_close(new, ref, rtol=4 * eps, atol=4 * eps * float(ref.abs().max()))


@pytest.mark.parametrize(("name", "mechs"), KINETICS)
def test_batched_kinetics_gradients(name, mechs):
    """float64: autograd of the batched kinetics equals the reference's, and central differences."""
    pw = _pathway(name, mechs)
    x, ell, lt, u_inh = _inputs(pw, torch.float64, B=2, N=2, seed=1)
    x = x + 0.05  # away from the exact zeros, where central differences would leave the domain
    field = ell is not None

    def run(impl, x, lt, u_inh, *rest):
        th, u = pw.params.unpack(lt), pw.inhibitor_dict(u_inh, x.shape[0], x)
        e = rest[0] if field else None
        if impl == "ref":
            _, p, d = reference_kinetics(pw, x, e, th, u)
        else:
            p, d = pw.kinetics(x, e, th, u)
        return p, d

    args = [a.clone().requires_grad_(True) for a in (x, lt, u_inh) + ((ell,) if field else ())]
    w = torch.rand(2, *x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    grads = []
    for impl in ("ref", "new"):
        p, d = run(impl, *args)
        grads.append(torch.autograd.grad((w[0] * p).sum() + (w[1] * d).sum(), args))
    for gn, gr in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(gn, gr, rtol=1e-13, atol=1e-13 * float(gr.abs().max()))
    assert torch.autograd.gradcheck(lambda *a: run("new", *a), tuple(args), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize(("name", "mechs"), KINETICS)
def test_simulator_step_unchanged(name, mechs):
    """Three control steps through the batched kinetics and through the reference agree to round-off
    (float64), batched with per-row parameters and controls."""
    pw = _pathway(name, mechs)
    if pw.has_field:
        sim = Simulator(pw, two_cell(Grid(12, 12, 48.0), cell_size=16, gap=4), 10.0, substeps=8,
                        max_stiffness=1e9, dtype=torch.float64)  # fmt: skip
    else:
        sim = Simulator(pw, no_field(), 1.0, substeps=4, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    dlt = 0.2 * torch.randn(3, len(pw.params), generator=g, dtype=torch.float64)
    lt = sim.log_theta().expand(3, -1) + dlt
    u = sim.control_low + (sim.control_high - sim.control_low) * torch.rand(
        3, sim.n_controls, generator=g, dtype=torch.float64
    )

    def roll():
        st = sim.initial_state(lt)
        for _ in range(3):
            st = sim.step(st, u, lt)
        return st

    new = roll()
    with per_reaction_kinetics():
        ref = roll()
    torch.testing.assert_close(new.x, ref.x, rtol=1e-12, atol=1e-12 * float(ref.x.abs().max()))
    if ref.L is not None:
        torch.testing.assert_close(new.L, ref.L, rtol=1e-12, atol=1e-12 * float(ref.L.abs().max()))


def test_per_reaction_switch_restores():
    new = Pathway.kinetics
    with per_reaction_kinetics():
        assert Pathway.kinetics is not new
    assert Pathway.kinetics is new


@pytest.mark.parametrize(("name", "mechs"), [k for k in KINETICS if get_pathway(k[0]).has_field])
def test_membrane_terms_equal_uptake_and_emission(name, mechs):
    pw = _pathway(name, mechs)
    x, _, lt, u_inh = _inputs(pw, torch.float64)
    th, u = pw.params.unpack(lt), pw.inhibitor_dict(u_inh, x.shape[0], x)
    up, em = pw.membrane_terms(x, th, u)
    torch.testing.assert_close(up, pw.uptake(x, th, u), rtol=0, atol=0)
    ref = pw.emission(x, th, u)
    if em is None:  # nothing emitted: the simulator skips the zero source
        assert not ref.any()
    else:
        torch.testing.assert_close(em, ref, rtol=0, atol=0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, raised while importing dynamo
@pytest.mark.parametrize("mechs", [(), ("erk_feedback",)])
def test_mapk_step_compiles_as_one_graph(mechs):
    """torch.compile sees a whole MAPK control step: no .item(), no data-dependent branch (~10 s)."""
    import torch._dynamo

    from pbhno_gym.physics.simulator import SimState

    sim = Simulator(_pathway("mapk", mechs), no_field(), 1.0, substeps=4)
    lt = sim.log_theta().expand(3, -1)
    st = sim.initial_state(lt)
    u = (0.5 * sim.control_high).expand(3, -1)

    def step(x, u, lt):
        return sim.step(SimState(x, None, torch.zeros(x.shape[0])), u, lt).x

    torch._dynamo.reset()
    ex = torch._dynamo.explain(step)(st.x, u, lt)
    assert ex.graph_count == 1 and ex.graph_break_count == 0, [b.reason for b in ex.break_reasons]


@pytest.mark.parametrize(("name", "mechs"), KINETICS)
def test_rate_dependence_is_the_jacobians_sparsity(name, mechs):
    """``Pathway.rate_dependence`` (read symbolically) marks exactly the species whose flux
    derivative is nonzero at random interior states (float64 autograd): a missed dependence would
    let a learned regulation reshape a rate law in its own substrates, an extra one would hide a
    regulator from it."""
    base = get_pathway(name)
    base.rate_dependence()  # a world built from it shares its caches: must not get this answer
    pw = with_mechanisms(base, mechs)
    x, ell, lt, u_inh = _inputs(pw, torch.float64, B=3, N=2, seed=2)
    x = x + 0.05 * x.max()  # strictly inside: no exact zero where a derivative could vanish
    if pw.upper_bound == 1.0:
        x = x.clamp(max=0.95)
    u_inh = u_inh + 0.05 * u_inh.new_tensor([c.high for c in pw.inhibitors])
    th, u = pw.params.unpack(lt), pw.inhibitor_dict(u_inh, x.shape[0], x)
    x.requires_grad_(True)
    v = pw.fluxes(x, ell, th, u)  # (B, N, R): each cell's fluxes read its own state only
    jac = torch.stack(
        [torch.autograd.grad(v[..., r].sum(), x, retain_graph=True)[0] for r in range(v.shape[-1])]
    )
    nonzero = (jac.abs() > 0).any(1).any(1)  # (R, S)
    dep = pw.rate_dependence()
    assert dep.shape == (len(pw.reactions), len(pw.species)) and dep.dtype == torch.bool
    assert torch.equal(dep, nonzero), (pw.reactions, dep, nonzero)


@pytest.mark.parametrize(("name", "mechs"), [k for k in KINETICS if get_pathway(k[0]).has_field])
def test_uptake_dependence_is_the_jacobians_sparsity(name, mechs):
    """``Pathway.uptake_dependence`` (symbolic) marks exactly the species whose uptake derivative is
    nonzero at random interior states: the skeleton's law reads its receptor only, a hidden sink's
    world also the species that drives it (Wnt's ligand_sink: T)."""
    base = get_pathway(name)
    base.uptake_dependence()  # a world shares the cache dict: must not get this answer
    pw = with_mechanisms(base, mechs)
    x, _, lt, u_inh = _inputs(pw, torch.float64, B=3, N=2, seed=3)
    x = (x + 0.05 * x.max()).requires_grad_(True)
    th, u = pw.params.unpack(lt), pw.inhibitor_dict(u_inh, x.shape[0], x)
    up, _ = pw.membrane_terms(x, th, u)
    nonzero = (torch.autograd.grad(up.sum(), x)[0].abs() > 0).any(0).any(0)
    dep = pw.uptake_dependence()
    assert dep.shape == (len(pw.species),) and dep.dtype == torch.bool and bool(dep.any())
    assert torch.equal(dep, nonzero), (pw.species, dep, nonzero)
    if mechs == ("ligand_sink",):
        assert dep[pw.species_index["T"]] and not base.uptake_dependence()[pw.species_index["T"]]
