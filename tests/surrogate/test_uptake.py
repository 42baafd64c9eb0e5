"""The learned uptake factor (PBHNOConfig.learn_uptake): a missing cell-state-dependent ligand
sink becomes learnable, the untrained model is the skeleton, and at rest the uptake is theta's."""

import pytest
import torch

from pbhno_gym.envs.spec import load_spec
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

from .conftest import small_wnt_model

SPEC = load_spec("pbhno/Wnt-v1", overrides={"layout": {"ny": 24, "nx": 24}, "horizon": 6})


def _model(learn_uptake: bool, field_modes=None) -> PBHNO:
    return small_wnt_model(SPEC, field_modes, learn_uptake=learn_uptake)


def _rollout(model: PBHNO) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    u = torch.rand(2, 6, model.n_controls, generator=g, dtype=torch.float64) * model.control_high
    with torch.no_grad():
        states, _ = model.rollout(model.initial_state(2), u)
    return torch.stack([z.x for z in states]), torch.stack([z.L for z in states])


@pytest.mark.parametrize("field_modes", [None, 6])
def test_untrained_uptake_factor_is_the_skeleton_and_a_trained_one_changes_the_field(field_modes):
    base, learned = _model(False, field_modes), _model(True, field_modes)
    assert base.cells.uptake_net is None and learned.cells.uptake_net is not None
    x0, L0 = _rollout(base)
    x1, L1 = _rollout(learned)
    assert torch.equal(x0, x1) and torch.equal(L0, L1)  # zero-initialised last layer: exactly the skeleton
    with torch.no_grad():
        for p in learned.cells.uptake_net.parameters():
            p.normal_(0, 0.5)
    x = _rollout(learned)[0][-1]
    with torch.no_grad():
        fac = learned.cells.uptake_factor(x)
        at_rest = learned.cells.uptake_factor(learned.cells.x_rest.expand_as(x))
    assert fac.shape == x.shape[:-1]
    assert torch.allclose(at_rest, torch.ones_like(fac), atol=1e-12)
    assert float((fac - 1).abs().max()) > 1e-3  # away from rest the factor acts
    _, L2 = _rollout(learned)
    assert float((L2 - L0).abs().max()) > 1e-6 * float(L0.abs().max())  # and the field sees it


def test_uptake_factor_without_a_field_is_refused_by_name():
    spec = load_spec("pbhno/MAPK-v0")
    with pytest.raises(ValueError, match="learn_uptake"):
        PBHNO(PBHNOConfig(env_spec=spec.to_dict(), solver="rk4", adjoint=False, learn_uptake=True))
    m = PBHNO(PBHNOConfig(env_spec=spec.to_dict(), solver="rk4", adjoint=False))
    assert m.cells.uptake_net is None and m.cells.uptake_factor(torch.zeros(1, 1, 3)) is None


def test_regulator_gate_is_one_without_regulators_and_reads_the_uptake_law():
    """``uptake_gate="regulators"``: the species the skeleton's uptake law reads are found from its
    Jacobian (Wnt: kappa_b k_on R reads R only), and the factor is one wherever the others are zero,
    whatever R is, so kappa_b keeps its meaning; the rest gate is not one there."""
    gated = small_wnt_model(SPEC, 6, learn_uptake=True, uptake_gate="regulators")
    rest = small_wnt_model(SPEC, 6, learn_uptake=True)
    names = gated.pathway.species
    assert [names[i] for i in torch.nonzero(gated.cells.uptake_reads).flatten()] == ["R"]
    assert bool(rest.cells.uptake_reads.all())  # the rest gate keeps every species (unused)
    with torch.no_grad():
        for m in (gated, rest):
            torch.manual_seed(3)
            for p in m.cells.uptake_net.parameters():
                p.normal_(0, 0.5)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, gated.n_cells, len(names), generator=g, dtype=torch.float64) * 40
    no_reg = x * gated.cells.uptake_reads.to(x.dtype)  # R as drawn, C = B = T = 0
    with torch.no_grad():
        assert torch.allclose(
            gated.cells.uptake_factor(no_reg), torch.ones(3, gated.n_cells, dtype=x.dtype), atol=1e-12
        )
        assert float((gated.cells.uptake_factor(x) - 1).abs().max()) > 1e-3
        assert float((rest.cells.uptake_factor(no_reg) - 1).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="uptake_gate"):
        small_wnt_model(SPEC, 6, learn_uptake=True, uptake_gate="zero")
