"""The agent registry: name -> factory, read by the comparison runner and the CLI.

Each built-in entry's factory imports its family module on first use with an ordinary import
statement, so listing agents needs no optional dependency (stable-baselines3, sb3-contrib,
CasADi) and the family modules, which import only :mod:`.base` and :mod:`.config`, never import
this module back. A missing optional dependency raises :class:`~.base.AgentUnavailable` with its
install hint. ``register_agent(name, None, kind)`` declares a slot the runner lists as
unavailable.

Registered: ``zero``, ``constant``, ``random`` (:mod:`.reference`), ``ppo``, ``sac``, ``td3``,
``recurrent_ppo`` (:mod:`.sb3`), ``rsl_ppo`` (:mod:`.rsl_ppo`, rsl-rl PPO on the batched env),
``casadi_nmpc`` (:mod:`.casadi_nmpc`, the true ODE model,
MAPK-v0), and the differentiable MPC (:mod:`.mpc`): ``mpc_surrogate`` (plans through the PB-HNO
surrogate it fits under the budget) and ``mpc_oracle`` (the true simulator with the true state
and parameters, an upper bound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .base import Agent, AgentUnavailable

__all__ = ["AgentEntry", "register_agent", "make_agent", "agent_entries", "available_agents", "MPC_SLOTS"]

KINDS = ("reference", "rl", "mpc")


def _unavailable(e: ImportError, packages: tuple[str, ...], message: str) -> AgentUnavailable:
    """``AgentUnavailable(message)`` when ``e`` says an optional package is not installed; any
    other import failure (a broken module of this package, an incompatible install) is re-raised
    as it is, so a comparison never reports a bug as a missing extra and silently skips the agent."""
    missing = getattr(e, "name", None) or ""
    if isinstance(e, ModuleNotFoundError) and missing.split(".")[0] in packages:
        return AgentUnavailable(f"{message} ({e})")
    raise e


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
    if kind not in KINDS:
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
        from . import reference

        return {
            "zero": reference.ZeroAgent,
            "constant": reference.ConstantAgent,
            "random": reference.RandomAgent,
        }[kind](**options)

    return factory


def _sb3(algo: str, domain_randomized: bool = False) -> Callable[..., Agent]:
    def factory(**options) -> Agent:
        try:
            from .sb3 import SB3Agent

            return SB3Agent(algo, domain_randomized=domain_randomized, **options)
        except ImportError as e:  # stable-baselines3 / sb3-contrib are the optional ``rl`` extra
            raise _unavailable(
                e,
                ("stable_baselines3", "sb3_contrib"),
                f"{algo} needs stable-baselines3: pip install 'pbhno-gym[rl]'",
            ) from None

    return factory


def _rsl_ppo(domain_randomized: bool = False) -> Callable[..., Agent]:
    def factory(**options) -> Agent:
        try:
            from .rsl_ppo import RslPPOAgent

            return RslPPOAgent(domain_randomized=domain_randomized, **options)
        except ImportError as e:  # rsl-rl-lib is in the optional ``rl`` extra
            raise _unavailable(
                e, ("rsl_rl", "tensordict"), "rsl_ppo needs rsl-rl: pip install 'pbhno-gym[rl]'"
            ) from None

    return factory


def _casadi_nmpc(**options) -> Agent:
    try:
        from .casadi_nmpc import CasadiNMPCAgent
    except ImportError as e:  # casadi is the optional ``control`` extra
        raise _unavailable(
            e, ("casadi",), "casadi_nmpc needs CasADi: pip install 'pbhno-gym[control]'"
        ) from None
    return CasadiNMPCAgent(**options)


def _mpc(kind: str) -> Callable[..., Agent]:
    def factory(**options) -> Agent:
        from . import mpc

        if kind == "adaptive":
            return mpc.NominalMPC(estimate_theta=True, **options)
        return {"surrogate": mpc.SurrogateMPC, "nominal": mpc.NominalMPC, "oracle": mpc.OracleMPC}[kind](
            **options
        )

    return factory


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
for _algo in ("ppo", "sac", "td3", "recurrent_ppo"):
    register_agent(
        f"{_algo}_dr",
        _sb3(_algo, domain_randomized=True),
        "rl",
        f"{_algo} trained with domain randomisation over the prior (a new world each episode; "
        "it is then tested in the unknown world like the others)",
    )
register_agent(
    "rsl_ppo",
    _rsl_ppo(),
    "rl",
    "rsl-rl PPO on the natively batched env (1024 sub-envs, high throughput), agents/rsl_ppo.toml",
)
register_agent(
    "rsl_ppo_dr",
    _rsl_ppo(domain_randomized=True),
    "rl",
    "rsl_ppo trained with domain randomisation over the prior (a new world each episode)",
)
register_agent(
    "casadi_nmpc",
    _casadi_nmpc,
    "mpc",
    "nonlinear MPC, CasADi/IPOPT on the true ODE model (ODE-only envs: MAPK-v0), agents/casadi_nmpc.toml",
)

MPC_SLOTS = {
    "mpc_surrogate": "differentiable MPC through the PB-HNO surrogate fitted under the sample budget "
    "(observations only), agents/mpc_surrogate.toml + agents/mpc.toml",
    "mpc_nominal": "the same MPC through the skeleton at the prior mean (the model every agent is told; "
    "0 samples: the no-learning baseline)",
    "mpc_adaptive": "mpc_nominal whose moving-horizon estimator also re-estimates log theta within each "
    "episode (0 training samples)",
    "mpc_oracle": "ORACLE: the same MPC through the true simulator with the true state and parameters",
}
register_agent("mpc_surrogate", _mpc("surrogate"), "mpc", MPC_SLOTS["mpc_surrogate"])
register_agent("mpc_nominal", _mpc("nominal"), "mpc", MPC_SLOTS["mpc_nominal"])
register_agent("mpc_adaptive", _mpc("adaptive"), "mpc", MPC_SLOTS["mpc_adaptive"])
register_agent("mpc_oracle", _mpc("oracle"), "mpc", MPC_SLOTS["mpc_oracle"])
