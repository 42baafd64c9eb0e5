"""Controllers of the comparison, one module per family, mirroring the repository's ``agents/`` configs.

Layout (as stable-baselines3: a small common core, one module per concept):

* :mod:`.base`: the :class:`Agent` contract (train / predict / save / load), :class:`TrainReport`,
  the :data:`Evaluator` type and :class:`AgentUnavailable`;
* :mod:`.registry`: name -> factory (:func:`register_agent`, :func:`make_agent`,
  :func:`agent_entries`, :func:`available_agents`), read by ``pbhno compare`` and the runner;
* :mod:`.config`: ``agents/<name>.toml`` (``[default]`` + ``["<env id>"]`` tables, run-time
  overrides merged on top), the one config dialect and loader of every agent;
* families: :mod:`.reference` (zero, constant, random), :mod:`.sb3` (PPO, SAC, TD3,
  RecurrentPPO and their rl-baselines3-zoo hyperparameters), :mod:`.casadi_nmpc` (CasADi/IPOPT
  on the true ODE model) and :mod:`.mpc` (the differentiable MPC of :mod:`pbhno_gym.control` as
  comparison agents: ``mpc_surrogate``, ``mpc_oracle``).

Family modules import on demand (stable-baselines3 and CasADi are optional extras).

A new baseline is one file plus one TOML: ``pbhno_gym/agents/<name>.py`` with an :class:`Agent`
subclass reading its settings through ``load_agent_config("<name>", spec.id, overrides)``, and
``agents/<name>.toml`` with a ``[default]`` table (plus ``["<env id>"]`` tables where needed);
it joins the comparison with one ``register_agent`` line in :mod:`.registry` (an agent defined
outside the package registers itself the same way from its own module).
"""

from .base import Agent, AgentUnavailable, Evaluator, TrainReport
from .config import load_agent_config
from .registry import agent_entries, available_agents, make_agent, register_agent

__all__ = [
    "Agent",
    "AgentUnavailable",
    "Evaluator",
    "TrainReport",
    "load_agent_config",
    "agent_entries",
    "available_agents",
    "make_agent",
    "register_agent",
]
