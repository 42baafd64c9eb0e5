"""PB-HNO with the field in its lowest cosine modes (PBHNOConfig.field_modes, surrogate/modal.py):
with every mode kept it is the grid model, its residuals are the grid's (Parseval), its gradients
are right, and it saves and loads."""

import math

import pytest
import torch

from pbhno_gym.envs.spec import load_spec
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

from .conftest import small_wnt_model

SPEC = load_spec("pbhno/Wnt-v1", overrides={"layout": {"ny": 32, "nx": 32}, "horizon": 8})


def _model(field_modes=None, seed=0, **kw) -> PBHNO:
    return small_wnt_model(SPEC, field_modes, seed, **kw)


def _controls(model: PBHNO, B: int, T: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(B, T, model.n_controls, generator=g, dtype=torch.float64) * model.control_high


@pytest.mark.parametrize("field_substeps", [1, 2])
def test_every_mode_kept_is_the_grid_model(field_substeps):
    """Untrained (identity coupling, zero correction) and with all 32 x 32 modes, the modal model
    is the same scheme as the grid model, whose field stays positive here (no clamp acts): states,
    measurements and the physics residuals agree to float64 round-off over 6 control steps."""
    grid = _model(None, field_substeps=field_substeps)
    red = _model(32, field_substeps=field_substeps)
    U = _controls(grid, 3, 6)
    zg, zr = grid.initial_state(3), red.initial_state(3)
    assert zr.L.shape == (3, 32, 32) and zr.L.abs().max() == 0
    for t in range(U.shape[1]):
        ag, ar = {}, {}
        zg, zr = grid.step(zg, U[:, t], aux=ag), red.step(zr, U[:, t], aux=ar)
        # the modal field is not clamped: it dips below zero only by round-off where the grid's
        # clamp acts (far from the source), so the schemes must coincide
        assert float(red.grid_state(zr).L.detach().min()) > -1e-12
    scale = float(zg.L.detach().abs().max())
    assert scale > 1.0  # the ligand moved
    assert torch.allclose(red.grid_state(zr).L, zg.L, rtol=0, atol=1e-11 * scale)
    assert torch.allclose(zr.x, zg.x, rtol=1e-11, atol=1e-11)
    assert torch.allclose(red.measure(zr), grid.measure(zg), rtol=1e-11, atol=1e-11)
    for k in ("pde", "op"):
        assert float(torch.stack(ar[k]).abs().max()) == 0 == float(torch.stack(ag[k]).abs().max())


def test_truncated_model_is_cheaper_in_state_and_close_to_the_grid_model():
    """8 x 8 modes: the state holds 64 numbers per field instead of 1,024, and with the field
    smooth away from the membranes the phenotype stays within a few percent of the grid model's."""
    grid, red = _model(None), _model(8)
    U = _controls(grid, 2, 8)
    _, ph_g = grid.rollout(grid.initial_state(2), U)
    states, ph_r = red.rollout(red.initial_state(2), U)
    assert states[-1].L.shape == (2, 8, 8)
    rel = float((ph_r - ph_g).norm() / ph_g.norm())
    assert 0 < rel < 0.05


def test_field_residual_and_averaging_regulariser_are_the_grid_quantities():
    """Parseval: the modal PDE residual is the mean over grid pixels of the decoded correction
    (over ls^2), and ||A - A_geom||_F^2 of the modal averaging is that of the decoded operator."""
    red = _model(8)
    torch.manual_seed(3)
    with torch.no_grad():
        red.fno.out.weight.normal_(0, 0.3)
        red.fno.out.bias.normal_(0, 0.3)
        red.averaging.weight.normal_(0, 0.2)
    U = _controls(red, 2, 1)
    z0 = red.initial_state(2)
    z1 = red.step(z0, U[:, 0])
    aux: dict = {}
    z1 = red.step(z1, U[:, 0], aux=aux)  # a step from a non-zero field
    red_none = _model(8, pde_block="none")
    red_none.load_state_dict(red.state_dict(), strict=False)  # same coupling weights
    etd = red_none.step(red.step(z0, U[:, 0]), U[:, 0])
    diff = red.reduced.decode(z1.L) - red.reduced.decode(etd.L)
    ls = float(red.config.scales["L"])
    expect = ((diff / ls) ** 2).flatten(1).mean(1)
    assert float(expect.min()) > 0
    assert torch.allclose(aux["pde"][0], expect, rtol=1e-10, atol=0)
    # the averaging operator as a (N, H W) matrix: A_r diag(1 + w) Phi^T
    r = red.reduced
    eye = torch.eye(64, dtype=torch.float64).reshape(64, 8, 8)
    a_learned = red.averaging.a_r @ torch.diag(1 + red.averaging.weight.flatten())
    phi_t = r.decode(eye).reshape(64, -1)  # (m, H W)
    d = (a_learned - red.averaging.a_r) @ phi_t
    assert torch.allclose(red.averaging.regularizer(), (d**2).sum(), rtol=1e-12)


def test_gradient_wrt_theta_and_modal_weights_matches_central_differences():
    """float64: d(phenotype sum after 3 steps)/d(log D_L) and d/d(boundary weight) by autograd
    against central differences."""
    red = _model(8)
    with torch.no_grad():
        red.fno.out.weight.normal_(0, 0.1)
    U = _controls(red, 2, 3)

    def loss() -> torch.Tensor:
        _, ph = red.rollout(red.initial_state(2), U)
        return ph[:, -1].sum()

    red.zero_grad()
    loss().backward()
    j = red.free_names.index("D_L")
    g_theta = float(red.log_theta_free.grad[j])
    g_w = float(red.boundary.weight.grad[0, 0])
    eps = 1e-5
    for param, idx, g in ((red.log_theta_free, (j,), g_theta), (red.boundary.weight, (0, 0), g_w)):
        with torch.no_grad():
            param[idx] += eps
            hi = float(loss())
            param[idx] -= 2 * eps
            lo = float(loss())
            param[idx] += eps
        fd = (hi - lo) / (2 * eps)
        assert abs(fd) > 1e-6
        assert math.isclose(g, fd, rel_tol=1e-5, abs_tol=1e-9)


def test_checkpoint_round_trip_and_bad_field_modes(tmp_path):
    red = _model(8)
    with torch.no_grad():
        red.fno.out.weight.normal_(0, 0.1)
    path = red.save(tmp_path / "m.pt")
    back = PBHNO.load(path)
    assert back.config.field_modes == 8 and back.reduced.modes == (8, 8)
    U = _controls(red, 1, 3)
    _, a = red.rollout(red.initial_state(1), U)
    _, b = back.rollout(back.initial_state(1), U)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="field_modes"):
        _model(40)  # more modes than the 32 x 32 grid
    with pytest.raises(ValueError, match="field_modes.*no ligand field"):
        PBHNO(PBHNOConfig(env_spec=load_spec("pbhno/MAPK-v0").to_dict(), field_modes=4))
