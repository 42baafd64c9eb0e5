"""The reduced-field planning model: the full simulator when every mode is kept, its truncation
error when few are, gradients, and its use behind SimulatorModel and the oracle agent."""

from __future__ import annotations

import pytest
import torch

from pbhno_gym.control import SimulatorModel
from pbhno_gym.envs.factory import build, build_simulator
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.envs.worlds import build_world_simulator
from pbhno_gym.physics.reduced import ReducedFieldSimulator

F64 = torch.float64
SMALL = {"layout": {"nx": 24, "ny": 24}}  # 4 x 4 cells of 3+ px: the smallest Wnt tissue


def _controls(sim, B, T, seed=0, hold=4):
    """Piecewise-constant random controls (B, T, n_u) inside the bounds."""
    g = torch.Generator().manual_seed(seed)
    s = torch.rand(B, -(-T // hold), sim.n_controls, generator=g, dtype=sim.dtype).repeat_interleave(hold, 1)
    return sim.control_low + s[:, :T] * (sim.control_high - sim.control_low)


@pytest.mark.parametrize("world", [False, True], ids=["skeleton", "world with ligand sink"])
def test_all_modes_kept_is_the_full_simulator(world):
    """With my x mx = ny x nx the Galerkin model is a change of basis: same states to round-off
    (float64, 12 steps of 10 coupled sub-steps)."""
    spec = load_spec("pbhno/Wnt-Unknown-v1" if world else "pbhno/Wnt-v1", SMALL)
    sim = build_world_simulator(spec, dtype=F64) if world else build_simulator(spec, dtype=F64)
    rom = ReducedFieldSimulator(sim, 24)
    lt = sim.log_theta()
    z, zr = sim.initial_state(lt, 3), rom.initial_state(lt, 3)
    assert zr.L.shape == (3, 24, 24)
    for u in _controls(sim, 3, 12).unbind(1):
        z, zr = sim.step(z, u, lt), rom.step(zr, u, lt)
    scale = float(z.L.abs().max())
    assert scale > 1.0  # ligand has spread
    torch.testing.assert_close(zr.x, z.x, rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(rom.decode(zr.L), z.L, rtol=0, atol=1e-12 * scale)


def test_encode_decode_are_the_orthogonal_projection():
    rom = ReducedFieldSimulator(build_simulator(load_spec("pbhno/Wnt-v1", SMALL), dtype=F64), (5, 7))
    g = torch.Generator().manual_seed(1)
    c = torch.randn(2, 5, 7, generator=g, dtype=F64)
    torch.testing.assert_close(rom.encode(rom.decode(c)), c, rtol=0, atol=1e-13)
    L = torch.randn(2, 24, 24, generator=g, dtype=F64)
    r = L - rom.decode(rom.encode(L))  # the residual is orthogonal to every kept mode
    torch.testing.assert_close(rom.encode(r), torch.zeros_like(c), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="field_modes"):
        ReducedFieldSimulator(rom, 25)


def test_truncated_field_tracks_the_phenotype_of_the_full_grid():
    """Wnt-v1 at its 64 x 64 grid, 8 x 8 modes, 24 steps (4 h) of random piecewise-constant doses:
    the normalised phenotype stays within 0.03 of the full simulator's (measured 0.012 max over 48
    steps and 8 episodes, scripts/bench_reduced_field.py); 4 x 4 modes are far off (0.66)."""
    parts = build("pbhno/Wnt-v1", dtype=F64)
    sim, om = parts.sim, parts.obs_model
    U = _controls(sim, 2, 24, seed=2, hold=8)

    def phenotypes(model):
        z, out = model.initial_state(None, 2), []
        for u in U.unbind(1):
            z = model.step(z, u)
            out.append(om.phenotype(z.x))
        return torch.stack(out, 1)

    ref = phenotypes(sim)
    err = {m: float((phenotypes(ReducedFieldSimulator(sim, m)) - ref).abs().max()) for m in (8, 4)}
    assert err[8] < 0.03, err
    assert err[4] > 0.1, err  # the check can tell a bad truncation


def test_gradients_through_the_reduced_model_match_central_differences():
    rom = ReducedFieldSimulator(build_simulator(load_spec("pbhno/Wnt-v1", SMALL), dtype=F64), 6)
    lt = rom.log_theta()
    U = _controls(rom, 2, 4, seed=3).requires_grad_(True)

    def loss(U):
        z = rom.initial_state(lt, 2)
        for u in U.unbind(1):
            z = rom.step(z, u, lt)
        return (z.x * torch.arange(1.0, z.x.shape[-1] + 1, dtype=F64)).sum() + z.L.pow(2).sum() * 1e-3

    (g,) = torch.autograd.grad(loss(U), U)
    for k in [(0, 0, 0), (1, 2, 1), (0, 3, 0)]:
        h = 1e-4 * float(rom.control_high[k[2]])
        d = torch.zeros_like(U)
        d[k] = h
        fd = (loss(U.detach() + d) - loss(U.detach() - d)) / (2 * h)
        torch.testing.assert_close(g[k], fd, rtol=1e-6, atol=1e-9)


def test_simulator_model_with_field_modes_measures_and_encodes_like_the_full_one():
    """``field_modes`` swaps the planning model's field; observation channels that sample the
    field read the decoded field, and an env's full-grid state is projected for the oracle."""
    spec = load_spec("pbhno/Wnt-v1", SMALL)
    full = SimulatorModel(spec, dtype=F64)
    red = SimulatorModel(spec, dtype=F64, field_modes=24)
    assert red.reduced and not full.reduced
    z = full.initial_state(2)
    zr = red.initial_state(2)
    for u in _controls(full.sim, 2, 6, seed=4).unbind(1):
        z, zr = full.step(z, u), red.step(zr, u)
    torch.testing.assert_close(red.measure(zr), full.measure(z), rtol=1e-10, atol=1e-12)
    enc = red.encode_state(z)
    assert enc.L.shape == (2, 24, 24)
    torch.testing.assert_close(red.sim.decode(enc.L), z.L, rtol=0, atol=1e-10)
    assert full.encode_state(z) is z
    notch = SimulatorModel(load_spec("pbhno/Notch-v1"), field_modes=6)  # settles on the full grid first
    z0 = notch.initial_state(2)
    assert z0.L.shape == (2, 6, 6) and float(z0.L.abs().max()) > 0
    ref = SimulatorModel(load_spec("pbhno/Notch-v1")).initial_state(2)
    torch.testing.assert_close(z0.x, ref.x)
    torch.testing.assert_close(z0.L, notch.sim.encode(ref.L))
