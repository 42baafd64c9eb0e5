"""Mechanism distillation (surrogate/distill.py): learned flux factors -> a named regulation ->
its MAP, chosen only where the data select it."""

import numpy as np
import pytest
import torch

from pbhno_gym.discovery import get_design
from pbhno_gym.discovery.design import make_dataset
from pbhno_gym.discovery.prior import Prior
from pbhno_gym.discovery.registry import fit
from pbhno_gym.discovery.result import FitResult
from pbhno_gym.surrogate.distill import distill, regulation_candidates
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

from .conftest import misspec_problem

FEEDBACK = "regulation:X_activation:Z:repress:2"


def _pbhno(design, ds, **over) -> PBHNO:
    """A small modulation-form PB-HNO of ``design``'s dataset ``ds`` (``over``: config fields)."""
    kw = dict(hidden=8, solver="rk4", adjoint=False, correction_form="modulation", gate_rest=True)
    cfg = PBHNOConfig(
        env_spec=ds.meta["spec"], free_params=list(design.free), design=ds.meta["design"], **{**kw, **over}
    )
    return PBHNO(cfg)


def _model(design_name: str, seed: int, learned):
    """A regulators-form PB-HNO at the data's true theta whose learned log factors are
    ``learned(x) -> (B, N, R)`` (injected in place of the networks, as if trained to them)."""
    design = get_design(design_name)
    ds = make_dataset(design, seed)
    model = _pbhno(design, ds, substeps=4, modulation_inputs="regulators")
    names = ds.meta["true_param_names"]
    truth = np.asarray(ds.meta["true_log_theta"])[[names.index(n) for n in design.free]]
    with torch.no_grad():
        model.log_theta_free.copy_(torch.as_tensor(truth, dtype=model.dtype))
    cap = model.cells.mod_cap
    model.cells._net = lambda x, ell, u: torch.atanh(learned(x) / cap)
    return model, ds, design, truth


def _feedback(x):  # ERK's repression of Raf activation at K = 0.3: the hidden mechanism's factor
    g = torch.zeros(*x.shape[:-1], 6, dtype=x.dtype)
    g[..., 0] = -torch.log1p((x[..., 2] / 0.3) ** 2)
    return g


def test_candidates_name_the_regulation_the_factors_follow():
    """Factors that are exactly ERK's feedback on Raf activation rank that regulation first,
    with K within the grid's spacing of 0.3 and all of the factors' weighted variance explained.
    Active MEK (Y) tracks ERK along these trajectories, so Y's repression explains ~98% too: the
    reason candidates are refitted by MAP rather than picked here."""
    model, ds, _, _ = _model("mapk_feedback", 0, _feedback)
    cands = regulation_candidates(model, ds)
    best = cands[0]
    assert best.name == FEEDBACK and (best.reaction, best.species, best.effect, best.n) == (
        "X_activation",
        "Z",
        "repress",
        2,
    )
    assert abs(np.log(best.K / 0.3)) < np.log(10) * 3 / 48  # one grid step (49 points over 1e3)
    assert best.r2 > 0.999
    assert best.r2 > max(c.r2 for c in cands[1:])
    # every candidate reads a species its reaction's rate law lacks
    dep = model.pathway.rate_dependence()
    for c in cands:
        r, s = model.pathway.reactions.index(c.reaction), model.pathway.species_index[c.species]
        assert not bool(dep[r, s])


def test_distill_refits_the_named_regulation_to_the_correct_models_accuracy():
    """On ``mapk_feedback`` (seed 0) the distilled structure is selected over the skeleton, its
    MAP's log-MAE is within 1.3x the correct model's (the issue's bar; 1.04x measured), its K
    interval holds 0.3, and its forecasts are the generator's at the same parameters."""
    model, ds, design, truth = _model("mapk_feedback", 0, _feedback)
    free = design.free
    prior = Prior.from_meta(ds.meta, free)
    hybrid = FitResult("pbhno_distill", tuple(free), prior.mean.copy(), cov=np.diag(prior.sd**2))
    res = distill(hybrid, [model], ds, free, prior, top=2)
    assert res.meta["mechanism"] == FEEDBACK
    assert res.meta["skeleton_cost"] - res.meta["cost"] > res.meta["bic_threshold"]
    gen = fit("map", ds, free, prior, seed=0, settings={"n_starts": 3, "max_nfev": 30, "jac_mode": "fd"})
    mae, mae_gen = np.abs(res.log_theta - truth).mean(), np.abs(gen.log_theta - truth).mean()
    assert mae <= 1.3 * mae_gen, (mae, mae_gen)
    assert abs(np.log(res.meta["K"] / 0.3)) < 3 * res.meta["K_sd_log"]
    lo, hi = res.intervals()
    assert np.all(lo < res.log_theta) and np.all(res.log_theta < hi)
    # the distilled predictor is the generator's simulator (same kinetics) at (theta, K)
    from pbhno_gym.discovery.predictors import MechanisticPredictor

    names = res.predictor.names
    assert names == (*free, "K_Z_X_activation")
    twin = MechanisticPredictor((*free, "K_fb"), res.predictor.log_theta)
    np.testing.assert_allclose(res.predictor.forecast(ds), twin.forecast(ds), rtol=1e-10, atol=1e-12)


def test_distill_keeps_the_hybrid_where_the_data_have_no_regulation():
    """Well-specified data (``mapk_tiny``, no hidden mechanism) and factors that claim a feedback
    (as over-fitted networks might): no candidate beats the skeleton by BIC's margin, so the
    hybrid's own estimate, intervals and predictor come back unchanged."""
    model, ds, design, _ = _model("mapk_tiny", 0, _feedback)
    free = design.free
    prior = Prior.from_meta(ds.meta, free)
    hybrid = FitResult("pbhno_distill", tuple(free), prior.mean + 0.01, cov=np.diag(prior.sd**2))
    hybrid.predictor = object()
    res = distill(hybrid, [model], ds, free, prior, top=2)
    assert res.meta["mechanism"] is None
    assert res.meta["candidates"][0]["name"] == FEEDBACK  # proposed, then rejected by the data
    best = min(c["cost"] for c in res.meta["candidates"])
    assert res.meta["skeleton_cost"] - best < res.meta["bic_threshold"]
    assert np.array_equal(res.log_theta, hybrid.log_theta) and np.array_equal(res.cov, hybrid.cov)
    assert res.predictor is hybrid.predictor


def test_distill_needs_a_modulation_and_a_design():
    model, ds, design, _ = _model("mapk_feedback", 0, _feedback)
    prior = Prior.from_meta(ds.meta, design.free)
    hybrid = FitResult("x", tuple(design.free), prior.mean)
    with pytest.raises(ValueError, match="top"):
        distill(hybrid, [model], ds, design.free, prior, top=0)
    with pytest.raises(ValueError, match="distill_top"):
        fit("pbhno_distill", ds, design.free, prior, settings={"distill_top": 0})
    model.cells.form = "additive"
    with pytest.raises(ValueError, match="modulation"):
        regulation_candidates(model, ds)


def test_uptake_candidates_name_the_sink_the_factor_follows():
    """A learned uptake factor that is exactly the hidden target-induced sink (``1 + k_fb T /
    upt`` on the Wnt skeleton's uptake; experiments without antagonist, which a factor of the
    cell state alone could not follow) ranks ``uptake:T`` first with k within a grid step of
    k_fb and all of the factor's weighted variance explained; only species the uptake law does
    not read are proposed."""
    from pbhno_gym.surrogate.distill import uptake_candidates

    design = get_design("wnt_sink").replace(controls=("ligand_source",))
    ds = make_dataset(design, 0)
    model = _pbhno(design, ds, learn_uptake=True, field_modes=16, field_substeps=2)
    th = model.sim.params.unpack(model.log_theta)
    k_fb = 5e-4

    def factor(x):
        R, T = x[..., 0], x[..., 3]
        return 1 + k_fb * T / (th["kappa_b"] * th["k_on"] * R).clamp_min(1e-12)

    model.cells.uptake_factor = factor
    cands = uptake_candidates(model, ds)
    assert [c.species for c in cands][0] == "T" and {c.species for c in cands} == {"C", "B", "T"}
    best = cands[0]
    assert best.name == "uptake:T" and abs(np.log(best.K / k_fb)) < np.log(10) * 4 / 48
    assert best.r2 > 0.999 and best.r2 > max(c.r2 for c in cands[1:])


@pytest.mark.slow
def test_pbhno_distill_finds_the_hidden_feedback_from_trained_networks():
    """End to end on ``mapk_feedback`` seed 0 with ``scripts/misspec.py``'s quick settings but one
    member: the trained networks' factors put the true regulation among the refitted candidates
    and the data select it; log-MAE within 1.3x the correct model's (20 seeds: 1.05x)."""
    ds, free, prior, truth, skel = misspec_problem(0)
    gen = fit("map", ds, free, prior, seed=0, settings={"n_starts": 3, "max_nfev": 30, "jac_mode": "fd"})
    settings = dict(
        members=1,
        epochs=4,
        patience=4,
        optimizer="lbfgs",
        lbfgs_iters=5,
        alternate_nfev=10,
        calibrate_nfev=20,
        intervals="laplace",
        substeps=4,
        correction_cap=4.0,
        start_log_theta=skel.log_theta,
    )
    res = fit("pbhno_distill", ds, free, prior, seed=0, settings=settings)
    assert res.meta["mechanism"] == FEEDBACK
    assert FEEDBACK in [c["name"] for c in res.meta["candidates"]]
    mae, mae_gen = np.abs(res.log_theta - truth).mean(), np.abs(gen.log_theta - truth).mean()
    assert mae <= 1.3 * mae_gen, (mae, mae_gen)
    fc = res.predictor.forecast(ds)
    assert fc.shape == ds["meas_values"].shape and np.isfinite(fc).all()
