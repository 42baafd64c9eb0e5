"""Whether the code runs under a graph tracer (torch.compile, or make_fx for ahead-of-time builds).

Code with a traced form (no host syncs, data-dependent checks skipped, unrolled tables) asks
:func:`is_tracing` instead of ``torch.compiler.is_compiling``: the ahead-of-time path
(:mod:`pbhno_gym.control.compiled`, ``compile_backend = "aot"``) traces with ``make_fx``, which
dynamo's flag does not see, and must take the same branches as ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

__all__ = ["is_tracing", "graph_tracing"]

_STATE = threading.local()  # per thread: a build in one thread leaves another's eager calls eager


def is_tracing() -> bool:
    """True under ``torch.compile`` or inside :func:`graph_tracing` (in this thread)."""
    # dynamo's flag first: under torch.compile it is constant-true, so the thread-local is never traced
    return torch.compiler.is_compiling() or getattr(_STATE, "depth", 0) > 0


@contextlib.contextmanager
def graph_tracing() -> Iterator[None]:
    """Mark the enclosed calls as traced (make_fx): :func:`is_tracing` is true inside."""
    _STATE.depth = getattr(_STATE, "depth", 0) + 1
    try:
        yield
    finally:
        _STATE.depth -= 1
