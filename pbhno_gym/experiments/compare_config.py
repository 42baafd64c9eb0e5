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

import numpy as np

from ..envs.spec import load_spec
from ..evaluation.episodes import MAX_TRAIN_SEED
from ..utils.config import merge, read_toml

__all__ = ["EnvRun", "CompareConfig", "PRESETS", "preset", "load_config", "ALL_AGENTS", "log_marks"]

#: every agent the comparison knows of, in table order: references, the MPC family, RL, and RL
#: with domain randomisation (slots not filled and agents an env does not support are skipped)
ALL_AGENTS = [
    "zero",
    "constant",
    "random",
    "mpc_nominal",
    "mpc_adaptive",
    "mpc_surrogate",
    "mpc_oracle",
    "casadi_nmpc",
    "ppo",
    "sac",
    "td3",
    "recurrent_ppo",
    "rsl_ppo",
    "ppo_dr",
    "sac_dr",
    "td3_dr",
    "recurrent_ppo_dr",
    "rsl_ppo_dr",
]


def log_marks(budget: int, points: int) -> list[int]:
    """``points`` env-sample counts spaced evenly in log from ``budget / 100`` to ``budget``."""
    if points <= 1:
        return [int(budget)]
    grid = np.geomspace(max(budget / 100, 1.0), budget, points)
    return sorted({max(1, round(float(g))) for g in grid})


@dataclass
class EnvRun:
    """One environment of a comparison.

    Attributes:
        id: registered env id.
        overrides: spec overrides, as for ``gym.make`` (e.g. ``{"layout": {"ny": 32, "nx": 32}}``).
        label: name in tables and figures (default: the id).
        budget: environment samples each learning agent may use to train (the same for all).
        eval_episodes: held-out test episodes per world at every evaluation (the same seeds for
            every agent, world and curve point: comparisons are paired).
        world_seeds: hidden worlds (``world_seed`` of the spec) every agent is run in; learning
            agents train in each world separately, the others are evaluated on all worlds in one
            batch. Empty: the spec's own world.
        train_seeds: training seeds per learning agent and world (``seed``, ``seed + 1``, ...).
        agent_train_seeds: agent name -> its own number of training seeds (e.g. 1 for an agent
            whose runs cost minutes each); default ``train_seeds``.
        curve: env-sample counts at which learning agents are evaluated (empty: ``curve_points``
            counts spaced evenly in log between ``budget / 100`` and ``budget``); the budget itself
            is always a point.
        curve_points: see ``curve``.
        budgets: agent name -> its own env-sample budget (e.g. a fast batched RL agent trained to
            1e6 samples where SB3's SAC gets 1e5); default ``budget``.
        agent_options: agent name -> options for this env (e.g. hyperparameter overrides).
        skip_agents: agent name -> why it is left out of this env run (listed as skipped in the
            results, e.g. an agent too slow for the quick CPU setting).
    """

    id: str
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    budget: int = 50_000
    eval_episodes: int = 32
    world_seeds: list[int] = field(default_factory=list)
    train_seeds: int = 1
    agent_train_seeds: dict[str, int] = field(default_factory=dict)
    curve: list[int] = field(default_factory=list)
    curve_points: int = 4
    budgets: dict[str, int] = field(default_factory=dict)
    agent_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    skip_agents: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = self.label or self.id

    def seeds_for(self, agent: str) -> int:
        return int(self.agent_train_seeds.get(agent, self.train_seeds))

    def budget_for(self, agent: str) -> int:
        return int(self.budgets.get(agent, self.budget))

    def marks(self, agent: str) -> list[int]:
        """The env-sample counts of ``agent``'s learning curve (ascending, ending at its budget)."""
        budget = self.budget_for(agent)
        if self.curve:
            pts = [int(c) for c in self.curve if 0 < int(c) < budget]
        else:
            pts = log_marks(budget, self.curve_points)[:-1]
        return sorted(set(pts)) + [budget]


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
            for k in ("budget", "eval_episodes", "train_seeds"):
                v = getattr(e, k)
                if not (isinstance(v, int) and v >= 1):
                    raise ValueError(f"{where}.{k} must be a positive int, got {v!r}")
            if not (isinstance(e.curve_points, int) and e.curve_points >= 0):
                raise ValueError(f"{where}.curve_points must be an int >= 0, got {e.curve_points!r}")
            if not all(isinstance(c, int) and c >= 1 for c in e.curve):
                raise ValueError(f"{where}.curve must be positive ints (env samples), got {e.curve!r}")
            if not all(isinstance(w, int) and w >= 0 for w in e.world_seeds) or len(set(e.world_seeds)) < len(
                e.world_seeds
            ):
                raise ValueError(
                    f"{where}.world_seeds must be distinct non-negative ints, got {e.world_seeds!r}"
                )
            if e.world_seeds and load_spec(e.id, e.overrides).randomize_parameters:
                raise ValueError(f"{where}.world_seeds: the spec randomizes parameters every episode")
            if e.label in labels:
                raise ValueError(f"{where}.label {e.label!r} is used twice; give each env run its own label")
            labels.add(e.label)
            for a, why in e.skip_agents.items():
                if a not in known or not isinstance(why, str):
                    raise ValueError(f"{where}.skip_agents: {a!r} must be a registered agent with a reason")
            for a in e.agent_options:
                if a not in known:
                    raise ValueError(f"{where}.agent_options: unknown agent {a!r}")
            for field_name in ("budgets", "agent_train_seeds"):
                for a, b in getattr(e, field_name).items():
                    if a not in known or not (isinstance(b, int) and b >= 1):
                        raise ValueError(
                            f"{where}.{field_name}: {a!r} must be a registered agent with a positive int"
                        )
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


_QUICK_OPTIONS = {
    "sac": {"policy_kwargs": {"net_arch": [64, 64]}, "gradient_steps": 2, "learning_starts": 1000},
    "td3": {"policy_kwargs": {"net_arch": [64, 64]}, "gradient_steps": 2, "learning_starts": 1000},
    "td3_dr": {"policy_kwargs": {"net_arch": [64, 64]}, "gradient_steps": 2, "learning_starts": 1000},
    "mpc_surrogate": {  # a decision through PB-HNO costs ~2 s at batch 8-16 (overhead, not batch): few fits
        "episodes": [2, 16],
        "epochs": 20,
        "model": {"hidden": 16, "substeps": 2},
    },
}

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "name": "quick",
        "description": (
            "2-core CPU, <= 15 min: MAPK-Unknown-v0 in 2 hidden worlds and Wnt-Unknown-v1 on a 32x32 grid. "
            "SB3 PPO at 30k (MAPK) and 6k (Wnt) samples, rsl-rl PPO on the batched env (and its "
            "domain-randomised twin) at 300k and 50k; PB-HNO MPC fitted on 2 and 16 episodes (MAPK) and "
            "on 2 (Wnt); nominal and oracle MPC on both (Wnt: planning, and PB-HNO, with the field in 8 x 8 "
            "cosine modes); 8 test episodes per world."
        ),
        "device": "cpu",
        "agents": [
            "zero",
            "mpc_nominal",
            "mpc_surrogate",
            "mpc_oracle",
            "ppo",
            "rsl_ppo",
            "rsl_ppo_dr",
        ],
        "agent_options": copy.deepcopy(_QUICK_OPTIONS),
        "envs": [
            {
                "id": "pbhno/MAPK-Unknown-v0",
                "world_seeds": [0, 1],
                "train_seeds": 1,
                "budget": 30_000,
                "budgets": {"rsl_ppo": 300_000, "rsl_ppo_dr": 300_000},
                "eval_episodes": 8,
                "curve": [1_000, 3_000, 10_000, 30_000, 100_000],
            },
            {
                "id": "pbhno/Wnt-Unknown-v1",
                "label": "pbhno/Wnt-Unknown-v1 (32x32 grid)",
                "overrides": {"layout": {"ny": 32, "nx": 32}},
                "world_seeds": [0, 1],
                "train_seeds": 1,
                "budget": 6_000,
                "budgets": {"rsl_ppo": 50_000, "rsl_ppo_dr": 50_000},
                "eval_episodes": 8,
                "curve": [600, 2_000, 6_000, 20_000],
                # PB-HNO in 8 x 8 field modes (agents/mpc_surrogate.toml); one fit: a 48-step
                # episode through it costs ~2.5-3 s per decision at batch 8 (~140 s per world)
                "agent_options": {"mpc_surrogate": {"episodes": [2]}},
            },
        ],
    },
    "standard": {
        "name": "standard",
        "description": (
            "2-core CPU, about 2 h wall in two worker processes (~3.7 h of CPU time): MAPK-Unknown-v0 in "
            "4 hidden worlds; PB-HNO MPC fitted on 1, 2, 4, 8, 16 and 32 episodes; nominal, adaptive and "
            "oracle MPC; SB3 PPO to 100k samples; SB3 SAC, TD3 (rl-zoo3's small-task settings at one "
            "gradient update per sample) and RecurrentPPO to 50k; rsl-rl PPO (and its domain-randomised "
            "twin) to 1M; 3 training seeds per world (1 data seed for PB-HNO MPC); 8 test episodes per "
            "world."
        ),
        "device": "cpu",
        "agents": [
            "zero",
            "mpc_nominal",
            "mpc_adaptive",
            "mpc_surrogate",
            "mpc_oracle",
            "ppo",
            "sac",
            "td3",
            "recurrent_ppo",
            "rsl_ppo",
            "rsl_ppo_dr",
        ],
        "agent_options": {
            **copy.deepcopy(_QUICK_OPTIONS),
            # rl-zoo3's small continuous-control settings (hyperparams/sac.yml, td3.yml: Pendulum-v1
            # lr 1e-3, MountainCarContinuous [64, 64]) at rl-zoo3's one gradient step per env step
            # (train_freq 1, gradient_steps 1 per env = 8 per step of the 8 envs); [256, 256] costs
            # ~22 ms per update on one CPU thread (~37 min per 100k-sample run), the GPU setting's size
            "sac": {
                "policy_kwargs": {"net_arch": [64, 64]},
                "learning_rate": 1e-3,
                "gradient_steps": 8,
                "learning_starts": 1000,
            },
            "td3": {
                "policy_kwargs": {"net_arch": [64, 64]},
                "learning_rate": 1e-3,
                "gradient_steps": 8,
                "learning_starts": 1000,
            },
            "mpc_surrogate": {
                "episodes": [1, 2, 4, 8, 16, 32],
                "epochs": 20,
                "model": {"hidden": 16, "substeps": 2},
            },
        },
        "envs": [
            {
                "id": "pbhno/MAPK-Unknown-v0",
                "world_seeds": [0, 1, 2, 3],
                "train_seeds": 3,
                "agent_train_seeds": {"mpc_surrogate": 1},  # 6 fits + 6 MPC evaluations per world
                "budget": 100_000,
                "budgets": {
                    "rsl_ppo": 1_000_000,
                    "rsl_ppo_dr": 1_000_000,
                    # ~7, 4 and 2.5 min per run on one CPU thread (SAC, TD3, RecurrentPPO): 12 runs each
                    "sac": 50_000,
                    "td3": 50_000,
                    "recurrent_ppo": 50_000,
                },
                "eval_episodes": 8,
                "curve": [1_000, 3_000, 10_000, 30_000, 100_000, 300_000],
            }
        ],
    },
    "full": {
        "name": "full",
        "description": (
            "GPU-sized: the three Unknown tasks at full size, 8 worlds, 3 training seeds, RL to 1M samples, "
            "every MPC agent and RL with domain randomisation, 64 test episodes per world."
        ),
        "device": "cuda",
        "agents": list(ALL_AGENTS),
        "envs": [
            {
                "id": task,
                "world_seeds": list(range(8)),
                "train_seeds": 3,
                "budget": 1_000_000,
                "eval_episodes": 64,
                "curve_points": 8,
                "agent_options": {"mpc_surrogate": {"episodes": [1, 2, 4, 8, 16, 32]}},
            }
            for task in ("pbhno/MAPK-Unknown-v0", "pbhno/Wnt-Unknown-v1", "pbhno/Notch-Unknown-v0")
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
