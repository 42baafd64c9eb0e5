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
