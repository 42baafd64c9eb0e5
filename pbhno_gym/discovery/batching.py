"""Lockstep batching: many sequential optimisers (SciPy) share one batched simulator call.

SciPy's ``least_squares`` asks for one residual vector at a time. Running K multistarts in K
threads and answering their requests together turns K sequential simulations into one batched
rollout (the simulator is batched over parameter vectors), which on the CPU costs little more
than one. :class:`LockstepBatcher` waits until every still-running worker has a request
pending, evaluates them in one call, and hands each worker its answer; a worker that finishes
leaves the barrier. Each evaluation returns residuals and Jacobian together and caches the
Jacobian, so SciPy's ``jac(x)`` after ``fun(x)`` at the same point costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["LockstepBatcher", "run_lockstep"]


class LockstepBatcher:
    """Serve ``n_workers`` threads' point evaluations with batched calls of ``batched_fn``.

    Args:
        batched_fn: ``(X (k, p)) -> (values (k, R), jacobians (k, R, p))``.
        n_workers: threads that will call :meth:`evaluate` until they call :meth:`done`.
    """

    def __init__(
        self, batched_fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], n_workers: int
    ) -> None:
        self.fn = batched_fn
        self.cv = threading.Condition()
        self.active = int(n_workers)
        self.pending: dict[int, np.ndarray] = {}
        self.results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.error: BaseException | None = None
        self.n_batches = 0
        self.n_points = 0

    def _run_if_ready(self) -> None:
        if self.pending and len(self.pending) >= self.active and self.error is None:
            ids = sorted(self.pending)
            X = np.stack([self.pending[i] for i in ids])
            self.pending = {}
            try:
                vals, jacs = self.fn(X)
            except BaseException as e:  # surface the failure in every waiting worker
                self.error = e
            else:
                self.n_batches += 1
                self.n_points += len(ids)
                for k, i in enumerate(ids):
                    self.results[i] = (vals[k], jacs[k])
            self.cv.notify_all()

    def evaluate(self, wid: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals and Jacobian at ``x`` for worker ``wid`` (blocks until the batch runs)."""
        x = np.array(x, dtype=np.float64)
        with self.cv:
            self.pending[wid] = x
            self._run_if_ready()
            while wid not in self.results and self.error is None:
                self.cv.wait()
            if self.error is not None:
                raise RuntimeError(f"batched evaluation failed: {self.error}") from self.error
            v, J = self.results.pop(wid)
            self.cache[wid] = (x, v, J)
            return v, J

    def fun(self, wid: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: self.evaluate(wid, x)[0]

    def jac(self, wid: int) -> Callable[[np.ndarray], np.ndarray]:
        def j(x):
            c = self.cache.get(wid)
            if c is not None and np.array_equal(c[0], x):
                return c[2]
            return self.evaluate(wid, x)[1]

        return j

    def done(self, wid: int) -> None:
        with self.cv:
            self.active -= 1
            self._run_if_ready()


def run_lockstep(batcher: LockstepBatcher, jobs: list[Callable[[int], Any]]) -> list[Any]:
    """Run ``jobs[i](i)`` in threads sharing ``batcher``; returns their results in order.

    An exception in a job is returned in its slot (the other jobs continue).
    """
    out: list[Any] = [None] * len(jobs)

    def work(i: int) -> None:
        try:
            out[i] = jobs[i](i)
        except BaseException as e:  # noqa: BLE001 - reported to the caller per job
            out[i] = e
        finally:
            batcher.done(i)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
