"""The contract every controller of a comparison fulfils (the small common core of :mod:`pbhno_gym.agents`).

An :class:`Agent`

* trains (or loads) for one environment: ``train(env, budget, seed, run_dir, device, evaluate)``
  returns a :class:`TrainReport` (environment samples consumed, wall time, device, ...); an
  agent that finds a finished model in ``run_dir`` loads it instead of training;
* acts like an SB3 policy: ``predict(obs, state, episode_start, deterministic) -> (actions,
  state)`` on a batch of observations, actions in the environment's *physical* units (the
  default action space; RL agents trained with ``normalize_actions=True`` map back);
* saves and loads what it learnt: ``save(path)`` / ``load(path)`` on a folder (no-ops for agents
  that learn nothing, e.g. the references, or that rebuild everything in ``train``);
* sees observations only. Agents that use the true simulator say so (``uses_true_model``).

``evaluate``, handed to ``train`` by the runner (a :class:`~pbhno_gym.experiments.curves.CurveEvaluator`),
evaluates the agent as it is now on the validation episodes through
:func:`pbhno_gym.evaluation.evaluate_agent` (the one evaluation code path) and records a
learning-curve point: ``evaluate(agent, env_samples)``. ``evaluate.marks`` are the env-sample
counts the runner would like points at and ``evaluate.pending(n)`` says one is due; an MPC agent
can instead call it after each fit on a growing dataset.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.spec import EnvSpec

__all__ = [
    "Agent",
    "ConfiguredAgent",
    "TrainReport",
    "Evaluator",
    "AgentUnavailable",
    "domain_randomized",
    "jsonable",
]

#: ``evaluate(agent, env_samples) -> curve point`` (a ``CurveEvaluator``), supplied by the runner.
Evaluator = Callable[["Agent", int], dict[str, Any]]


@dataclass
class TrainReport:
    """What training an agent cost.

    Attributes:
        env_samples: environment transitions (steps) consumed; 0 for agents that do not learn.
        wall_time_s: wall time of training (of the original training when loaded), without the
            learning-curve evaluations.
        env_episodes: episodes collected (e.g. to fit the surrogate), when that is the unit.
        device: where the agent computes.
        loaded: True when ``train`` loaded a finished model instead of training.
        extra: anything else worth recording (hyperparameters, solver settings, ...).
    """

    env_samples: int = 0
    wall_time_s: float = 0.0
    env_episodes: float | None = None
    device: str = "cpu"
    loaded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainReport:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class Agent(ABC):
    """A controller in the comparison (see the module docstring for the contract)."""

    name: str = "agent"
    #: reads the true simulator or its parameters (oracle / true-model references)
    uses_true_model: bool = False
    #: consumes environment samples when it trains (the budget applies)
    learns: bool = False

    def supports(self, spec: EnvSpec) -> str | None:
        """None if this agent can control ``spec``, else the reason it cannot."""
        return None

    @abstractmethod
    def train(
        self,
        env: str | EnvSpec,
        budget: int,
        seed: int,
        run_dir: str | Path,
        device: str = "cpu",
        evaluate: Evaluator | None = None,
        progress: bool = True,
    ) -> TrainReport:
        """Train (or load from ``run_dir``) for ``env`` with at most about ``budget`` env samples."""

    @abstractmethod
    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """(B, n_controls) physical actions for (B, obs_dim) observations, and the next state."""

    def save(self, path: str | Path) -> None:
        """Write what :meth:`load` needs into the folder ``path``; by default there is nothing to
        save (agents that learn nothing, or rebuild everything in ``train``)."""
        Path(path).mkdir(parents=True, exist_ok=True)

    def load(self, path: str | Path) -> None:
        """Restore what :meth:`save` wrote into the folder ``path``; by default nothing to restore."""
        return None


class AgentUnavailable(LookupError):
    """The agent name is a registry slot not filled yet (or an optional dependency is missing)."""


def domain_randomized(spec: EnvSpec) -> EnvSpec:
    """``spec`` with a new world drawn from the prior every episode instead of its fixed hidden
    world (``randomize_parameters``, no ``world_seed``): the training env of the ``<algo>_dr``
    agents, which gives RL the model knowledge (the prior) that MPC gets for free."""
    import dataclasses

    return dataclasses.replace(spec, world_seed=None, randomize_parameters=True)


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON values (sorted keys; other objects by ``str``): fingerprints and reports."""
    return json.loads(json.dumps(x, sort_keys=True, default=str))


class ConfiguredAgent(Agent):
    """A learning agent configured by ``agents/<config_name>.toml`` plus overrides, with the
    bookkeeping its ``train`` shares: the merged settings, the fingerprint a finished run is
    reused under, and training wall time without the learning-curve evaluations."""

    learns = True
    algo: str = "agent"
    config_name: str = "agent"
    overrides: dict[str, Any]
    cfg: dict[str, Any]
    _wall0: float = 0.0
    _eval_s0: float = 0.0
    _evaluate: Any = None

    def resolve(self, spec: EnvSpec) -> dict[str, Any]:
        """The merged hyperparameters for this env (file default <- env section <- overrides)."""
        from .config import load_agent_config

        return load_agent_config(self.config_name, spec, self.overrides)

    def _fingerprint(self, spec: EnvSpec, budget: int, seed: int) -> dict[str, Any]:
        return jsonable(
            {
                "algo": self.algo,
                "config": self.cfg,
                "budget": int(budget),
                "seed": int(seed),
                "env": spec.to_dict(),
            }
        )

    def _elapsed(self) -> float:
        """Training wall time so far, without the learning-curve evaluations."""
        evals = getattr(self._evaluate, "seconds", 0.0) - self._eval_s0
        return time.perf_counter() - self._wall0 - evals
