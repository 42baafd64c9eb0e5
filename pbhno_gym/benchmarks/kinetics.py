"""Kinetics overhead (issue 17): the batched kinetics vs the per-reaction formulation they replaced.

:func:`reference_kinetics` is the former implementation (one rate-law evaluation per consumed
species, every flux broadcast and stacked in Python, a host read of each stoichiometric
coefficient); :func:`per_reaction_kinetics` swaps it, with the other per-operation helpers it
came with, back into the pathways and the simulator, so that old and new are timed back to back
in one process. Tests use the reference to check that both give the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor

import pbhno_gym  # noqa: F401  (registers the ids)

from ..physics import simulator as _simulator
from ..physics.params import ParamSet
from ..physics.pathways.base import Pathway

__all__ = [
    "reference_kinetics",
    "per_reaction_kinetics",
    "matmul_table_when_compiled",
    "aten_ops_per_call",
    "autograd_nodes",
    "env_steps_per_s",
    "paired",
    "mpc_decision",
]


def _broadcast(rates: list[Any], x: Tensor) -> list[Tensor]:
    shape = x.shape[:-1]
    return [r.expand(shape) if torch.is_tensor(r) else x.new_full(shape, float(r)) for r in rates]


def reference_kinetics(pw: Pathway, x: Tensor, ell: Tensor | None, th, u) -> tuple[Tensor, Tensor, Tensor]:
    """Fluxes (B, N, R), production and destruction coefficients (B, N, S), one reaction at a time."""
    xs = {s: x[..., i] for i, s in enumerate(pw.species)}
    nu = pw.nu(x.dtype, x.device)
    v = torch.stack(_broadcast(pw.rate_expressions(xs, ell, th, u), x), -1)
    one = torch.ones_like(x[..., 0])
    cols = []
    for i, s in enumerate(pw.species):
        cons = [r for r in range(len(pw.reactions)) if nu[r, i] < 0]
        if not cons:
            cols.append(torch.zeros_like(one))
            continue
        rates = _broadcast(pw.rate_expressions({**xs, s: one}, ell, th, u), x)
        cols.append(sum(float(-nu[r, i]) * rates[r] for r in cons))
    return v, v @ nu.clamp_min(0), torch.stack(cols, -1)


def _old_ratio(x: Tensor, x1: Tensor, eps: float = 1e-9) -> Tensor:
    ok = x1 > eps
    return torch.where(ok, x / torch.where(ok, x1, torch.ones_like(x1)), torch.zeros_like(x1))


@contextmanager
def per_reaction_kinetics() -> Iterator[None]:
    """Within the block every pathway and simulator runs the former per-reaction kinetics (and
    the former membrane coupling: uptake and emission each from its own split, a zero emission
    multiplied through the membrane operator)."""
    saved = dict(
        kinetics=Pathway.kinetics,
        fluxes=Pathway.fluxes,
        split=Pathway.split,
        inhibitor_dict=Pathway.inhibitor_dict,
        unpack=ParamSet.unpack,
        ratio=_simulator._ratio,
        membrane_terms=Pathway.membrane_terms,
    )

    def kinetics(self, x, ell, th, u):
        return reference_kinetics(self, x, ell, th, u)[1:]

    def fluxes(self, x, ell, th, u):
        return torch.stack(_broadcast(self.rate_expressions(self.split(x), ell, th, u), x), dim=-1)

    def split(self, x):
        return {s: x[..., i] for i, s in enumerate(self.species)}

    def inhibitor_dict(self, u_inh, batch, like):
        if u_inh is None:
            u_inh = like.new_zeros(batch, len(self.inhibitors))
        return {c.name: u_inh[:, j : j + 1] for j, c in enumerate(self.inhibitors)}

    def unpack(self, log_theta):
        th = torch.exp(log_theta.reshape(-1, len(self)))
        return {n: th[:, i : i + 1] for i, n in enumerate(self.names)}

    def membrane_terms(self, x, th, u):
        return self.uptake(x, th, u), self.emission(x, th, u)

    Pathway.kinetics, Pathway.fluxes, Pathway.split = kinetics, fluxes, split  # type: ignore[method-assign]
    Pathway.membrane_terms = membrane_terms  # type: ignore[method-assign]
    Pathway.inhibitor_dict, ParamSet.unpack = inhibitor_dict, unpack  # type: ignore[method-assign]
    _simulator._ratio = _old_ratio
    try:
        yield
    finally:
        Pathway.kinetics, Pathway.fluxes = saved["kinetics"], saved["fluxes"]  # type: ignore[method-assign]
        Pathway.split, Pathway.inhibitor_dict = saved["split"], saved["inhibitor_dict"]  # type: ignore[method-assign]
        ParamSet.unpack = saved["unpack"]  # type: ignore[method-assign]
        Pathway.membrane_terms = saved["membrane_terms"]  # type: ignore[method-assign]
        _simulator._ratio = saved["ratio"]


@contextmanager
def matmul_table_when_compiled() -> Iterator[None]:
    """Within the block ``Pathway.kinetics`` assembles production and destruction by a stack of
    the fluxes and one matmul also under torch.compile (its form before the compiled branch
    applied the table flux by flux): the baseline of the compiled-step benchmark."""
    saved = Pathway.kinetics

    def kinetics(self, x, ell, th, u):
        aug, w = self._kinetics_tables(x.dtype, x.device)
        xa = torch.where(aug, 1.0, x)
        xs = self.split(xa)
        v = self._stack_rates(self.rate_expressions(xs, ell, th, u), xs[self.species[0]])
        out = (v.reshape(w.shape[0], -1).t() @ w).reshape(*x.shape[:-1], -1)
        return out.split(x.shape[-1], dim=-1)

    Pathway.kinetics = kinetics  # type: ignore[method-assign]
    try:
        yield
    finally:
        Pathway.kinetics = saved  # type: ignore[method-assign]


def aten_ops_per_call(fn: Callable[[], Any]) -> int:
    """Number of aten operator calls (nested ones included) one ``fn()`` issues (torch.profiler)."""
    fn()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return sum(1 for e in prof.events() if e.name.startswith("aten::"))


def autograd_nodes(out: Tensor) -> int:
    """Number of autograd graph nodes behind ``out`` (what a backward pass walks)."""
    seen, todo = set(), [out.grad_fn]
    while todo:
        f = todo.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        todo += [g for g, _ in f.next_functions]
    return len(seen)


def env_steps_per_s(
    env_id: str, steps: int = 200, seed: int = 0, compile: bool = False
) -> Callable[[], float]:
    """A timer of single-env (Gymnasium API) steps per second; each call times ``steps`` steps
    (``compile``: the env's simulator step through torch.compile, compiled by two untimed steps)."""
    env = gym.make(env_id, compile=compile)
    env.reset(seed=seed)
    a = env.action_space.sample() * 0.5
    if compile:
        env.step(a)
        env.step(a)

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        return steps / (time.perf_counter() - t0)

    return run


def paired(fn: Callable[[], float], repeats: int = 5) -> tuple[list[float], list[float]]:
    """``fn()`` under the per-reaction kinetics and the batched ones, alternating, ``repeats``
    times each: (old values, new values). Alternation spreads machine noise over both."""
    old, new = [], []
    for _ in range(repeats):
        with per_reaction_kinetics():
            old.append(fn())
        new.append(fn())
    return old, new


def mpc_decision(env_id: str, batch: int, seed: int = 0) -> tuple[Callable[[], float], Callable[[], Tensor]]:
    """One MPC decision on ``batch`` problems from env episodes (true theta), with the MPC agent's
    settings for ``env_id`` (``agents/mpc.toml``): a cold solve (``iterations``, ``tol``) then the
    warm re-plan of the next step (``warm_iterations`` from the shifted plan), as in closed loop.

    Returns a timer (seconds of the cold + warm pair) and a function giving both solves' costs
    (2, B) at the plans they reach (for old-vs-new agreement).
    """
    from ..benchmarks.mpc import env_problems
    from ..control import load_config
    from ..control.planner import Planner, PlanProblem, shift_plan
    from ..envs.spec import load_spec

    cfg, r = load_config(None, env_id), load_spec(env_id).reward
    prob, model = env_problems(env_id, batch, horizon=cfg.horizon, seed=seed)
    kw = dict(
        Q=r.Q if cfg.Q is None else cfg.Q,
        R=r.R if cfg.R is None else cfg.R,
        solver=cfg.solver,
        tol=cfg.tol,
        lr=cfg.lr,
        patience=cfg.patience,
        damping=cfg.damping,
        jac_chunk=cfg.jac_chunk,
    )
    cold_p = Planner(model, cfg.horizon, iterations=cfg.iterations, **kw)
    warm_p = Planner(model, cfg.horizon, iterations=cfg.warm_iterations, **kw)

    def decide() -> tuple[Tensor, Tensor]:
        cold = cold_p.solve(prob)
        with torch.no_grad():
            nxt = model.step(prob.z0, cold.U[:, 0], prob.log_theta)
        prob2 = PlanProblem(nxt, prob.target, prob.log_theta, prob.dose_left, prob.weight)
        warm = warm_p.solve(prob2, shift_plan(cold.S))
        return cold.cost.detach(), warm.cost.detach()

    def timer() -> float:
        t0 = time.perf_counter()
        decide()
        return time.perf_counter() - t0

    return timer, lambda: torch.stack(decide())
