"""The learned correction's forms: additive (bounded rate) and modulation (log-factors on the
skeleton's fluxes), each optionally gated to vanish at the cells' rest state."""

import numpy as np
import pytest
import torch

from pbhno_gym.discovery import get_design
from pbhno_gym.discovery.design import make_dataset
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

from .conftest import misspec_problem


def _model(form: str, gate: bool) -> tuple[PBHNO, dict]:
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
