"""The controllers a comparison runs: one interface, one registry (name -> factory).

Every comparison agent

* trains (or loads) for one environment: ``train(env, budget, seed, run_dir, device, evaluate)``
  returns a :class:`TrainReport` (environment samples consumed, wall time, device, ...); an
  agent that finds a finished model in ``run_dir`` loads it instead of training;
* acts like an SB3 policy: ``predict(obs, state, episode_start, deterministic) -> (actions,
  state)`` on a batch of observations, actions in the environment's *physical* units (the
  default action space; RL agents trained with ``normalize_actions=True`` map back);
* sees observations only. Agents that use the true simulator say so (``uses_true_model``).

``evaluate``, handed to ``train`` by the runner (a :class:`~pbhno_gym.experiments.curves.CurveEvaluator`),
evaluates the agent as it is now on the validation episodes through
:func:`pbhno_gym.evaluation.evaluate_agent` (the one evaluation code path) and records a
learning-curve point: ``evaluate(agent, env_samples)``. ``evaluate.marks`` are the env-sample
counts the runner would like points at and ``evaluate.pending(n)`` says one is due; an MPC agent
can instead call it after each fit on a growing dataset.

Registered here: ``zero``, ``constant``, ``random`` (references), ``ppo``, ``sac``, ``td3``,
``recurrent_ppo`` (stable-baselines3 / sb3-contrib), ``casadi_nmpc`` (nonlinear MPC with
CasADi/IPOPT on the true ODE model, MAPK-v0), and the differentiable MPC of issue 5
(:mod:`.mpc_agents`): ``mpc_surrogate`` (plans through the PB-HNO surrogate it fits under the
budget) and ``mpc_oracle`` (the true simulator with the true state and parameters, an upper
bound). ``register_agent(name, None, kind)`` declares a slot the runner lists as unavailable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.spec import EnvSpec

__all__ = [
    "Agent",
    "TrainReport",
    "Evaluator",
    "AgentEntry",
    "AgentUnavailable",
    "register_agent",
    "make_agent",
    "agent_entries",
    "available_agents",
    "MPC_SLOTS",
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


class AgentUnavailable(LookupError):
    """The agent name is a registry slot not filled yet (or an optional dependency is missing)."""


@dataclass(frozen=True)
class AgentEntry:
    name: str
    factory: Callable[..., Agent] | None
    kind: str  # "reference" | "rl" | "mpc"
    description: str


_REGISTRY: dict[str, AgentEntry] = {}


def register_agent(
    name: str,
    factory: Callable[..., Agent] | None,
    kind: str,
    description: str = "",
    replace: bool = False,
) -> None:
    """Register ``factory(**options) -> Agent`` under ``name`` (``factory=None`` declares a slot)."""
    if kind not in ("reference", "rl", "mpc"):
        raise ValueError(f"register_agent: kind must be reference, rl or mpc, got {kind!r}")
    old = _REGISTRY.get(name)
    if old is not None and old.factory is not None and not replace:
        raise ValueError(f"agent {name!r} is already registered (pass replace=True to override)")
    _REGISTRY[name] = AgentEntry(name, factory, kind, description or (old.description if old else ""))


def agent_entries() -> dict[str, AgentEntry]:
    """Every registered name, slots included, in registration order."""
    return dict(_REGISTRY)


def available_agents() -> list[str]:
    """Names whose factory exists (slots not yet filled are left out)."""
    return [n for n, e in _REGISTRY.items() if e.factory is not None]


def make_agent(name: str, **options) -> Agent:
    """A fresh agent; ``options`` go to its factory (e.g. hyperparameter overrides)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown agent {name!r}; registered: {', '.join(_REGISTRY)}")
    entry = _REGISTRY[name]
    if entry.factory is None:
        raise AgentUnavailable(f"agent {name!r} is a slot not filled yet: {entry.description}")
    agent = entry.factory(**options)
    agent.name = name
    return agent


# ----------------------------------------------------------------------------- built-in agents
def _reference(kind: str) -> Callable[..., Agent]:
    def factory(**options) -> Agent:
        from ..baselines import reference

        return {
            "zero": reference.ZeroAgent,
            "constant": reference.ConstantAgent,
            "random": reference.RandomAgent,
        }[kind](**options)

    return factory


def _sb3(algo: str) -> Callable[..., Agent]:
    def factory(**options) -> Agent:
        try:
            from ..baselines.sb3_agent import SB3Agent

            return SB3Agent(algo, **options)
        except ImportError as e:  # stable-baselines3 / sb3-contrib are the optional ``rl`` extra
            raise AgentUnavailable(
                f"{algo} needs stable-baselines3: pip install 'pbhno-gym[rl]' ({e})"
            ) from None

    return factory


def _casadi_nmpc(**options) -> Agent:
    try:
        from ..baselines.casadi_nmpc import CasadiNMPCAgent
    except ImportError as e:  # casadi is the optional ``control`` extra
        raise AgentUnavailable(f"casadi_nmpc needs CasADi: pip install 'pbhno-gym[control]' ({e})") from None
    return CasadiNMPCAgent(**options)


register_agent("zero", _reference("zero"), "reference", "no intervention (every control at its lower bound)")
register_agent(
    "constant", _reference("constant"), "reference", "a fixed dose (default: mid-range on every channel)"
)
register_agent("random", _reference("random"), "reference", "random pulse schedules (data.RandomPulsePolicy)")
register_agent("ppo", _sb3("ppo"), "rl", "stable-baselines3 PPO, agents/ppo.toml")
register_agent("sac", _sb3("sac"), "rl", "stable-baselines3 SAC, agents/sac.toml")
register_agent("td3", _sb3("td3"), "rl", "stable-baselines3 TD3, agents/td3.toml")
register_agent(
    "recurrent_ppo", _sb3("recurrent_ppo"), "rl", "sb3-contrib RecurrentPPO (LSTM), agents/recurrent_ppo.toml"
)
register_agent(
    "casadi_nmpc",
    _casadi_nmpc,
    "mpc",
    "nonlinear MPC, CasADi/IPOPT on the true ODE model (ODE-only envs: MAPK-v0), agents/casadi_nmpc.toml",
)


# ----------------------------------------------------------------------------- issue 5 MPC agents
def _mpc(kind: str) -> Callable[..., Agent]:
    def factory(**options) -> Agent:
        from . import mpc_agents

        return {"surrogate": mpc_agents.SurrogateMPC, "oracle": mpc_agents.OracleMPC}[kind](**options)

    return factory


MPC_SLOTS = {
    "mpc_surrogate": "differentiable MPC through the PB-HNO surrogate fitted under the sample budget "
    "(observations only), agents/mpc_surrogate.toml + agents/mpc.toml",
    "mpc_oracle": "ORACLE: the same MPC through the true simulator with the true state and parameters",
}
register_agent("mpc_surrogate", _mpc("surrogate"), "mpc", MPC_SLOTS["mpc_surrogate"])
register_agent("mpc_oracle", _mpc("oracle"), "mpc", MPC_SLOTS["mpc_oracle"])
