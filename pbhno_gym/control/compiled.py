"""A :class:`ControlModel` whose step runs through ``torch.compile`` (fused kernels, fewer launches).

Planning and estimation call ``model.step`` hundreds of times per replan, and at small batch the
cost is Python and kernel-launch overhead, not arithmetic. Compiling the step (with dynamic
batch sizes, so shrinking active sets do not recompile) fuses its elementwise work; on CUDA,
``mode="reduce-overhead"`` also captures it as a CUDA graph. The first calls compile (minutes on
a small CPU); ``scripts/bench_mpc.py --compile`` measures the gain.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..physics.params import Parameters
from ..physics.simulator import SimState
from .model import ControlModel

__all__ = ["CompiledModel"]

_ATTRS = (
    "name",
    "spec",
    "dt",
    "n_controls",
    "control_low",
    "control_high",
    "param_names",
    "device",
    "dtype",
    "state_upper_bound",
)


class CompiledModel(ControlModel):
    """Wrap ``model`` so that ``step`` is compiled; everything else is delegated.

    Args:
        model: any :class:`ControlModel`.
        mode: ``torch.compile`` mode (None, "reduce-overhead" for CUDA graphs, "max-autotune").
        backend: ``torch.compile`` backend ("inductor"; "eager" only traces, for tests).
    """

    def __init__(self, model: ControlModel, mode: str | None = None, backend: str = "inductor") -> None:
        self.inner = model
        for a in _ATTRS:
            if hasattr(model, a):
                setattr(self, a, getattr(model, a))

        def raw(x: Tensor, L: Tensor | None, t: Tensor, u: Tensor, lt: Tensor):
            z = model.step(SimState(x, L, t), u, lt)
            return z.x, z.L, z.t

        self._step = torch.compile(raw, dynamic=True, mode=mode, backend=backend)

    @property
    def theta(self) -> Parameters:
        return self.inner.theta

    def initial_state(self, batch: int, log_theta: Tensor | None = None) -> SimState:
        return self.inner.initial_state(batch, log_theta)

    def step(self, z: SimState, u: Tensor, log_theta: Tensor | None = None) -> SimState:
        lt = self.inner.theta.log_values if log_theta is None else log_theta
        x, L, t = self._step(z.x, z.L, z.t, u, lt)
        return SimState(x, L, t)

    def phenotype(self, z: SimState) -> Tensor:
        return self.inner.phenotype(z)

    def measure(self, z: SimState) -> Tensor:
        return self.inner.measure(z)
