"""Practical identifiability: CRLB vs Monte Carlo, profiles, posterior sampling, sensitivities."""

import numpy as np
import pytest

from pbhno_gym.discovery.design import make_dataset
from pbhno_gym.discovery.methods.mle import fit_problem
from pbhno_gym.discovery.prior import Prior
from pbhno_gym.discovery.problem import LinearGaussianProblem, SimulatorProblem
from pbhno_gym.discovery.pypesto_bridge import profile_intervals
from pbhno_gym.discovery.sampling import ensemble_samples
from pbhno_gym.identifiability.practical import crlb, practical_report, sensitivity_diagnostics


def _linear(seed=0, R=30, p=3):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(R, p))
    A[:, 2] *= 0.2  # a weakly informed parameter
    sigma = np.full(R, 0.3)
    truth = np.array([0.5, -0.2, 0.1])
    prior = Prior(("a", "b", "c"), np.zeros(p), np.full(p, 10.0))
    return A, sigma, truth, prior, rng


def test_crlb_matches_monte_carlo_on_linear_gaussian():
    A, sigma, truth, prior, rng = _linear()
    prob = LinearGaussianProblem(A, np.zeros(len(sigma)), A @ truth, sigma, prior)
    bound = crlb(prob.fisher(truth))
    np.testing.assert_allclose(bound, np.sqrt(np.diag(np.linalg.inv(A.T @ A / 0.09))), rtol=1e-10)
    est = []
    for _ in range(300):  # least-squares MLE (our multistart machinery, one start) on fresh noise
        y = A @ truth + sigma * rng.standard_normal(len(sigma))
        res = fit_problem(
            LinearGaussianProblem(A, np.zeros(len(y)), y, sigma, prior),
            use_prior=False,
            n_starts=1,
            max_nfev=20,
        )
        est.append(res.log_theta)
    est = np.array(est)
    mc_sd = est.std(0, ddof=1)
    # sd of a sample sd from 300 draws is ~4%: allow 15%
    np.testing.assert_allclose(mc_sd, bound, rtol=0.15)
    assert np.all(np.abs(est.mean(0) - truth) < 4 * bound / np.sqrt(300))  # unbiased
    assert bound[2] > 3 * bound[0]  # the weak column has the large bound
    np.testing.assert_allclose(res.sd, bound, rtol=1e-6)  # Laplace covariance = inverse Fisher here


def test_profiles_and_posterior_samples_agree_with_exact_gaussian_answers():
    A, sigma, truth, prior, rng = _linear(1)
    y = A @ truth + sigma * rng.standard_normal(len(sigma))
    prob = LinearGaussianProblem(A, np.zeros(len(y)), y, sigma, prior)
    fit = fit_problem(prob, use_prior=False, n_starts=2)
    prof = profile_intervals(prob, fit.log_theta, indices=[0, 2])  # pyPESTO
    wald = fit.intervals()
    for i in (0, 2):  # linear-Gaussian: the profile interval is exactly the Wald interval
        assert prof["low"][i] == pytest.approx(wald[0][i], abs=0.05 * (wald[1][i] - wald[0][i]))
        assert prof["high"][i] == pytest.approx(wald[1][i], abs=0.05 * (wald[1][i] - wald[0][i]))
    assert np.isnan(prof["low"][1]) and not prof["bounded"].any()
    samples, info = ensemble_samples(
        prob, fit.log_theta, n_steps=400, use_prior=False, seed=0, init_scale=fit.sd
    )
    assert 0.2 < info["acceptance"] < 0.9
    np.testing.assert_allclose(samples.std(0), fit.sd, rtol=0.2)
    np.testing.assert_allclose(samples.mean(0), fit.log_theta, atol=0.3 * fit.sd.max())


def test_crlb_is_infinite_along_null_directions_and_diagnostics_weight_weak_parameters():
    F = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 4.0]])  # theta_0 + theta_1 only
    sd = crlb(F)
    assert np.isinf(sd[:2]).all() and sd[2] == pytest.approx(0.5)
    assert np.isfinite(crlb(F, np.ones(3))).all()  # the prior closes the null direction
    Jw = np.zeros((6, 2))
    Jw[:, 0] = 5.0
    Jw[4:, 1] = 0.1  # parameter 1 is only seen (weakly) at the last two times
    d = sensitivity_diagnostics(Jw, np.arange(6.0), crlb(Jw.T @ Jw), np.array([0.5, 0.5]))
    assert d["weak"].tolist() == [False, True]
    assert d["weights"].mean() == pytest.approx(1.0) and d["weights"][4] > 1.5 * d["weights"][0]
    np.testing.assert_allclose(d["time_share"].sum(0), 1.0)


def test_simulator_sensitivities_autograd_equal_finite_differences_and_report():
    ds = make_dataset("mapk_smooth", 1)
    ad = SimulatorProblem(ds)
    fd = SimulatorProblem(ds, jac_mode="fd")
    x = np.asarray(ds.meta["true_log_theta"])[ad.model.free_idx]
    pts = np.stack([x, x + 0.1])
    _, Ja = ad.predict(pts, jac=np.array([True, True]))
    _, Jf = fd.predict(pts, jac=True)
    np.testing.assert_allclose(Ja, Jf, rtol=1e-5, atol=1e-7)
    rep = practical_report(ad, x)
    assert rep.identifiable.all() and (rep.crlb_sd < 0.2).all()
    assert "CRLB" in rep.table() and len(rep.rows()) == 4
