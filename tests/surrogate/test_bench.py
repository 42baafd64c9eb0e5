"""The surrogate benchmark's matched-accuracy speed comparison and counterfactual on a small Wnt."""

import math

import torch

from pbhno_gym.benchmarks.surrogate import counterfactual, rollout_speed
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig

from .conftest import quick_config


def test_rollout_speed_matches_the_cheapest_accurate_simulator(wnt_data):
    torch.manual_seed(0)
    model = PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"], substeps=8)))
    r = rollout_speed(model, batch=2, T=4, repeats=1, sim_substeps=(1, 4, 16), ref_factor=4)
    assert [s["substeps"] for s in r["simulator"]] == [1, 4, 16]
    assert "max_stiffness" in r["simulator"][0]["refused"]  # 10-min steps: too stiff for Wnt
    errs = [s["phenotype_rel_l2"] for s in r["simulator"][1:]]
    # finer simulator sub-steps approach the reference (4x the spec's sub-steps)
    assert errs[-1] <= errs[0] and errs[-1] < 0.05
    # the fresh surrogate is its mechanistic skeleton: close to the reference, not exact
    assert 0 < r["surrogate"]["phenotype_rel_l2"] < 0.2
    if "matched" in r:
        m = r["matched"]
        assert m["phenotype_rel_l2"] <= r["surrogate"]["phenotype_rel_l2"]
        assert math.isclose(m["speedup"], m["seconds"] / r["surrogate"]["seconds"])
    else:
        assert min(errs) > r["surrogate"]["phenotype_rel_l2"]


def test_counterfactual_reports_phenotype_and_hidden_field_errors(wnt_data):
    torch.manual_seed(0)
    model = PBHNO(PBHNOConfig(**quick_config(wnt_data.meta["spec"], substeps=8)))
    r = counterfactual(model, "pbhno/Wnt-v1", n=2, T=4, prefix=2)
    assert set(r) == {"phenotype_rel_l2", "field_rel_l2"}
    assert 0 <= r["phenotype_rel_l2"] < 0.2 and 0 <= r["field_rel_l2"] < 0.5
