"""Transport: the DCT calculus is the exact exponential of the discrete Neumann Laplacian."""

import math

import pytest
import torch

from pbhno_gym.physics import Grid
from pbhno_gym.physics.transport import SpectralOperator, dct_basis, laplacian, laplacian_1d, phi_functions


def lap2d(g: Grid) -> torch.Tensor:
    ly, lx = laplacian_1d(g.ny, g.h), laplacian_1d(g.nx, g.h)
    return torch.kron(ly, torch.eye(g.nx, dtype=torch.float64)) + torch.kron(
        torch.eye(g.ny, dtype=torch.float64), lx
    )


def test_dct_basis_diagonalises_neumann_laplacian():
    v, mu = dct_basis(12, 0.5)
    assert torch.allclose(v.T @ v, torch.eye(12, dtype=torch.float64), atol=1e-13)
    assert torch.allclose(laplacian_1d(12, 0.5) @ v, v * mu, atol=1e-11)


def test_stencil_matches_matrix():
    g = Grid(6, 9, 18.0)
    f = torch.rand(2, 6, 9, dtype=torch.float64)
    assert torch.allclose(laplacian(f, g.h).reshape(2, -1), f.reshape(2, -1) @ lap2d(g).T, atol=1e-12)


def test_propagator_equals_matrix_exponential_per_env_parameters():
    g = Grid(6, 8, 16.0)
    sp = SpectralOperator(g, torch.float64)
    L = torch.rand(3, 6, 8, dtype=torch.float64)
    D = torch.tensor([0.5, 2.0, 7.0], dtype=torch.float64)
    lam = torch.tensor([0.0, 0.1, 1.0], dtype=torch.float64)
    out = sp.propagate(L, D, lam, 0.7)
    for b in range(3):
        E = torch.linalg.matrix_exp(0.7 * (D[b] * lap2d(g) - lam[b] * torch.eye(48, dtype=torch.float64)))
        assert torch.allclose(out[b].reshape(-1), E @ L[b].reshape(-1), atol=1e-12)


def test_propagator_positive_and_mass_exact():
    g = Grid(32, 32, 64.0)
    sp = SpectralOperator(g, torch.float64)
    delta = torch.zeros(1, 32, 32, dtype=torch.float64)
    delta[0, 0, 5] = 1.0  # next to the zero-flux wall, the hardest case for mass
    f64 = dict(dtype=torch.float64)
    out = sp.propagate(delta, torch.tensor([10.0], **f64), torch.tensor([0.2], **f64), 3.0)
    assert out.min() > -1e-15
    assert out.sum().item() == pytest.approx(math.exp(-0.6), rel=1e-13)


def test_phi_functions_continuous_and_exact():
    z = torch.tensor([-50.0, -2.0, -1.0000001, -0.9999999, -1e-9, 0.0], dtype=torch.float64)
    e, p1, p2 = phi_functions(z)
    assert p1[2].item() == pytest.approx(p1[3].item(), rel=1e-6)
    assert p2[2].item() == pytest.approx(p2[3].item(), rel=1e-6)
    assert p1[-1].item() == 1.0 and p2[-1].item() == 0.5


def test_phi_functions_float64_roundoff_against_mpmath():
    """Relative error ~1e-16 from |z| = 1e-12 to 1e3 (both signs where exp does not overflow)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    mags = torch.logspace(-12, 3, 151, dtype=torch.float64)
    z = torch.cat([-mags, mags[mags < 600]])
    e, p1, p2 = phi_functions(z)
    worst = [0.0, 0.0, 0.0]
    for i, zi in enumerate(z.tolist()):
        zm = mpmath.mpf(zi)
        em1 = mpmath.expm1(zm)
        for j, (got, ref) in enumerate(
            ((e[i], mpmath.exp(zm)), (p1[i], em1 / zm), (p2[i], (em1 - zm) / zm**2))
        ):
            if j == 0 and zi < -700:
                continue  # exp underflows to 0 there; phi1, phi2 stay exact
            worst[j] = max(worst[j], float(abs(mpmath.mpf(got.item()) / ref - 1)))
    assert max(worst) < 2e-15, worst


def test_phi_functions_match_expm1_formulas_where_no_cancellation():
    z = -torch.logspace(0.5, 2.5, 40, dtype=torch.float64)
    _, p1, p2 = phi_functions(z)
    em1 = torch.expm1(z)
    assert torch.allclose(p1, em1 / z, rtol=1e-15, atol=0)
    assert torch.allclose(p2, (em1 - z) / z**2, rtol=1e-14, atol=0)


def test_phi_functions_gradients_finite_at_zero():
    z = torch.tensor([0.0, -0.5, -3.0], dtype=torch.float64, requires_grad=True)
    _, p1, p2 = phi_functions(z)
    g1 = torch.autograd.grad(p1.sum(), z, retain_graph=True)[0]
    g2 = torch.autograd.grad(p2.sum(), z)[0]
    assert torch.isfinite(g1).all() and torch.isfinite(g2).all()
    assert g1[0].item() == pytest.approx(0.5) and g2[0].item() == pytest.approx(1 / 6)
