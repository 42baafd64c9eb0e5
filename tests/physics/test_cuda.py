"""CUDA: the simulator gives the CPU's answer on a GPU (run by scripts/gpu_check.sh, -m cuda)."""

import pytest
import torch

from .helpers import make_sim, random_schedule, small_cases

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("case", small_cases(), ids=[c[0] for c in small_cases()])
def test_cuda_matches_cpu(case):
    assert torch.cuda.is_available(), "this test needs a CUDA device (select with -m cuda on a GPU machine)"
    _, name, lay, dt = case
    cpu = make_sim(name, lay, dt, substeps=6)
    gpu = cpu.to(device="cuda")
    lt = cpu.params.sample_prior(8, torch.Generator().manual_seed(0), torch.float64)
    U = random_schedule(cpu, 4, batch=8)
    _, xc, Lc = cpu.rollout(cpu.initial_state(lt), U, lt)
    _, xg, Lg = gpu.rollout(gpu.initial_state(lt.cuda()), U.cuda(), lt.cuda())
    assert torch.allclose(xg.cpu(), xc, rtol=1e-9, atol=1e-12)
    if Lc is not None:
        assert torch.allclose(Lg.cpu(), Lc, rtol=1e-9, atol=1e-12)


def test_cuda_gradients_flow():
    assert torch.cuda.is_available()
    _, name, lay, dt = small_cases()[2]
    sim = make_sim(name, lay, dt, substeps=4, dtype=torch.float32).to(device="cuda")
    lt = sim.log_theta().requires_grad_(True)
    st = sim.initial_state(lt.detach(), 4)
    u = sim.control_high.expand(4, -1)
    for _ in range(3):
        st = sim.step(st, u, lt)
    st.x[..., -1].sum().backward()
    assert lt.grad.is_cuda and torch.isfinite(lt.grad).all() and lt.grad.abs().sum() > 0
