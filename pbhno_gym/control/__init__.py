"""Control: the differentiable model interface, MPC planner, moving-horizon estimation, agents.

* :mod:`.model`: :class:`ControlModel` (the interface) and :class:`SimulatorModel` (true simulator).
* :mod:`.projection`: exact projection of schedules onto bounds and remaining dose.
* :mod:`.planner`: the MPC cost and its solvers (Gauss-Newton/LM, projected Adam), batched.
* :mod:`.mhe`: moving-horizon estimation of the latent state (and theta).
* :mod:`.agent`: :class:`MPCAgent` (observations only) and :class:`OracleMPCAgent` (true state).
* :mod:`.config`: ``agents/mpc.toml``. Closed-loop runs: :mod:`pbhno_gym.evaluation` (``evaluate_mpc``).
"""

from .agent import MPCAgent, OracleMPCAgent
from .config import MPCConfig, load_config
from .mhe import MHEWindow, MovingHorizonEstimator
from .model import ControlModel, SimulatorModel
from .planner import Planner, PlanProblem, PlanResult
from .projection import project_schedule

__all__ = [
    "ControlModel",
    "SimulatorModel",
    "MPCAgent",
    "OracleMPCAgent",
    "MPCConfig",
    "load_config",
    "MHEWindow",
    "MovingHorizonEstimator",
    "PlanProblem",
    "PlanResult",
    "Planner",
    "project_schedule",
]
