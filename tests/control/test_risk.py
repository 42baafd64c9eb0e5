"""Ensemble cost aggregates and their gradients."""

import pytest
import torch

from pbhno_gym.control.risk import aggregate_costs


def test_mean_cvar_mean_std_values():
    c = torch.tensor([[1.0, 2.0, 3.0, 10.0]], dtype=torch.float64)
    mean, w = aggregate_costs(c)
    assert float(mean) == 4.0 and torch.allclose(w, torch.full_like(c, 0.25))
    cvar, w = aggregate_costs(c, risk="cvar", alpha=0.5)  # worst half: members 4 and 3
    assert float(cvar) == pytest.approx(6.5)
    assert w.tolist() == [[0.0, 0.0, 0.5, 0.5]]
    assert float(aggregate_costs(c, risk="cvar", alpha=1.0)[0]) == pytest.approx(4.0)
    ms, _ = aggregate_costs(c, risk="mean_std", k=2.0)
    assert float(ms) == pytest.approx(4.0 + 2.0 * float(c.std(unbiased=False)))


@pytest.mark.parametrize("risk", ["mean", "mean_std", "cvar"])
def test_omega_is_the_gradient_of_the_aggregate(risk):
    g = torch.Generator().manual_seed(0)
    c = torch.rand(3, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    w = torch.softmax(torch.randn(3, 5, generator=g, dtype=torch.float64), 1)
    a, omega = aggregate_costs(c, w, risk=risk, k=0.7, alpha=0.4)
    (grad,) = torch.autograd.grad(a.sum(), c)
    torch.testing.assert_close(grad, omega)
    torch.testing.assert_close(omega.sum(1), torch.ones(3, dtype=torch.float64))


def test_unknown_risk_raises():
    with pytest.raises(ValueError, match="risk must be"):
        aggregate_costs(torch.ones(1, 2), risk="max")
