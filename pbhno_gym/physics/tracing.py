"""Whether the code runs under a graph tracer (torch.compile, or make_fx for ahead-of-time builds).

Code with a traced form (no host syncs, data-dependent checks skipped, unrolled tables) asks
:func:`is_tracing` instead of ``torch.compiler.is_compiling``: the ahead-of-time path
(:mod:`pbhno_gym.control.compiled`, ``compile_backend = "aot"``) traces with ``make_fx``, which
dynamo's flag does not see, and must take the same branches as ``torch.compile``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["is_tracing", "graph_tracing"]

_DEPTH = 0


def is_tracing() -> bool:
    """True under ``torch.compile`` or inside :func:`graph_tracing`."""
    return _DEPTH > 0 or torch.compiler.is_compiling()


@contextlib.contextmanager
def graph_tracing() -> Iterator[None]:
    """Mark the enclosed calls as traced (make_fx): :func:`is_tracing` is true inside."""
    global _DEPTH
    _DEPTH += 1
    try:
        yield
    finally:
        _DEPTH -= 1
