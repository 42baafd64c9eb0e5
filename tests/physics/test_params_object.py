"""Parameters: the one object mechanistic parameters travel as (views, round trips, errors)."""

import pytest
import torch

from pbhno_gym.physics import Parameters, get_pathway


def _mapk(**kw) -> Parameters:
    return Parameters.from_set(get_pathway("mapk").params, dtype=torch.float64, **kw)


def test_views_and_round_trip():
    p = _mapk(nominal={"k1": 2.0}, values={"k5": 1.6}, free=["k5", "k6"])
    assert p.as_dict()["k5"] == pytest.approx(1.6) and p.as_dict()["k1"] == pytest.approx(2.0)
    assert p.prior().as_dict()["k5"] == pytest.approx(1.0)  # the prior mean is the nominal value
    assert p.prior().as_dict()["k1"] == pytest.approx(2.0)
    assert p.free_names == ("k5", "k6")
    q = Parameters.from_dict(p.to_dict(), dtype=torch.float64)
    for a in ("log_values", "prior_mean", "prior_sd", "free"):
        assert torch.equal(getattr(q, a), getattr(p, a)), a
    assert q.names == p.names


def test_sampling_moves_only_free_entries_around_the_values():
    p = _mapk(values={"k5": 1.6}, free=["k5", "k6"])
    s = p.sample_around(500, torch.Generator().manual_seed(0), scale=0.5)
    assert s.log_values.shape == (500, len(p)) and s.batched
    fixed = [i for i, n in enumerate(p.names) if n not in ("k5", "k6")]
    assert torch.equal(s.log_values[:, fixed], p.log_values[fixed].expand(500, -1))
    k5 = s["k5"]
    assert abs(float(k5.mean()) - float(p["k5"])) < 0.05  # centred on the values, not the prior
    assert abs(float(k5.std()) - 0.25) < 0.03  # 0.5 x the prior sd of 0.5
    assert s.index(torch.tensor([3, 1])).log_values.shape == (2, len(p))
    with pytest.raises(ValueError, match="row"):
        s.as_dict()


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="'k9'"):
        _mapk(values={"k9": 1.0})
    with pytest.raises(ValueError, match="'k5' must be positive"):
        _mapk(values={"k5": -1.0})
    with pytest.raises(ValueError, match="free parameter"):
        _mapk(free=["nope"])
    p = _mapk()
    with pytest.raises(ValueError, match="log_values must have shape"):
        p.replace(torch.zeros(3))


def test_datasets_and_fit_results_hand_out_parameters():
    """A dataset's prior and truth, and a fit as a full Parameters object (free entries moved)."""
    from pbhno_gym.data import collect_episodes
    from pbhno_gym.discovery.result import FitResult

    ds = collect_episodes(
        "pbhno/MAPK-v0", 2, num_envs=2, seed=0, progress=False, horizon=3, true_parameters={"k5": 1.6}
    )
    prior, truth = ds.prior, ds.true_parameters
    assert prior.as_dict()["k5"] == pytest.approx(1.0) and truth.batched
    assert truth.as_dict(row=1)["k5"] == pytest.approx(1.6, rel=1e-6)
    fit = FitResult("map", ("k5", "k6"), [0.4, -0.6])
    est = fit.parameters(prior)
    assert est.free_names == ("k5", "k6") and est["k5"].item() == pytest.approx(0.4)
    assert est["k1"].item() == pytest.approx(prior["k1"].item())
    with pytest.raises(ValueError, match="not in the base"):
        FitResult("map", ("nope",), [0.0]).parameters(prior)
