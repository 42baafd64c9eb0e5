"""A :class:`ControlModel` whose step runs through ``torch.compile`` (fused kernels, fewer launches).

Planning and estimation call ``model.step`` hundreds of times per replan, and at small batch the
cost is Python and kernel-launch overhead, not arithmetic. Compiling the step (with dynamic
batch sizes, so shrinking active sets do not recompile) fuses its elementwise work; on CUDA,
``mode="reduce-overhead"`` also captures it as a CUDA graph. The first calls compile (minutes on
a small CPU); ``scripts/bench_mpc.py --compile`` measures the gain.

``jacobian_backend="aot"`` builds the step-Jacobian ahead of time instead (AOTInductor: the
graph traced by ``make_fx``, exported and compiled to a shared library, one per output map and
batch bucket, cached on disk). Its call skips dynamo's guards and wrappers: ~70 us instead of
~440 us for a MAPK step with its Jacobian at batch 1 (docs/benchmarks.md), which is most of a
batch-1 decision. Only for :class:`SimulatorModel` s: the traced graph holds the model's tensors
as constants, so a model whose weights change must not be built this way.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ..physics.params import Parameters
from ..physics.simulator import SimState
from ..physics.tracing import graph_tracing
from .jacobian import step_jacobian
from .model import ControlModel, SimulatorModel

__all__ = ["CompiledModel", "aot_cache_dir", "aot_trace"]

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
        jacobian_backend: "inductor" (``torch.compile``, batches padded to power-of-two buckets of
            at least 2) or "aot" (AOTInductor libraries per power-of-two bucket, cached under
            :func:`aot_cache_dir`; simulator models only).
    """

    fast_step_jacobian = True
    #: compiled wrappers of simulator models by :func:`_model_key` (see :meth:`shared`)
    _shared: dict[tuple, CompiledModel] = {}

    def __init__(
        self,
        model: ControlModel,
        mode: str | None = None,
        backend: str = "inductor",
        jacobian_backend: str = "inductor",
    ) -> None:
        if jacobian_backend not in ("inductor", "aot"):
            raise ValueError(f"jacobian_backend must be 'inductor' or 'aot', got {jacobian_backend!r}")
        if jacobian_backend == "aot" and _model_key(model) is None:
            raise ValueError(
                "jacobian_backend='aot' needs a SimulatorModel: the ahead-of-time graph holds the "
                f"model's tensors as constants, got {type(model).__name__}"
            )
        self.jacobian_backend = jacobian_backend
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
        self._aot: dict[tuple[str, bool, int], Callable] = {}

    @classmethod
    def shared(cls, model: ControlModel, jacobian_backend: str = "inductor") -> ControlModel:
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
            return cls(model, jacobian_backend=jacobian_backend)
        key = (*key, jacobian_backend)
        if key not in cls._shared:
            cls._shared[key] = cls(model, jacobian_backend=jacobian_backend)
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
        if self.jacobian_backend == "aot":
            return self._aot_step_jacobian(x, t, u, log_theta, active, output, bool(wrt_theta))
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
        args = _padded((x, t, u, log_theta, active), n)
        # one code object serves every (output, wrt_theta) key and bucket: up to 4 x 9 graphs at
        # batch 256, past dynamo's default limit of 8 (beyond which it silently runs eager)
        with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT):
            out = self._step_jac[key](*args)
        return out if n == B else tuple(o[:B] for o in out)

    def _aot_step_jacobian(
        self, x: Tensor, t: Tensor, u: Tensor, lt: Tensor, active: Tensor, output: str, wrt_theta: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The AOTInductor form: one library per (output, wrt_theta, power-of-two bucket)."""
        B = x.shape[0]
        n = 1 << (B - 1).bit_length()
        args = _padded((x, t, u, lt, active), n)
        key = (output, wrt_theta, n)
        if key not in self._aot:
            self._aot[key] = _aot_build(self.inner, output, wrt_theta, args)
        out = self._aot[key](args)
        return tuple(out) if n == B else tuple(o[:B] for o in out)

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


def _padded(tensors: tuple[Tensor, ...], n: int) -> list[Tensor]:
    """Each tensor's batch padded to ``n`` rows with copies of row 0 (rows are independent), made
    contiguous (compiled graphs guard on strides; libraries read dense buffers)."""
    return [
        (a if a.shape[0] == n else torch.cat([a, a[:1].expand(n - a.shape[0], *a.shape[1:])])).contiguous()
        for a in tensors
    ]


def aot_cache_dir() -> Path:
    """Where ahead-of-time step-Jacobian libraries are kept: ``$PBHNO_AOT_CACHE`` or
    ``~/.cache/pbhno_gym/aot``."""
    env = os.environ.get("PBHNO_AOT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pbhno_gym" / "aot"


@functools.cache
def _source_digest() -> str:
    """Hash of this package's Python sources (read once per process, at the first build): a
    cached library is used only by the code that built it (a changed rate law or step must not
    run an old graph)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def aot_trace(model: ControlModel, output: str, wrt_theta: bool, args: list[Tensor]) -> torch.fx.GraphModule:
    """:func:`.jacobian.step_jacobian` of ``model`` as one aten graph at the shapes of ``args``
    (x, t, u, log_theta, active), traced by ``make_fx`` inside :func:`graph_tracing` so that the
    code takes the branches it takes under ``torch.compile`` (no host syncs)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    def fn(x: Tensor, t: Tensor, u: Tensor, lt: Tensor, active: Tensor):
        return step_jacobian(model, x, t, u, lt, active, output, wrt_theta)

    with graph_tracing():
        return make_fx(fn, tracing_mode="real")(*args)


def _aot_build(model: ControlModel, output: str, wrt_theta: bool, args: list[Tensor]) -> Callable:
    """:func:`aot_trace`, exported and compiled by AOTInductor, loaded; a library built before
    by the same sources, torch and model (its theta aside: log theta is an input) is loaded from
    :func:`aot_cache_dir` instead. Returns ``run(list of inputs) -> list of outputs``."""
    ident = repr(
        (_model_key(model, theta=False), output, wrt_theta, [(tuple(a.shape), str(a.dtype)) for a in args])
        + (torch.__version__, _source_digest())
    )
    path = aot_cache_dir() / f"step_jacobian_{hashlib.sha256(ident.encode()).hexdigest()[:24]}.pt2"
    if not path.exists():
        gm = aot_trace(model, output, wrt_theta, args)
        ep = torch.export.export(gm, tuple(args), strict=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=".pt2")
        os.close(fd)
        try:
            torch._inductor.aoti_compile_and_package(ep, package_path=tmp)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users of the cache
            os.replace(tmp, path)  # atomic: a concurrent or interrupted build leaves no torn file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return torch._inductor.aoti_load_package(str(path)).loader.run


def _model_key(model: ControlModel, theta: bool = True) -> tuple | None:
    """Identity of a plain :class:`SimulatorModel` by value (None for any other model);
    ``theta=False`` leaves its parameter values out (graphs that take log theta as an input)."""
    if type(model) is not SimulatorModel:
        return None
    return (
        repr(model.spec),
        model.sim.pathway.name,
        model.param_names,
        tuple(model.theta.log_values.detach().cpu().reshape(-1).tolist()) if theta else None,
        model.state_floor,
        str(model.dtype),
        str(model.device),
    )
