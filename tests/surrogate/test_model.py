"""PB-HNO model: shapes, batching, gradients, adjoint, physics residuals, FNO boundary behaviour."""

import dataclasses

import pytest
import torch

from pbhno_gym.control import SimulatorModel
from pbhno_gym.physics.simulator import SimState
from pbhno_gym.surrogate.data import EpisodeTensors
from pbhno_gym.surrogate.fno import CosineSpectralConv2d, FNO2d
from pbhno_gym.surrogate.losses import LossWeights, objective, rollout_predictions
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

from .conftest import quick_config


def test_cosine_spectral_layer_is_mirror_equivariant_and_keeps_low_modes():
    torch.manual_seed(0)
    layer = CosineSpectralConv2d(2, 3, modes=5)
    x = torch.rand(2, 2, 16, 12)
    y = layer(x)
    assert y.shape == (2, 3, 16, 12)
    assert torch.allclose(layer(x.flip(-1)), y.flip(-1), atol=1e-6)  # zero flux at the walls
    assert torch.allclose(layer(x.flip(-2)), y.flip(-2), atol=1e-6)
    fno = FNO2d(3, 1, width=8, modes=4, n_layers=2)
    assert fno(torch.rand(1, 3, 8, 8)).abs().max() == 0  # zero-initialised projection: identity residual


def test_channels_last_fno_is_the_conv2d_map_with_the_same_weights_and_gradients():
    """FNO2d.forward (channels-last, 1x1 convs as matmuls) = forward_reference (Conv2d layers),
    values and gradients wrt input and every weight, float64 on a non-square grid; the state
    dict is the Conv2d one (checkpoints unchanged)."""
    torch.manual_seed(0)
    fno = FNO2d(3, 2, width=6, modes=5, n_layers=3, zero_init=False).double()
    x = torch.rand(2, 3, 10, 7, dtype=torch.float64, requires_grad=True)
    y, y_ref = fno(x), fno.forward_reference(x)
    assert y.shape == (2, 2, 10, 7) and y.abs().max() > 1e-3
    assert torch.allclose(y, y_ref, rtol=0, atol=1e-13)
    w = torch.rand_like(y)
    g = torch.autograd.grad((w * y).sum(), [x, *fno.parameters()])
    g_ref = torch.autograd.grad((w * y_ref).sum(), [x, *fno.parameters()])
    for a, b in zip(g, g_ref, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    layer = fno.spectral[0]
    h = torch.rand(2, 6, 10, 7, dtype=torch.float64)
    last = layer.forward_channels_last(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(last, layer(h), rtol=0, atol=1e-13)
    assert fno.state_dict()["lift.weight"].shape == (6, 5, 1, 1)


def test_shapes_batching_and_interface(wnt_data):
    m = PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"])))
    z = m.initial_state(3)
    u = torch.rand(3, m.n_controls) * m.control_high
    z1 = m.step(z, u)
    assert z1.x.shape == z.x.shape and z1.L.shape == z.L.shape and (z1.t == m.dt).all()
    assert m.measure(z1).shape == (3, len(wnt_data.meta["channels"])) and m.phenotype(z1).shape == (3, 4)
    assert m.channels() == wnt_data.meta["channels"]
    for b in range(3):  # batch results equal per-env results
        zb = m.step(SimState(z.x[b : b + 1], z.L[b : b + 1], z.t[b : b + 1]), u[b : b + 1])
        assert torch.allclose(zb.x[0], z1.x[b], atol=1e-6) and torch.allclose(zb.L[0], z1.L[b], atol=1e-6)
    with pytest.raises(ValueError, match="free_params: unknown parameter"):
        PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"], free_params=["k_onn"])))
    with pytest.raises(ValueError, match="pde_block must be"):
        PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"], pde_block="unet")))


def test_gradients_reach_phi_psi_theta_and_coupling(wnt_data):
    torch.manual_seed(0)
    m = PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"])))
    with torch.no_grad():  # move the zero-initialised output layers off zero so every layer is live
        m.fno.proj2.weight.normal_(0, 1e-3)  # (outputs are scaled by the field scale, ~100 nM)
        m.cells.net[-1].weight.normal_(0, 1e-2)
    d = EpisodeTensors.from_dataset(wnt_data)
    delta = torch.zeros(d.n_episodes, m.n_cells, 4, requires_grad=True)
    loss, _ = objective(m, d, delta, d.n_episodes, float(d.mask.sum()), LossWeights(), 0.05)
    loss.backward()
    groups = {
        "phi (FNO)": m.fno.parameters(),
        "psi (MLP)": m.cells.net.parameters(),
        "coupling": [m.averaging.kernel, m.boundary.kernel],
        "theta": [m.log_theta_free],
    }
    for name, ps in groups.items():
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ps), name
    assert delta.grad.abs().sum() > 0


def test_adjoint_gradients_match_direct_backprop(mapk_data):
    """The adjoint solve returns the direct-backprop gradients for the MLP weights, theta and the
    step's inputs (from an interior state: the kinetics are clipped at x = 0, a kink). Fixed-step RK4,
    so both see the same discretisation (torchdiffeq's adaptive error control leaves parameter
    gradients out of its norm, which limits their accuracy with dopri5 to about 1e-1 relative)."""
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(0)
        cfg = quick_config(
            mapk_data.meta["spec"], solver="rk4", adjoint=adjoint, dtype="float64", substeps=16
        )
        m = PBHNO(PBHNOConfig(**cfg))
        with torch.no_grad():
            m.cells.net[-1].weight.normal_(0, 0.1)
        th = m.sim.params.unpack(m.log_theta)
        u = torch.tensor([[1.2, 0.5], [0.4, 2.0]], dtype=torch.float64, requires_grad=True)
        _, inh = m.sim.split_controls(u)
        x = torch.tensor([[[0.3, 0.2, 0.1]], [[0.6, 0.4, 0.5]]], dtype=torch.float64)
        for _ in range(2):
            x = m.cells.solve(x, None, None, th, inh, u, "rk4", adjoint, substeps=16)
        (x * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
        grads.append(
            torch.cat([m.log_theta_free.grad, m.cells.net[0].weight.grad.flatten(), u.grad.flatten()])
        )
    assert grads[0][-4:].abs().min() > 0  # gradients reach the bound step inputs (the controls)
    # equal up to the solver tolerance (a missing adjoint parameter would give zeros or O(1) errors)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-8)


def test_residuals_vanish_where_they_should(mapk_data, wnt_data):
    # ODE residual, PDE residual, operator and prior terms are zero for the initial (mechanistic) model
    m = PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"])))
    d = EpisodeTensors.from_dataset(wnt_data)
    _, logs = objective(
        m, d, torch.zeros(d.n_episodes, m.n_cells, 4), d.n_episodes, float(d.mask.sum()), LossWeights(), 0.05
    )
    assert logs["pde"] < 1e-12 and logs["ode"] == 0 and logs["op"] < 1e-12 and logs["theta"] == 0
    # the measurement misfit vanishes on noise-free simulator data at the true theta (MAPK: no field)
    spec = mapk_data.meta["spec"]
    truth = torch.tensor(mapk_data["log_theta"][0])
    m = PBHNO(PBHNOConfig(**quick_config(spec, substeps=16, init_log_theta=truth.tolist(), dtype="float64")))
    sim = SimulatorModel(dataclasses.replace(m.spec, substeps=64), dtype=torch.float64)  # resolved truth
    U = torch.tensor(mapk_data["actions"][:4], dtype=torch.float64)
    _, p_true = sim.rollout(sim.initial_state(4, truth.double()), U, truth.double())
    pred = rollout_predictions(m, U, torch.zeros(4, 1, 3, dtype=torch.float64))
    meas_true = p_true / 1.0  # phenotype == the measured channel (Z) normalised the same way
    assert (pred - meas_true).abs().max() < 2e-3
    wrong = rollout_predictions(m, U, torch.zeros(4, 1, 3, dtype=torch.float64), truth + 0.3)
    assert (wrong - meas_true).abs().max() > 20 * (pred - meas_true).abs().max()


def test_device_moves_and_dtype_guard(mapk_data, tmp_path):
    m = PBHNO(PBHNOConfig(**quick_config(mapk_data.meta["spec"])))
    assert m.to("cpu") is m and m.device.type == "cpu" and m.sim.device.type == "cpu"
    with pytest.raises(ValueError, match="dtype is set by PBHNOConfig.dtype"):
        m.to(torch.float64)
    m.save(tmp_path / "m.pt")
    assert PBHNO.load(tmp_path / "m.pt", device="cpu").log_theta.device.type == "cpu"


@pytest.mark.cuda
def test_surrogate_on_cuda_matches_cpu(wnt_data):
    assert torch.cuda.is_available(), "needs a CUDA device (run with -m cuda on a GPU machine)"
    torch.manual_seed(0)
    cpu = PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"], dtype="float64")))
    gpu = PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"], dtype="float64")), device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    U = torch.tensor(wnt_data["actions"][:2], dtype=torch.float64)
    delta = torch.zeros(2, cpu.n_cells, 4, dtype=torch.float64)
    pc = rollout_predictions(cpu, U, delta)
    pg = rollout_predictions(gpu, U.cuda(), delta.cuda())
    assert torch.allclose(pg.cpu(), pc, rtol=1e-8, atol=1e-10)


def test_auto_substeps_follow_the_pathway_rates_and_unstable_settings_are_refused():
    from pbhno_gym.envs.spec import load_spec

    notch = load_spec("pbhno/Notch-v1").to_dict()
    small = dict(width=8, modes=4, n_layers=1, hidden=16, solver="rk4", adjoint=False)
    m = PBHNO(PBHNOConfig(env_spec=notch, **small))
    rate, _ = m.sim.rest_rates()
    # the reference simulator's fixed sub-steps couple field and cells (Notch: the spec's 64) ...
    assert m.field_substeps == m.sim.min_fixed_substeps() == 64
    # ... and the cells' RK4 steps keep h * rate <= 1, a multiple of the coupled sub-steps
    assert m.cell_substeps % 64 == 0 and m.dt / m.cell_substeps * rate <= 1
    assert PBHNO(PBHNOConfig(env_spec=notch, field_substeps=4, substeps=32, **small)).field_substeps == 4
    with pytest.raises(ValueError, match=r"substeps=8 .*stability limit.*use substeps >= 22"):
        PBHNO(PBHNOConfig(env_spec=notch, field_substeps=1, substeps=8, **small))
    with pytest.raises(ValueError, match="field_substeps must be a positive int or 'auto'"):
        PBHNO(PBHNOConfig(env_spec=notch, field_substeps=0, **small))
    mapk = PBHNO(PBHNOConfig(env_spec=load_spec("pbhno/MAPK-v0").to_dict(), **small))
    assert mapk.field_substeps == 1  # no field to couple
