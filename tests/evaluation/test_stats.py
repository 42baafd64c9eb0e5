"""Confidence intervals: Wilson for success rates, percentile bootstrap for means."""

import numpy as np
import pytest

from pbhno_gym.evaluation import bootstrap_mean_ci, mean_with_ci, wilson_interval


def test_wilson_matches_closed_form():
    k, n, z = 7, 10, 1.959963984540054
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(centre - half, abs=1e-9)
    assert hi == pytest.approx(centre + half, abs=1e-9)


@pytest.mark.parametrize("k,n", [(0, 5), (5, 5), (0, 1), (1, 1), (13, 32)])
def test_wilson_stays_in_unit_interval_and_contains_rate(k, n):
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert hi - lo > 0  # never a degenerate interval, even at 0/n or n/n


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError, match="n must be positive"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(6, 5)


def test_bootstrap_contains_mean_is_seeded_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, big = rng.normal(2.0, 1.0, 20), rng.normal(2.0, 1.0, 2000)
    lo, hi = bootstrap_mean_ci(small)
    assert lo < small.mean() < hi
    assert bootstrap_mean_ci(small) == (lo, hi)  # deterministic
    lo2, hi2 = bootstrap_mean_ci(big)
    assert hi2 - lo2 < (hi - lo) / 4


def test_bootstrap_degenerate_and_nan():
    assert bootstrap_mean_ci(np.full(5, 3.0)) == (3.0, 3.0)
    out = mean_with_ci(np.array([1.0, np.nan, 3.0]))
    assert out["mean"] == 2.0 and out["lo"] <= 2.0 <= out["hi"]
    assert np.isnan(mean_with_ci(np.array([np.nan]))["mean"])
