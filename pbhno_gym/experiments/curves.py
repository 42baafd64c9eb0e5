"""Learning curves: evaluations of an agent at growing numbers of environment samples.

The runner hands a :class:`CurveEvaluator` to ``Agent.train`` as its ``evaluate`` argument. It
evaluates through the one evaluation path (:func:`pbhno_gym.evaluation.evaluate_agent`, on the
test episodes of the agent's world), remembers each point and writes them atomically to ``curve.json`` so an
interrupted training resumes with the points it already has.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..utils.io import atomic_write_json

__all__ = ["CurveEvaluator"]


class CurveEvaluator:
    """``evaluate(agent, env_samples) -> point``; ``pending(n)`` says a milestone is due at ``n`` samples.

    Args:
        fn: evaluates the agent as it is now, returning a summary dict.
        marks: env-sample milestones at which learning agents should call it.
        path: where points are saved (and loaded from, to resume).
    """

    def __init__(self, fn: Callable[[Any], dict[str, Any]], marks: list[int], path: str | Path | None = None):
        self.fn, self.marks = fn, sorted(marks)
        self.path = Path(path) if path else None
        self.points: list[dict[str, Any]] = []
        self.seconds = 0.0  # wall time spent evaluating (agents leave it out of training time)
        if self.path is not None and self.path.exists():
            self.points = json.loads(self.path.read_text())

    def pending(self, env_samples: int) -> bool:
        n = len(self.points)
        return n < len(self.marks) and env_samples >= self.marks[n]

    def __call__(self, agent, env_samples: int) -> dict[str, Any]:
        """Evaluate now and record the point; a point already recorded at ``env_samples`` (a
        resumed run re-reaching it) is returned as it is, not evaluated twice."""
        for p in self.points:
            if p["env_samples"] == int(env_samples):
                return p
        t0 = time.perf_counter()
        point = {"env_samples": int(env_samples), **self.fn(agent)}
        self.seconds += time.perf_counter() - t0
        self.points.append(point)
        if self.path is not None:
            atomic_write_json(self.path, self.points)
        return point
