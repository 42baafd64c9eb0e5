"""Small MAPK planning and estimation problems shared by the control tests (float64)."""

import torch

from pbhno_gym.control import SimulatorModel
from pbhno_gym.control.planner import PlanProblem

F64 = torch.float64


def mapk_model() -> SimulatorModel:
    return SimulatorModel("pbhno/MAPK-v0", dtype=F64)


def mapk_problems(model, B=3, T=10, seed=0, members=1, mek_dose=120.0) -> PlanProblem:
    """B problems from random active states towards random set-points (constant over T)."""
    g = torch.Generator().manual_seed(seed)
    z = model.initial_state(B * members)
    z.x = 0.6 * torch.rand(z.x.shape, generator=g, dtype=F64)
    lt = model.theta.log_values + 0.3 * torch.randn(
        B * members, len(model.param_names), generator=g, dtype=F64
    )
    target = (0.2 + 0.7 * torch.rand(B, 1, 1, generator=g, dtype=F64)).expand(B, T, 1).clone()
    dose = torch.tensor([float("inf"), mek_dose], dtype=F64).expand(B, 2).clone()
    return PlanProblem(z, target, lt, dose)
