"""The learned correction's forms: additive (bounded rate) and modulation (log-factors on the
skeleton's fluxes), each optionally gated to vanish at the cells' rest state."""

import numpy as np
import pytest
import torch

from pbhno_gym.discovery import get_design
from pbhno_gym.discovery.design import make_dataset
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

from .conftest import misspec_problem


def _model(form: str, gate: bool, inputs: str = "all") -> tuple[PBHNO, dict]:
    d = get_design("mapk_feedback", n_times=10)
    ds = make_dataset(d, 0)
    cfg = PBHNOConfig(
        env_spec=ds.meta["spec"],
        free_params=list(d.free),
        hidden=16,
        solver="rk4",
        adjoint=False,
        substeps=4,
        correction_cap=4.0,
        correction_form=form,
        gate_rest=gate,
        modulation_inputs=inputs,
        design=ds.meta["design"],
    )
    torch.manual_seed(0)
    model = PBHNO(cfg)
    with torch.no_grad():  # a trained-looking network: the zero-initialised last layer randomised
        for p in model.cells.net.parameters():
            p.normal_(0, 0.5)
    return model, ds.meta


def _inputs(model: PBHNO, x: torch.Tensor, u: torch.Tensor):
    th = model.sim.params.unpack(model.log_theta[None])
    _, inh = model.sim.split_controls(u)
    return x, None, u[:, model.sim.n_sources :], th, inh


@pytest.mark.parametrize("form", ["additive", "modulation"])
def test_gated_correction_vanishes_at_rest_under_any_control(form):
    model, _ = _model(form, gate=True)
    rest = model.initial_state(1).x  # (1, 1, 3): MAPK starts inactive
    assert torch.equal(model.cells.x_rest, rest[0].mean(0))
    u = torch.rand(5, model.sim.n_controls) * model.sim.control_high
    x = rest.expand(5, -1, -1)
    with torch.no_grad():
        c = model.cells.correction(*_inputs(model, x, u))
    assert float(c.abs().max()) < 1e-6
    x_on = torch.rand(5, 1, 3) * 0.8 + 0.1  # away from rest the correction is free
    ungated, _ = _model(form, gate=False)  # the gate is what zeroes it (fails without it)
    with torch.no_grad():
        assert float(model.cells.correction(*_inputs(model, x_on, u)).abs().max()) > 1e-3
        assert float(ungated.cells.correction(*_inputs(ungated, x, u)).abs().max()) > 1e-3


def test_modulation_acts_through_the_skeletons_fluxes():
    """Correction = sum_r v_r (m_r - 1) nu_r: zero where every flux is zero, and a factor on the
    Raf-activation flux alone reproduces the ERK feedback exactly."""
    model, _ = _model("modulation", gate=False)
    u = torch.zeros(4, model.sim.n_controls)  # no stimulus, all species inactive: no flux
    x = torch.zeros(4, 1, 3)
    with torch.no_grad():
        assert float(model.cells.correction(*_inputs(model, x, u)).abs().max()) == 0.0
    pw, K = model.pathway, 0.3
    x = torch.rand(4, 1, 3) * 0.9
    u = torch.rand(4, model.sim.n_controls) * model.sim.control_high
    xx, ell, _, th, inh = _inputs(model, x, u)
    v = pw.fluxes(xx, ell, th, inh)
    with torch.no_grad():
        m = torch.exp(
            model.cells.mod_cap * torch.tanh(model.cells._net(xx, ell, u[:, model.sim.n_sources :]))
        )
        expect = pw.drift(xx, ell, th, inh) + (v * (m - 1)) @ pw.nu(x.dtype, x.device)
        assert torch.allclose(
            model.cells.rate(xx, ell, th, inh, u[:, model.sim.n_sources :]), expect, atol=1e-5
        )
    m = torch.ones_like(v)
    m[..., 0] = 1 / (1 + (x[..., 2] / K) ** 2)
    drift = pw.drift(xx, ell, th, inh) + ((v * (m - 1)) @ pw.nu(x.dtype, x.device))
    from pbhno_gym.physics.pathways.mapk import MAPK

    fb = MAPK(feedback=True)
    th_fb = {**th, "K_fb": torch.full_like(th["k1"], K)}
    assert torch.allclose(drift, fb.drift(xx, ell, th_fb, inh), atol=1e-6)


@pytest.mark.parametrize("gate", [False, True])
def test_regulator_factors_read_only_what_their_rate_law_lacks(gate):
    """``modulation_inputs="regulators"``: d log m_r / d x_s is zero exactly where reaction r's
    skeleton rate law reads species s, and nonzero elsewhere (so Raf activation's factor can
    follow ERK, the hidden feedback, but not reshape its own X dependence); the full-input form
    depends on every species (the test fails without the mask)."""
    for inputs in ("regulators", "all"):
        model, _ = _model("modulation", gate, inputs)
        x = (torch.rand(3, 1, 3) * 0.8 + 0.1).requires_grad_(True)
        u = torch.rand(3, model.sim.n_controls) * model.sim.control_high
        g = model.cells._net(x, None, u[:, model.sim.n_sources :])  # (3, 1, R)
        jac = torch.stack(
            [torch.autograd.grad(g[..., r].sum(), x, retain_graph=True)[0] for r in range(g.shape[-1])]
        )
        reads = (jac.abs() > 0).any(1).any(1)  # (R, S)
        dep = model.pathway.rate_dependence()
        expect = ~dep if inputs == "regulators" else torch.ones_like(dep)
        assert torch.equal(reads, expect), (inputs, reads)


def test_reaction_mlp_is_one_masked_mlp_per_reaction():
    """The batched :class:`ReactionMLP` equals R separate MLPs on masked inputs, and the weights of
    masked inputs get exactly zero gradient."""
    from pbhno_gym.surrogate.reaction import ReactionMLP

    torch.manual_seed(1)
    mask = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    net = ReactionMLP(mask, hidden=8, layers=3)
    with torch.no_grad():
        net.weights[-1].normal_()
    x = torch.randn(2, 5, 4)
    out = net(x)
    assert out.shape == (2, 5, 3)
    for r in range(3):
        h = x * mask[r]
        for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            h = h @ w[r] + b[r, 0]
            h = torch.relu(h) if i < len(net.weights) - 1 else h
        torch.testing.assert_close(out[..., r], h[..., 0], rtol=1e-5, atol=1e-6)
    out.square().sum().backward()
    g0 = net.weights[0].grad  # (R, D, hidden)
    assert torch.equal(g0[~mask], torch.zeros_like(g0[~mask])) and bool((g0[mask].abs() > 0).any())


def test_regulator_model_round_trips_through_a_checkpoint(tmp_path):
    model, _ = _model("modulation", gate=True, inputs="regulators")
    x = torch.rand(2, 1, 3) * 0.8 + 0.1
    u = torch.rand(2, model.sim.n_controls) * model.sim.control_high
    loaded = PBHNO.load(model.save(tmp_path / "m.pt"))
    assert loaded.config.modulation_inputs == "regulators"
    with torch.no_grad():
        a = model.cells.correction(*_inputs(model, x, u))
        b = loaded.cells.correction(*_inputs(loaded, x, u))
    assert float(a.abs().max()) > 1e-3 and torch.equal(a, b)


def test_regulators_need_the_modulation_form():
    with pytest.raises(ValueError, match="modulation_inputs"):
        _model("additive", gate=False, inputs="regulators")
    with pytest.raises(ValueError, match="modulation_inputs"):
        _model("modulation", gate=False, inputs="substrates")


@pytest.mark.slow
def test_pbhno_recovers_k1_that_the_skeleton_map_biases_on_mapk_feedback():
    """Model error (issue 15): on ``mapk_feedback`` seed 2 the skeleton's MAP underestimates
    log k1 by 0.32 (the hidden ERK feedback's mean effect); PB-HNO with the default (gated
    modulation) correction and 40 joint epochs from that MAP removes a clear part of the bias.
    Margins: in the pilot (seeds 0-3, docs/discovery.md) |k1 error| shrank by 0.05-0.13 (0.13 on
    this seed) and the log-MAE was 0.60-0.72x the MAP's (0.63x here); with the old additive
    correction (``pbhno_additive``, same settings) the k1 error on this seed grew (0.32 -> 0.34)
    and the MAE was 1.15x the MAP's, so this fails without the change."""
    from pbhno_gym.discovery.registry import fit

    ds, free, prior, truth, skel = misspec_problem(2)
    settings = dict(
        members=1,
        epochs=40,
        patience=40,
        lr=1e-2,
        substeps=4,
        correction_cap=4.0,
        calibrate_nfev=0,
        start_log_theta=skel.log_theta,
    )
    res = fit("pbhno", ds, free, prior, seed=2, settings=settings)
    k1_skel, k1_pb = abs(skel.log_theta[0] - truth[0]), abs(res.log_theta[0] - truth[0])
    assert k1_skel > 0.25  # the bias this test is about
    assert k1_pb < k1_skel - 0.07
    assert np.abs(res.log_theta - truth).mean() < 0.8 * np.abs(skel.log_theta - truth).mean()
