"""CompiledModel: the torch.compile'd step is the model's step (fast: tracing backend; slow: inductor)."""

import pytest
import torch

from pbhno_gym.control import SimulatorModel
from pbhno_gym.control.compiled import CompiledModel

from .helpers import mapk_problems


def _check(backend):
    base = SimulatorModel("pbhno/MAPK-v0", dtype=torch.float64)
    comp = CompiledModel(base, backend=backend)
    prob = mapk_problems(base, B=3, T=4)
    out = []
    for m in (base, comp):  # values and gradients through the compiled step
        U = (0.5 * base.control_high.expand(3, 4, -1)).clone().requires_grad_(True)
        _, ph = m.rollout(prob.z0, U, prob.log_theta)
        (g,) = torch.autograd.grad((ph * torch.arange(1.0, 6.0, dtype=ph.dtype)[None, :, None]).sum(), U)
        out.append((ph.detach(), g))
    torch.testing.assert_close(out[0][0], out[1][0])
    torch.testing.assert_close(out[0][1], out[1][1])
    assert comp.n_controls == base.n_controls and comp.state_upper_bound == base.state_upper_bound


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, raised while importing dynamo
def test_compiled_model_wrapper_plumbing():
    """Fast: the wrapper with compilation switched off (the traced paths are the slow tests).
    Dynamo's config is patched with its own context manager: pytest >= 9's monkeypatch restores a
    module attribute from the module ``__dict__``, where dynamo's config keeps nothing, so its undo
    deletes (hides) the option for every later test in the process."""
    import torch._dynamo

    with torch._dynamo.config.patch(disable=True):
        _check("inductor")


@pytest.mark.slow
def test_compiled_model_traces_the_same_step():
    _check("eager")  # dynamo tracing only (~20 s on 2 shared cores)


@pytest.mark.slow
def test_compiled_model_with_inductor_matches():
    _check("inductor")  # compiles C++ kernels: minutes on a small CPU
