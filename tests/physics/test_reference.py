"""The torch stepper against SciPy's stiff solvers on the same method-of-lines system."""

import math

import numpy as np
import pytest
import torch

from pbhno_gym.physics.reference import reference_rollout

from .helpers import make_sim, random_schedule, small_cases

CASES = small_cases()
# Stated tolerance: relative max-norm error at 16 substeps per control interval.
TOL = 5e-3


@pytest.fixture(scope="module")
def references():
    out = {}
    for cid, name, lay, dt in CASES:
        sim = make_sim(name, lay, dt)
        U = random_schedule(sim, 4)
        out[cid] = (U, reference_rollout(sim, sim.initial_state(batch_size=1), U, method="BDF"))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_agrees_with_scipy_and_converges_second_order(case, references):
    cid, name, lay, dt = case
    U, (x_ref, L_ref) = references[cid]
    errs = []
    for K in (8, 16, 32):
        sim = make_sim(name, lay, dt, substeps=K)
        _, xs, Ls = sim.rollout(sim.initial_state(batch_size=1), U[None])
        e = np.abs(xs[0].numpy() - x_ref).max() / np.abs(x_ref).max()
        if L_ref is not None:
            e = max(e, np.abs(Ls[0].numpy() - L_ref).max() / np.abs(L_ref).max())
        errs.append(e)
    assert errs[1] < TOL, errs
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert min(orders) > 1.5, (errs, orders)


def test_bdf_and_radau_agree():
    cid, name, lay, dt = CASES[2]
    sim = make_sim(name, lay, dt)
    U = random_schedule(sim, 2)
    st = sim.initial_state(batch_size=1)
    xb, Lb = reference_rollout(sim, st, U, method="BDF")
    xr, Lr = reference_rollout(sim, st, U, method="Radau")
    assert np.abs(xb - xr).max() < 1e-7 * np.abs(xb).max()


def test_float32_stepper_close_to_float64():
    cid, name, lay, dt = CASES[2]
    s64 = make_sim(name, lay, dt)
    s32 = make_sim(name, lay, dt, dtype=torch.float32)
    U = random_schedule(s64, 5)
    _, x64, L64 = s64.rollout(s64.initial_state(batch_size=1), U[None])
    _, x32, L32 = s32.rollout(s32.initial_state(batch_size=1), U[None].float())
    for a32, a64 in ((x32, x64), (L32, L64)):
        assert ((a32.double() - a64).abs().max() / a64.abs().max()).item() < 1e-5  # float32 round-off only
