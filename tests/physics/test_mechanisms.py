"""Hidden mechanisms (physics.pathways.mechanisms): registry, parameters, and the kinetics they add."""

import pytest
import torch

from pbhno_gym.physics import get_pathway
from pbhno_gym.physics.pathways import MECHANISMS, get_mechanism, with_mechanisms


def _world(pathway: str, mech: str):
    base = get_pathway(pathway)
    return base, with_mechanisms(base, [mech])


@pytest.mark.parametrize(("pathway", "mech"), [(p, m) for p, ms in MECHANISMS.items() for m in ms])
def test_world_extends_the_skeleton(pathway, mech):
    base, world = _world(pathway, mech)
    assert isinstance(world, type(base)) and world.name == f"{pathway}+{mech}"
    assert world.params.names[: len(base.params)] == base.params.names
    assert world.params.names[len(base.params) :] == tuple(
        p.name for p in get_mechanism(pathway, mech).params
    )
    assert world.species == base.species and world.reactions == base.reactions
    assert base.params.names == get_pathway(pathway).params.names  # the base is left untouched
    # destruction_coefficients needs consuming fluxes linear in what they consume
    th = world.params.unpack(world.params.log_theta(dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    x = 0.1 + torch.rand(3, 2, len(world.species), generator=g, dtype=torch.float64)
    x = x if pathway == "mapk" else 10 * x
    ell = None if pathway == "mapk" else torch.rand(3, 2, generator=g, dtype=torch.float64)
    u = world.inhibitor_dict(torch.rand(3, len(world.inhibitors), generator=g, dtype=torch.float64), 3, x)
    direct = (world.fluxes(x, ell, th, u) @ (-world.nu(x.dtype, x.device)).clamp_min(0)) / x
    assert torch.allclose(world.destruction_coefficients(x, ell, th, u), direct, rtol=1e-12)
    # the mechanism changes the kinetics or the field sink
    th0 = base.params.unpack(base.params.log_theta(dtype=torch.float64))
    changed = not torch.allclose(world.drift(x, ell, th, u), base.drift(x, ell, th0, u))
    changed |= not torch.allclose(world.uptake(x, th, u), base.uptake(x, th0, u))
    assert changed


def test_wnt_sink_is_k_fb_times_target():
    base, world = _world("wnt", "ligand_sink")
    th = world.params.unpack(world.params.log_theta(dtype=torch.float64))
    x = torch.rand(2, 3, 4, dtype=torch.float64) * 20
    u = world.inhibitor_dict(None, 2, x)
    extra = world.uptake(x, th, u) - base.uptake(x, th, u)
    torch.testing.assert_close(extra, th["k_fb"] * x[..., 3])
    ell = torch.rand(2, 3, dtype=torch.float64)
    torch.testing.assert_close(world.drift(x, ell, th, u), base.drift(x, ell, th, u))  # cells: unchanged


def test_unknown_or_repeated_mechanism_refused():
    with pytest.raises(ValueError, match="unknown mechanism 'x'.*ligand_sink"):
        with_mechanisms(get_pathway("wnt"), ["x"])
    with pytest.raises(ValueError, match="twice"):
        with_mechanisms(get_pathway("wnt"), ["ligand_sink", "ligand_sink"])
    assert with_mechanisms(get_pathway("notch"), []).name == "notch"


EQUIVALENT = {  # every registered hidden mechanism as a member of a candidate family
    ("mapk", "erk_feedback"): ("regulation:X_activation:Z:repress:2", "K_fb"),
    ("notch", "hes_autorepression"): ("regulation:H_synthesis:H:repress:2", "K_auto"),
    ("wnt", "ligand_sink"): ("uptake:T", "k_fb"),
}


def test_every_registered_mechanism_is_in_the_candidate_library():
    """Mechanism distillation can only find what its library holds: each registered hidden
    mechanism equals a ``regulation:`` or ``uptake:`` candidate at the same parameter value
    (fluxes and uptake to round-off), so the library contains every mechanism we ship."""
    assert set(EQUIVALENT) == {(p, m) for p, ms in MECHANISMS.items() for m in ms}
    g = torch.Generator().manual_seed(1)
    for (pathway, mech), (cand, param) in EQUIVALENT.items():
        base, world = _world(pathway, mech)
        twin = with_mechanisms(base, [cand])
        value = get_mechanism(pathway, mech).params[0].nominal
        th_w = world.params.unpack(world.params.log_theta(dtype=torch.float64)[None])
        (k,) = get_mechanism(pathway, cand).params
        th_t = twin.params.unpack(twin.params.log_theta({k.name: value}, torch.float64)[None])
        assert world.params.names[-1] == param
        x = (0.1 + torch.rand(3, 2, len(base.species), generator=g, dtype=torch.float64)) * (
            1 if pathway == "mapk" else 20
        )
        ell = None if pathway == "mapk" else torch.rand(3, 2, generator=g, dtype=torch.float64)
        u = base.inhibitor_dict(torch.rand(3, len(base.inhibitors), generator=g, dtype=torch.float64), 3, x)
        torch.testing.assert_close(
            twin.fluxes(x, ell, th_t, u), world.fluxes(x, ell, th_w, u), rtol=1e-14, atol=0
        )
        torch.testing.assert_close(twin.uptake(x, th_t, u), world.uptake(x, th_w, u), rtol=1e-14, atol=0)
        assert not torch.allclose(
            twin.drift(x, ell, th_t, u), base.drift(x, ell, th_w, u)
        ) or not torch.allclose(twin.uptake(x, th_t, u), base.uptake(x, th_w, u))


def test_activating_regulation_multiplies_its_flux_alone():
    base = get_pathway("mapk")
    act = with_mechanisms(base, ["regulation:X_activation:Z:activate:2"])
    assert act.params.names[-1] == "K_Z_X_activation"
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 2, 3, generator=g, dtype=torch.float64)
    u = base.inhibitor_dict(torch.rand(4, 2, generator=g, dtype=torch.float64), 4, x)
    th = act.params.unpack(act.params.log_theta({"K_Z_X_activation": 0.3}, torch.float64)[None])
    v0 = base.fluxes(x, None, base.params.unpack(base.params.log_theta(dtype=torch.float64)[None]), u)
    v = act.fluxes(x, None, th, u)
    torch.testing.assert_close(v[..., 0], v0[..., 0] * (1 + (x[..., 2] / 0.3) ** 2), rtol=1e-14, atol=0)
    assert torch.equal(v[..., 1:], v0[..., 1:])
    assert bool(act.rate_dependence()[0, 2]) and not bool(base.rate_dependence()[0, 2])


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("regulation:X_act:Z:repress:2", "no reaction 'X_act'"),
        ("regulation:X_activation:Q:repress:2", "no species 'Q'"),
        ("regulation:X_activation:Z:inhibit:2", "effect"),
        ("regulation:X_activation:Z:repress:0", "Hill exponent"),
        ("regulation:X_activation:Z", "expected regulation:"),
        ("uptake:X", "no ligand field"),
    ],
)
def test_bad_candidate_regulation_names_say_what_is_wrong(name, match):
    with pytest.raises(ValueError, match=match):
        get_mechanism("mapk", name)


def test_env_specs_accept_candidate_regulations_and_name_bad_ones():
    from pbhno_gym.envs.spec import SpecError, load_spec

    spec = load_spec("pbhno/MAPK-v0", {"mechanisms": ["regulation:X_activation:Z:repress:2"]})
    assert spec.mechanisms == ("regulation:X_activation:Z:repress:2",)
    with pytest.raises(SpecError, match="spec.mechanisms: .*no species 'Q'"):
        load_spec("pbhno/MAPK-v0", {"mechanisms": ["regulation:X_activation:Q:repress:2"]})
    with pytest.raises(SpecError, match="spec.mechanisms: unknown mechanism 'nope'"):
        load_spec("pbhno/MAPK-v0", {"mechanisms": ["nope"]})
