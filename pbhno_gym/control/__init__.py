"""Control: the differentiable model interface, MPC planner, moving-horizon estimation, agents."""

from .model import ControlModel, SimulatorModel

__all__ = ["ControlModel", "SimulatorModel"]
