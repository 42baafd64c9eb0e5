"""A :class:`ControlModel` whose step runs through ``torch.compile`` (fused kernels, fewer launches).

Planning and estimation call ``model.step`` hundreds of times per replan, and at small batch the
cost is Python and kernel-launch overhead, not arithmetic. Compiling the step (with dynamic
batch sizes, so shrinking active sets do not recompile) fuses its elementwise work; on CUDA,
``mode="reduce-overhead"`` also captures it as a CUDA graph. The first calls compile (minutes on
a small CPU); ``scripts/bench_mpc.py --compile`` measures the gain.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..physics.params import Parameters
from ..physics.simulator import SimState
from .jacobian import step_jacobian
from .model import ControlModel, SimulatorModel

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
    """Wrap ``model`` so that ``step`` and ``step_jacobian`` are compiled; the rest is delegated.

    ``fast_step_jacobian``: planners and estimators pick forward-mode one-step Jacobians
    (``jacobian="auto"``) for ODE latents through this model. Their batch is padded to the next
    power of two (at least 2), so shrinking active sets reuse at most log2(B) + 1 graphs.

    Args:
        model: any :class:`ControlModel`.
        mode: ``torch.compile`` mode (None, "reduce-overhead" for CUDA graphs, "max-autotune").
        backend: ``torch.compile`` backend ("inductor"; "eager" only traces, for tests).
    """

    fast_step_jacobian = True
    #: compiled wrappers of simulator models by :func:`_model_key` (see :meth:`shared`)
    _shared: dict[tuple, CompiledModel] = {}

    def __init__(self, model: ControlModel, mode: str | None = None, backend: str = "inductor") -> None:
        self.inner = model
        for a in _ATTRS:
            if hasattr(model, a):
                setattr(self, a, getattr(model, a))

        def raw(x: Tensor, L: Tensor | None, t: Tensor, u: Tensor, lt: Tensor):
            z = model.step(SimState(x, L, t), u, lt)
            return z.x, z.L, z.t

        self._step = torch.compile(raw, dynamic=True, mode=mode, backend=backend)
        self._compile = dict(dynamic=True, mode=mode, backend=backend)
        self._step_jac: dict[tuple[str, bool], Callable] = {}

    @classmethod
    def shared(cls, model: ControlModel) -> ControlModel:
        """A compiled wrapper of ``model``, reused across equal simulator models in this process.

        torch.compile guards on the model object (and a world simulator's pathway class is made
        per instance), so every new agent would trace and compile again (~1 min on 2 cores);
        agents that build equal :class:`SimulatorModel` s (same spec, parameters, dtype, device,
        floor) share one wrapper and its compiled graphs instead. Other models are wrapped anew.
        """
        if isinstance(model, CompiledModel):
            return model
        key = _model_key(model)
        if key is None:
            return cls(model)
        if key not in cls._shared:
            cls._shared[key] = cls(model)
        return cls._shared[key]

    @property
    def theta(self) -> Parameters:
        return self.inner.theta

    def initial_state(self, batch: int, log_theta: Tensor | None = None) -> SimState:
        return self.inner.initial_state(batch, log_theta)

    def step(self, z: SimState, u: Tensor, log_theta: Tensor | None = None) -> SimState:
        lt = self.inner.theta.log_values if log_theta is None else log_theta
        c = lambda a: None if a is None else a.contiguous()  # noqa: E731 - strides are guarded
        x, L, t = self._step(c(z.x), c(z.L), c(z.t), c(u), c(lt))
        return SimState(x, L, t)

    def step_jacobian(
        self,
        x: Tensor,
        t: Tensor,
        u: Tensor,
        log_theta: Tensor,
        active: Tensor,
        output: str,
        wrt_theta: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:func:`.jacobian.step_jacobian` of the inner model, compiled (one graph per output map
        and ``wrt_theta``): the step and its forward-mode Jacobian in one fused call."""
        key = (output, bool(wrt_theta))
        if key not in self._step_jac:
            inner = self.inner

            def fn(x: Tensor, t: Tensor, u: Tensor, lt: Tensor, active: Tensor):
                return step_jacobian(inner, x, t, u, lt, active, output, wrt_theta)

            self._step_jac[key] = torch.compile(fn, **self._compile)
        B = x.shape[0]
        n = _bucket(B)
        # Pad the batch to a power of two (copies of row 0; rows are independent): the graph
        # specialises on the batch size despite dynamic=True (functorch's batching of the
        # shared tangents fixes it), so a planner dropping converged problems (32, 31, 29, ...)
        # would recompile at every active-set size; buckets cap that at log2(B) + 1 graphs.
        # Contiguous inputs: the graph also guards on strides.
        args = [
            a if n == B else torch.cat([a, a[:1].expand(n - B, *a.shape[1:])])
            for a in (x, t, u, log_theta, active)
        ]
        # one code object serves every (output, wrt_theta) key and bucket: up to 4 x 9 graphs at
        # batch 256, past dynamo's default limit of 8 (beyond which it silently runs eager)
        with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT):
            out = self._step_jac[key](*(a.contiguous() for a in args))
        return out if n == B else tuple(o[:B] for o in out)

    def phenotype(self, z: SimState) -> Tensor:
        return self.inner.phenotype(z)

    def measure(self, z: SimState) -> Tensor:
        return self.inner.measure(z)

    def encode_state(self, z: SimState) -> SimState:
        return self.inner.encode_state(z)


_RECOMPILE_LIMIT = 64  # graphs per compiled step-Jacobian function (buckets x output maps)


def _bucket(batch: int) -> int:
    """The padded batch of a compiled step-Jacobian call: the next power of two, at least 2
    (torch.compile specialises a batch of one)."""
    return max(2, 1 << (batch - 1).bit_length())


def _model_key(model: ControlModel) -> tuple | None:
    """Identity of a plain :class:`SimulatorModel` by value (None for any other model)."""
    if type(model) is not SimulatorModel:
        return None
    return (
        repr(model.spec),
        model.sim.pathway.name,
        model.param_names,
        tuple(model.theta.log_values.detach().cpu().reshape(-1).tolist()),
        model.state_floor,
        str(model.dtype),
        str(model.device),
    )
