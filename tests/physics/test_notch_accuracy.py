"""Notch-v1's own time step against the SciPy reference over the full horizon.

The env's control interval, sub-steps, cell geometry, parameters, dose budgets and horizon, on a
coarser grid (16 x 16 over the same 128 um, so the reference is fast): the phenotype (Hes) must
stay within 0.5% of its range from rest and from the settled state, under a budgeted control.
"""

import numpy as np
import pytest
import torch

from pbhno_gym.envs.core import episode_start_state
from pbhno_gym.envs.factory import build
from pbhno_gym.envs.spec import load_spec
from pbhno_gym.physics import Simulator
from pbhno_gym.physics.reference import budgeted_schedule, reference_rollout

TOL = 5e-3  # of the phenotype range


@pytest.mark.parametrize("start", ["rest", "settled"])
def test_notch_v0_setting_matches_reference_over_full_horizon(start):
    spec = load_spec("pbhno/Notch-v1", overrides={"layout": {"ny": 16, "nx": 16}})
    parts = build(spec, dtype=torch.float64)
    sim64, lt = parts.sim, parts.prior.log_values.reshape(1, -1)
    st = sim64.initial_state(lt, 1) if start == "rest" else episode_start_state(sim64, spec, lt, 1)
    U = budgeted_schedule(sim64, spec.horizon, parts.budget)
    x_ref, _ = reference_rollout(sim64, st, U, lt, rtol=1e-8, atol=1e-11)
    h = sim64.pathway.species.index("H")
    span = spec.target.phenotype_high - spec.target.phenotype_low
    assert x_ref[..., h].max() > 0.2 * span  # the Hes response is not trivial
    sim32 = Simulator(sim64.pathway, sim64.layout, spec.control_interval, spec.substeps)
    for sim in (
        sim32,
        Simulator(sim64.pathway, sim64.layout, spec.control_interval, sim32.min_fixed_substeps()),
    ):
        _, xs, _ = sim.rollout(st.to(torch.float32), U[None].float(), lt.float())
        err = np.abs(xs[0, ..., h].double().numpy() - x_ref[..., h]).max() / span
        assert err < TOL, (start, sim.substeps, err)
