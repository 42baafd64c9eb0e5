"""Configuration of a comparison run: which envs (with spec overrides), which agents, budgets,
evaluation sizes, seed and device; the ``quick`` and ``full`` presets; validation and files.

A config is plain data (JSON/TOML-able). The runner writes the resolved config into the run
directory, so ``pbhno compare --config <run>/config.json --envs <id> --agents <name>`` re-runs
any row of a table.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..envs.spec import load_spec
from ..evaluation.episodes import MAX_TRAIN_SEED
from ..utils.config import merge, read_toml

__all__ = ["EnvRun", "CompareConfig", "PRESETS", "preset", "load_config", "ALL_AGENTS"]

#: every agent the comparison knows of, in table order (slots that are not filled are skipped)
ALL_AGENTS = [
    "zero",
    "constant",
    "random",
    "ppo",
    "sac",
    "td3",
    "recurrent_ppo",
    "casadi_nmpc",
    "mpc_oracle",
    "mpc_surrogate",
]


@dataclass
class EnvRun:
    """One environment of a comparison.

    Attributes:
        id: registered env id.
        overrides: spec overrides, as for ``gym.make`` (e.g. ``{"layout": {"ny": 32, "nx": 32}}``).
        label: name in tables and figures (default: the id).
        budget: environment samples each learning agent may use to train (the same for all).
        eval_episodes: held-out test episodes per agent (fixed seeds, the same for every agent).
        curve_points: learning-curve evaluations spread over training (0: none).
        curve_episodes: validation episodes per learning-curve point.
        agent_options: agent name -> options for this env (e.g. hyperparameter overrides).
        skip_agents: agent name -> why it is left out of this env run (listed as skipped in the
            results, e.g. an agent too slow for the quick CPU setting).
    """

    id: str
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    budget: int = 50_000
    eval_episodes: int = 32
    curve_points: int = 4
    curve_episodes: int = 16
    agent_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    skip_agents: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = self.label or self.id


@dataclass
class CompareConfig:
    """A whole comparison (see :data:`PRESETS`)."""

    name: str = "custom"
    envs: list[EnvRun] = field(default_factory=list)
    agents: list[str] = field(default_factory=lambda: list(ALL_AGENTS))
    seed: int = 0
    device: str = "cpu"
    record: int = 1  # episodes per agent whose trajectories are kept for the figures
    agent_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # agent -> options, all envs
    description: str = ""

    def options_for(self, agent: str, env: EnvRun) -> dict[str, Any]:
        return merge(self.agent_options.get(agent, {}), env.agent_options.get(agent, {}))

    def validate(self) -> CompareConfig:
        """Raise ``ValueError`` naming the first bad field; returns self."""
        from ..agents import agent_entries

        if not self.envs:
            raise ValueError("config.envs: at least one environment is needed")
        known = agent_entries()
        for a in self.agents:
            if a not in known:
                raise ValueError(f"config.agents: unknown agent {a!r}; registered: {', '.join(known)}")
        if not (isinstance(self.seed, int) and 0 <= self.seed < MAX_TRAIN_SEED // 2):
            raise ValueError(f"config.seed must be an int in [0, 2^31), got {self.seed!r}")
        if self.record < 0:
            raise ValueError(f"config.record must be >= 0, got {self.record}")
        labels = set()
        for i, e in enumerate(self.envs):
            where = f"config.envs[{i}]"
            try:
                load_spec(e.id, e.overrides)
            except ValueError as err:
                raise ValueError(f"{where} ({e.id}): {err}") from None
            for k in ("budget", "eval_episodes", "curve_episodes"):
                v = getattr(e, k)
                if not (isinstance(v, int) and v >= 1):
                    raise ValueError(f"{where}.{k} must be a positive int, got {v!r}")
            if not (isinstance(e.curve_points, int) and e.curve_points >= 0):
                raise ValueError(f"{where}.curve_points must be an int >= 0, got {e.curve_points!r}")
            if e.label in labels:
                raise ValueError(f"{where}.label {e.label!r} is used twice; give each env run its own label")
            labels.add(e.label)
            for a, why in e.skip_agents.items():
                if a not in known or not isinstance(why, str):
                    raise ValueError(f"{where}.skip_agents: {a!r} must be a registered agent with a reason")
            for a in e.agent_options:
                if a not in known:
                    raise ValueError(f"{where}.agent_options: unknown agent {a!r}")
        for a in self.agent_options:
            if a not in known:
                raise ValueError(f"config.agent_options: unknown agent {a!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompareConfig:
        d = copy.deepcopy(d)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config: unknown field(s) {unknown}; known: {sorted(known)}")
        env_known = {f.name for f in fields(EnvRun)}
        envs = []
        for i, e in enumerate(d.pop("envs", [])):
            bad = sorted(set(e) - env_known)
            if bad:
                raise ValueError(f"config.envs[{i}]: unknown field(s) {bad}; known: {sorted(env_known)}")
            if "id" not in e:
                raise ValueError(f"config.envs[{i}]: missing field 'id'")
            envs.append(EnvRun(**e))
        return cls(envs=envs, **d)

    def select(self, envs: list[str] | None = None, agents: list[str] | None = None) -> CompareConfig:
        """A copy restricted to the given env ids/labels and agents (None keeps all)."""
        out = copy.deepcopy(self)
        if envs:
            out.envs = [e for e in out.envs if e.id in envs or e.label in envs]
            missing = set(envs) - {e.id for e in out.envs} - {e.label for e in out.envs}
            if missing:
                raise ValueError(
                    f"--envs: {sorted(missing)} not in this config ({[e.label for e in self.envs]})"
                )
        if agents:
            out.agents = list(agents)
        return out


_QUICK_RL = {  # smaller networks and fewer gradient steps: a 2-core CPU budget
    "sac": {"policy_kwargs": {"net_arch": [64, 64]}, "gradient_steps": 2, "learning_starts": 1000},
    "td3": {"policy_kwargs": {"net_arch": [64, 64]}, "gradient_steps": 2, "learning_starts": 1000},
    # a smaller surrogate and fewer planner iterations (agents/mpc_surrogate.toml is GPU-sized)
    "mpc_surrogate": {
        "episodes": 16,
        "epochs": 20,
        "model": {"hidden": 32, "substeps": 4},
        "mpc": {"iterations": 8, "warm_iterations": 3},
    },
}
_SLOW_FIELD_MPC = (  # measured on the 2-core CPU: ~200 ms per env per step at batch 32 (32x32 grid)
    "too slow for the quick CPU setting (a T = 20 plan through the 32x32 field costs ~6 s per step "
    "for 32 episodes: ~6 min per agent); run --full on a GPU"
)

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "name": "quick",
        "description": (
            "2-core CPU, ~10 min: MAPK-v0 and Wnt-v1 on a 32x32 grid; short training (RL agents far from "
            "converged: the learning curves say how far), 32 test episodes per agent."
        ),
        "device": "cpu",
        "agent_options": copy.deepcopy(_QUICK_RL),
        "envs": [
            {
                "id": "pbhno/MAPK-v0",
                "budget": 30_000,
                "eval_episodes": 32,
                "curve_points": 3,
                "curve_episodes": 16,
            },
            {
                "id": "pbhno/Wnt-v1",
                "label": "pbhno/Wnt-v1 (32x32 grid)",
                "overrides": {"layout": {"ny": 32, "nx": 32}},
                "budget": 6_000,
                "eval_episodes": 32,
                "curve_points": 2,
                "curve_episodes": 16,
                "skip_agents": {"mpc_oracle": _SLOW_FIELD_MPC, "mpc_surrogate": _SLOW_FIELD_MPC},
            },
        ],
    },
    "full": {
        "name": "full",
        "description": (
            "GPU-sized: Wnt-v1, NotchLattice-v0 and MAPK-v0 at full size, 1M samples, 256 test episodes."
        ),
        "device": "cuda",
        "envs": [
            {
                "id": "pbhno/Wnt-v1",
                "budget": 1_000_000,
                "eval_episodes": 256,
                "curve_points": 10,
                "curve_episodes": 64,
            },
            {
                "id": "pbhno/NotchLattice-v0",
                "budget": 1_000_000,
                "eval_episodes": 256,
                "curve_points": 10,
                "curve_episodes": 64,
            },
            {
                "id": "pbhno/MAPK-v0",
                "budget": 1_000_000,
                "eval_episodes": 256,
                "curve_points": 10,
                "curve_episodes": 64,
            },
        ],
    },
}


def preset(name: str) -> CompareConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return CompareConfig.from_dict(PRESETS[name])


def load_config(path: str | Path) -> CompareConfig:
    """A config from a ``.json`` (e.g. a run directory's ``config.json``) or ``.toml`` file."""
    path = Path(path)
    if path.suffix == ".toml":
        raw = read_toml(path)
    else:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: malformed JSON: {e}") from None
    raw = raw.get("config", raw)  # a run directory's config.json wraps it with provenance
    return CompareConfig.from_dict(raw)
