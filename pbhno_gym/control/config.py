"""MPC agent configuration: ``agents/mpc.toml`` as typed, validated dataclasses.

The file is in the one agent-config dialect (:mod:`pbhno_gym.agents.config`): a ``[default]``
table (with ``[default.estimation]`` and ``[default.ensemble]``) and optional ``["<env id>"]``
tables of the same shape whose keys override the defaults for that environment. The agent
config loader merges them (and run-time overrides); :func:`load_config` builds and validates the
result, naming the offending field (``mpc.<field>``). ``Q`` and ``R`` default to the
environment's reward weights (the planner optimises the env's own cost unless told otherwise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..agents.config import agent_config_path, check_tables, load_agent_config, read_agent_file
from ..utils.config import build_dataclass, merge

if TYPE_CHECKING:
    from ..envs.spec import EnvSpec

__all__ = ["EstimationConfig", "EnsembleConfig", "MPCConfig", "load_config", "default_config_path"]

TRACKING = ("squared", "band")  # planner tracking cost (see control.planner)


class ConfigError(ValueError):
    """An invalid MPC config field (the message names it)."""


@dataclass(frozen=True)
class EstimationConfig:
    """Moving-horizon estimation (see :class:`pbhno_gym.control.mhe.MovingHorizonEstimator`)."""

    window: int = 10  # W, control steps of measurements fitted
    iterations: int = 10
    solver: str = "auto"  # auto | lm | adam
    lr: float = 0.05
    tol: float = 1e-6
    estimate_theta: bool = False  # adaptive: re-estimate log theta online (with its prior)
    field: str = "scale"  # scale (one log-factor on the predicted field) | full | none
    initial_sigma: float = 0.05  # arrival-cost sd at episode start (>= the spec's init_noise)
    arrival_sigma: float = 0.2  # arrival-cost sd once the window slides
    state_eps: float = 0.01


@dataclass(frozen=True)
class EnsembleConfig:
    """Plan against several parameter samples (members = 0: a single model)."""

    members: int = 0
    risk: str = "mean"  # mean | mean_std | cvar
    risk_k: float = 1.0
    cvar_alpha: float = 0.3
    weighting: str = "uniform"  # uniform | likelihood (softmax of -MHE fit / 2 per env)
    sigma_scale: float = 1.0  # members drawn from the prior with this many prior sds
    include_nominal: bool = True
    seed: int = 0


@dataclass(frozen=True)
class MPCConfig:
    horizon: int = 20
    solver: str = "gn"  # gn | adam
    iterations: int = 20  # cold start
    warm_iterations: int = 10  # warm start from the shifted previous plan
    lr: float = 0.05
    tol: float = 1e-2
    patience: int = 5
    damping: float = 1e-3
    Q: float | None = None  # None: the env's reward weights
    R: float | None = None
    jac_chunk: int = 256
    state_floor: float = 1e-6  # species floor of the agent's simulator model (see SimulatorModel)
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False  # torch.compile the model step and its forward-mode Jacobian (CompiledModel)
    compile_backend: str = "inductor"  # inductor (torch.compile) | aot (AOTInductor step Jacobians)
    cold_levels: list[float] = field(default_factory=lambda: [0.0, 0.5])  # constant first guesses
    tracking: str = "squared"  # squared | band (pattern targets: on/off levels as floors/ceilings)
    field_modes: int = 0  # simulator models: ligand field in the lowest m x m cosine modes (0: full grid)
    substeps: int = 0  # simulator models: coupled sub-steps per control step (0: the env spec's)
    estimation: EstimationConfig = field(default_factory=EstimationConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {"estimation": EstimationConfig, "ensemble": EnsembleConfig}
_OPTIONAL_FLOATS = {"Q", "R"}


def default_config_path() -> Path:
    """``agents/mpc.toml``: inside the installed wheel, else the source tree's ``agents/``."""
    return agent_config_path("mpc")


def _build(cls, raw: dict[str, Any], where: str):
    return build_dataclass(
        cls, raw, where, ConfigError, _SECTIONS if cls is MPCConfig else None, floats=_OPTIONAL_FLOATS
    )


def validate(cfg: MPCConfig) -> None:
    """Semantic checks; every message names the field."""

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(msg)

    need(cfg.horizon >= 1, f"mpc.horizon must be >= 1, got {cfg.horizon}")
    need(cfg.solver in ("gn", "adam"), f"mpc.solver must be gn or adam, got {cfg.solver!r}")
    need(
        cfg.iterations >= 0 and cfg.warm_iterations >= 0,
        "mpc.iterations and mpc.warm_iterations must be >= 0",
    )
    need(cfg.lr > 0, f"mpc.lr must be > 0, got {cfg.lr}")
    need(cfg.tol >= 0, f"mpc.tol must be >= 0, got {cfg.tol}")
    need(cfg.patience >= 1, f"mpc.patience must be >= 1, got {cfg.patience}")
    need(cfg.damping > 0, f"mpc.damping must be > 0, got {cfg.damping}")
    need(cfg.Q is None or cfg.Q >= 0, f"mpc.Q must be >= 0, got {cfg.Q}")
    need(cfg.R is None or cfg.R >= 0, f"mpc.R must be >= 0, got {cfg.R}")
    need(cfg.jac_chunk >= 1, "mpc.jac_chunk must be >= 1")
    need(cfg.state_floor >= 0, f"mpc.state_floor must be >= 0, got {cfg.state_floor}")
    need(cfg.field_modes >= 0, f"mpc.field_modes must be >= 0 (0: the full grid), got {cfg.field_modes}")
    need(cfg.substeps >= 0, f"mpc.substeps must be >= 0 (0: the env spec's), got {cfg.substeps}")
    need(
        cfg.compile_backend in ("inductor", "aot"),
        f"mpc.compile_backend must be inductor or aot, got {cfg.compile_backend!r}",
    )
    need(cfg.dtype in ("float32", "float64"), f"mpc.dtype must be float32 or float64, got {cfg.dtype!r}")
    need(cfg.tracking in TRACKING, f"mpc.tracking must be one of {', '.join(TRACKING)}, got {cfg.tracking!r}")
    need(
        len(cfg.cold_levels) >= 1 and all(0 <= c <= 1 for c in cfg.cold_levels),
        f"mpc.cold_levels must be fractions of the control range in [0, 1], got {cfg.cold_levels!r}",
    )
    e = cfg.estimation
    need(e.window >= 0, f"mpc.estimation.window must be >= 0, got {e.window}")
    need(e.iterations >= 0, "mpc.estimation.iterations must be >= 0")
    need(
        e.solver in ("auto", "lm", "adam"),
        f"mpc.estimation.solver must be auto, lm or adam, got {e.solver!r}",
    )
    need(e.lr > 0 and e.tol >= 0, "mpc.estimation.lr must be > 0 and tol >= 0")
    need(e.initial_sigma > 0, "mpc.estimation.initial_sigma must be > 0")
    need(
        e.field in ("scale", "full", "none"),
        f"mpc.estimation.field must be scale, full or none, got {e.field!r}",
    )
    need(e.arrival_sigma > 0, "mpc.estimation.arrival_sigma must be > 0")
    need(e.state_eps > 0, "mpc.estimation.state_eps must be > 0")
    n = cfg.ensemble
    need(n.members >= 0, f"mpc.ensemble.members must be >= 0, got {n.members}")
    need(
        n.risk in ("mean", "mean_std", "cvar"),
        f"mpc.ensemble.risk must be mean, mean_std or cvar, got {n.risk!r}",
    )
    need(0 < n.cvar_alpha <= 1, f"mpc.ensemble.cvar_alpha must be in (0, 1], got {n.cvar_alpha}")
    need(
        n.weighting in ("uniform", "likelihood"),
        f"mpc.ensemble.weighting must be uniform or likelihood, got {n.weighting!r}",
    )
    need(n.sigma_scale >= 0, "mpc.ensemble.sigma_scale must be >= 0")


def load_config(
    source: str | Path | Mapping | MPCConfig | None = None, env_id: str | EnvSpec | None = None, **overrides
) -> MPCConfig:
    """An :class:`MPCConfig` from a TOML path, a dict (the file's tables, ``[default]`` and
    ``["<env id>"]``, or just the default table), an existing config, or None (the packaged
    ``agents/mpc.toml``).

    ``env_id`` (an id or spec) applies that environment's table (a spec's ``base`` task's if it has
    none); keyword ``overrides`` (nested sections as dicts)
    are applied last. Every env table is validated, used or not.
    """
    try:
        if isinstance(source, MPCConfig):
            raw: dict[str, Any] = {"default": source.to_dict()}
        elif isinstance(source, Mapping):
            raw = check_tables(source if "default" in source else {"default": source}, "MPC config")
        else:
            path = Path(source) if source is not None else default_config_path()
            if not path.is_file():
                raise ConfigError(f"MPC config file not found: {path}")
            raw, _ = read_agent_file(path)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for eid, sec in raw.items():  # every env table must be valid, used or not
        if eid != "default":
            validate(_build(MPCConfig, merge(raw["default"], sec), f"[{eid!r}]"))
    merged = load_agent_config(raw, env_id, overrides)
    cfg = _build(MPCConfig, {k: v for k, v in merged.items() if v is not None}, "mpc")
    validate(cfg)
    return cfg
