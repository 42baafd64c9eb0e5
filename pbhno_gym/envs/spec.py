"""Declarative environment specs: one TOML file per registered id, overridable by ``gym.make`` kwargs.

A spec says everything an environment is: pathway, grid and cells, parameter overrides, control
interval and substeps, dose budgets, observation model, target distribution, reward and episode
length. Files live in the repository's ``envs/`` folder and ship in the wheel under
``pbhno_gym/_specs/envs``. ``load_spec(name, overrides)`` merges keyword overrides (nested tables
as dicts) and validates every field, naming the offending one.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..utils.config import build_dataclass, read_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "EnvSpec",
    "LayoutSpec",
    "ObservationSpec",
    "TargetSpec",
    "RewardSpec",
    "spec_dir",
    "list_specs",
    "load_spec",
    "SpecError",
]


class SpecError(ValueError):
    """An invalid environment spec field (the message names it)."""


@dataclass(frozen=True)
class LayoutSpec:
    """Cells on the grid; see :mod:`pbhno_gym.physics.geometry` for the layout kinds."""

    kind: str = "wnt_tissue"  # a registered layout (envs.layouts): two_cell | lattice | wnt_tissue | none
    ny: int = 64
    nx: int = 64
    length_x: float = 128.0  # um
    rows: int = 4
    cols: int = 4
    cell_size: float = 20.0  # um
    gap: float = 4.0  # um
    sources: str = "default"  # two_cell: halves|uniform; lattice: per_cell|uniform
    source_width: float = 16.0  # um (wnt_tissue)
    n_cells: int = 1  # kind = none


@dataclass(frozen=True)
class ObservationSpec:
    """What a lab measures: reporters per cell, optional ligand samples, noise, irregular timing."""

    mode: str = "partial"  # partial | full
    species: tuple[str, ...] = ()  # observed species (default: the pathway's phenotype)
    ligand_pixels: str = "none"  # none | edges
    n_ligand_samples: int = 0
    ligand_scale: float = 1.0  # nM, normalises ligand samples
    additive_noise: float = 0.02  # in normalised units
    multiplicative_noise: float = 0.1  # relative
    sample_prob: float = 0.5  # probability each channel is measured at a step
    max_age: int = 10  # steps; the age channel is min(age, max_age) / max_age


@dataclass(frozen=True)
class TargetSpec:
    """The phenotype to reach, drawn per episode.

    ``pattern`` kinds give each cell "on" or "off": ``wnt_boundary`` (cells in columns < k on,
    k drawn from ``choices``), ``notch_fate`` (cell ``choices`` is the Hes-high receiver),
    ``notch_checkerboard`` (parity from ``choices``). ``setpoint`` draws a piecewise-constant
    level in [low, high] with up to ``switches`` random changes; ``pulse_train`` alternates
    between ``low`` and ``high`` with ``period`` steps.
    """

    kind: str = "wnt_boundary"
    choices: tuple[int, ...] = (2, 3, 4)
    on_level: float = 0.8  # normalised phenotype the "on" cells aim at
    off_level: float = 0.1
    on_threshold: float = 0.6  # success: on cells above, off cells below
    off_threshold: float = 0.4
    low: float = 0.1  # setpoint / pulse_train levels (normalised)
    high: float = 0.8
    switches: int = 2
    period: int = 10
    tolerance: float = 0.1  # setpoint success band (normalised)
    preview: int = 1  # future steps of target shown in the observation
    success_window: int = 5  # final steps that must all be in tolerance (capped at the horizon)
    phenotype_low: float = 0.0  # physical phenotype mapped to 0 ...
    phenotype_high: float = 1.0  # ... and to 1


@dataclass(frozen=True)
class RewardSpec:
    """Stage cost of the MPC (paper eq., Table II): Q ||p - p*||^2 + R ||u / u_max||^2, per cell
    and channel means, reward = -scale * cost."""

    Q: float = 1.0
    R: float = 0.01
    scale: float = 1.0


@dataclass(frozen=True)
class EnvSpec:
    id: str = ""
    description: str = ""
    pathway: str = "wnt"
    control_interval: float = 10.0  # min
    substeps: int = 10
    horizon: int = 48  # control steps per episode
    layout: LayoutSpec = field(default_factory=LayoutSpec)
    parameters: dict[str, float] = field(default_factory=dict)  # nominal overrides (natural units)
    budgets: dict[str, float] = field(default_factory=dict)  # control name -> cumulative dose cap
    observation: ObservationSpec = field(default_factory=ObservationSpec)
    target: TargetSpec = field(default_factory=TargetSpec)
    reward: RewardSpec = field(default_factory=RewardSpec)
    randomize_parameters: bool = False  # draw theta from its prior per episode
    settle_minutes: float = 0.0  # bring cells to their uncontrolled steady state before t = 0
    init_noise: float = 0.05  # cell-to-cell variability (log-normal sd) of the initial state
    normalize_actions: bool = False  # Box(-1, 1) actions, mapped affinely to the physical bounds
    intrinsic_noise: bool = False  # chemical-Langevin noise in the cell kinetics
    blowup_threshold: float = 1e6  # any state above this (or non-finite) truncates the episode
    world_seed: int | None = None  # hidden true parameters drawn once from the prior (see envs.worlds)
    mechanisms: tuple[str, ...] = ()  # hidden kinetic terms of the world (physics.pathways.mechanisms)
    base: str = ""  # the known-world task this one varies: its agents/*.toml tables apply here too
    prior_scale: float = 1.0  # multiplies every prior sd: what agents are told and worlds are drawn from
    world_untreated: int | None = None  # pattern targets: worlds are conditioned on the untreated
    # tissue ending in this choice's pattern (see envs.worlds)
    world_margin: float = 0.05  # ... every cell at least this far past the on/off midpoint
    world_untreated_minutes: float = 480.0  # ... after this long untreated (not tied to ``horizon``)
    world_protocols: tuple[tuple[float, ...], ...] = ()  # reachability certificate: per control
    # (level, start minute) held until the budget runs out; each target choice met by one of them

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {"layout": LayoutSpec, "observation": ObservationSpec, "target": TargetSpec, "reward": RewardSpec}
_ALIASES = {"obs_mode": ("observation", "mode")}


def spec_dir() -> Path:
    """Folder of spec TOMLs: inside the installed wheel, else the source tree's ``envs/``."""
    packaged = Path(__file__).resolve().parents[1] / "_specs" / "envs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "envs"


#: Ids whose task changed: the old id -> what replaced it and why (load_spec names it; Gymnasium's
#: own ``gym.make`` raises DeprecatedEnv pointing at the newer version).
RETIRED = {
    "pbhno/Wnt-v0": "pbhno/Wnt-v1 (the boundary-after-column-3 target, met without control, is gone)",
    "pbhno/Notch-v0": "pbhno/Notch-v1 (cells start near-symmetric: noise alone no longer picks the receiver)",
    "pbhno/Wnt-Unknown-v0": "pbhno/Wnt-Unknown-v1 (worlds at half the prior spread, conditioned on the "
    "untreated boundary after column 3: v0's full-prior worlds put many targets out of reach)",
}


def list_specs() -> dict[str, Path]:
    """Registered id -> spec file."""
    out = {}
    for path in sorted(spec_dir().glob("*.toml")):
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        if "id" not in raw:
            raise SpecError(f"{path.name}: missing field 'id'")
        out[raw["id"]] = path
    return out


def _build(cls, raw: dict[str, Any], where: str):
    return build_dataclass(cls, raw, where, SpecError, _SECTIONS if cls is EnvSpec else None)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k in _ALIASES:
            sec, key = _ALIASES[k]
            out.setdefault(sec, {})[key] = v
        elif isinstance(v, dict) and isinstance(out.get(k), dict) and k in _SECTIONS:
            out[k] = _merge(out[k], v)
        elif isinstance(v, dict) and k in ("parameters", "budgets") and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def load_spec(
    name: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> EnvSpec:
    """Load, merge and validate a spec.

    Args:
        name: a registered id (``"pbhno/Wnt-v1"``), a path to a TOML file, or None with ``base``.
        overrides: keyword overrides; nested sections as dicts (``observation={"sample_prob": 1}``),
            ``parameters``/``budgets`` merged key by key, ``obs_mode`` as an alias.
    """
    if base is None:
        if name is None:
            raise SpecError("load_spec needs a spec name, a path or a base dict")
        path = Path(name) if str(name).endswith(".toml") else list_specs().get(str(name))
        if path is None and str(name) in RETIRED:
            raise SpecError(f"{name!r} is retired; use {RETIRED[str(name)]}")
        if path is None:
            raise SpecError(f"no spec for {name!r}; known: {', '.join(list_specs())}")
        base = read_toml(path)
    raw = _merge(base, overrides or {})
    spec = _build(EnvSpec, raw, "spec")
    validate(spec)
    return spec


def validate(spec: EnvSpec) -> None:
    """Semantic checks beyond types; every message names the field. Layout and target kinds
    are checked against their registries (:mod:`.layouts`, :mod:`.targets`)."""
    from ..physics.pathways import PATHWAYS
    from .layouts import LAYOUT_FIELDS, LAYOUTS, unused_layout_fields
    from .targets import TARGETS

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise SpecError(msg)

    need(spec.pathway in PATHWAYS, f"spec.pathway must be one of {', '.join(PATHWAYS)}, got {spec.pathway!r}")
    need(spec.control_interval > 0, f"spec.control_interval must be > 0 min, got {spec.control_interval}")
    need(spec.substeps >= 1, f"spec.substeps must be >= 1, got {spec.substeps}")
    need(spec.horizon >= 1, f"spec.horizon must be >= 1, got {spec.horizon}")
    need(spec.settle_minutes >= 0, f"spec.settle_minutes must be >= 0, got {spec.settle_minutes}")
    need(spec.init_noise >= 0, f"spec.init_noise must be >= 0, got {spec.init_noise}")
    need(spec.blowup_threshold > 0, "spec.blowup_threshold must be > 0")
    for k, v in spec.parameters.items():
        need(v > 0, f"spec.parameters.{k} must be positive, got {v}")
    for k, v in spec.budgets.items():
        need(v >= 0, f"spec.budgets.{k} must be >= 0, got {v}")
    lay = spec.layout
    need(lay.kind in LAYOUTS, f"spec.layout.kind must be one of {', '.join(LAYOUTS)}, got {lay.kind!r}")
    unused = unused_layout_fields(lay)
    if unused:
        used = ", ".join(sorted(LAYOUT_FIELDS[lay.kind]))
        raise SpecError(
            f"spec.layout.{', '.join(unused)}: not used by layout kind {lay.kind!r}; "
            f"drop {'it' if len(unused) == 1 else 'them'} (it uses: {used})"
        )
    o = spec.observation
    need(o.mode in ("partial", "full"), f"spec.observation.mode must be 'partial' or 'full', got {o.mode!r}")
    need(0 < o.sample_prob <= 1, f"spec.observation.sample_prob must be in (0, 1], got {o.sample_prob}")
    need(o.additive_noise >= 0, "spec.observation.additive_noise must be >= 0")
    need(o.multiplicative_noise >= 0, "spec.observation.multiplicative_noise must be >= 0")
    need(
        o.ligand_pixels in ("none", "edges"),
        f"spec.observation.ligand_pixels must be none or edges, got {o.ligand_pixels!r}",
    )
    need(o.n_ligand_samples >= 0, f"spec.observation.n_ligand_samples must be >= 0, got {o.n_ligand_samples}")
    need(
        o.ligand_pixels != "none" or o.n_ligand_samples == 0,
        f"spec.observation.n_ligand_samples={o.n_ligand_samples} needs ligand_pixels='edges' (it is 'none')",
    )
    need(o.max_age >= 1, f"spec.observation.max_age must be >= 1, got {o.max_age}")
    need(o.ligand_scale > 0, "spec.observation.ligand_scale must be > 0")
    t = spec.target
    need(t.kind in TARGETS, f"spec.target.kind must be one of {', '.join(TARGETS)}, got {t.kind!r}")
    need(t.preview >= 1, f"spec.target.preview must be >= 1, got {t.preview}")
    need(t.success_window >= 1, f"spec.target.success_window must be >= 1, got {t.success_window}")
    need(t.phenotype_high > t.phenotype_low, "spec.target.phenotype_high must exceed phenotype_low")
    need(t.on_threshold >= t.off_threshold, "spec.target.on_threshold must be >= off_threshold")
    need(len(t.choices) >= 1, "spec.target.choices must not be empty")
    need(t.tolerance > 0, f"spec.target.tolerance must be > 0 (normalised units), got {t.tolerance}")
    need(t.switches >= 0, f"spec.target.switches must be >= 0, got {t.switches}")
    need(t.period >= 1, f"spec.target.period must be >= 1 step, got {t.period}")
    for name in ("on_level", "off_level", "on_threshold", "off_threshold", "low", "high"):
        v = getattr(t, name)
        need(0 <= v <= 1, f"spec.target.{name} must be in [0, 1] (normalised phenotype), got {v}")
    r = spec.reward
    need(r.Q >= 0, f"spec.reward.Q must be >= 0, got {r.Q}")
    need(r.R >= 0, f"spec.reward.R must be >= 0, got {r.R}")
    need(r.scale > 0, f"spec.reward.scale must be > 0, got {r.scale}")
    validate_world(spec)


def validate_world(spec: EnvSpec) -> None:
    """Checks of the hidden-world fields: ``world_seed`` excludes ``randomize_parameters`` (one
    fixed world vs a new draw each episode), ``mechanisms`` must be registered for the pathway."""
    from ..physics.pathways import get_mechanism

    if spec.world_seed is not None and spec.randomize_parameters:
        raise SpecError(
            "spec.world_seed and spec.randomize_parameters exclude each other: world_seed fixes one "
            "hidden world for the env's life, randomize_parameters draws a new one each episode"
        )
    ws = spec.world_seed
    if ws is not None and (isinstance(ws, bool) or not isinstance(ws, int) or ws < 0):
        raise SpecError(f"spec.world_seed must be a non-negative int or None, got {spec.world_seed!r}")
    for m in spec.mechanisms:
        if not isinstance(m, str):
            raise SpecError(f"spec.mechanisms: names must be strings, got {m!r}")
        try:
            get_mechanism(spec.pathway, m)
        except ValueError as e:
            raise SpecError(f"spec.mechanisms: {e}") from None
    if len(set(spec.mechanisms)) != len(spec.mechanisms):
        raise SpecError(f"spec.mechanisms lists a mechanism twice: {list(spec.mechanisms)}")
    if not spec.prior_scale > 0:
        raise SpecError(f"spec.prior_scale must be > 0 (it scales every prior sd), got {spec.prior_scale}")
    if spec.world_untreated is not None:
        from .targets import get_target

        if not get_target(spec.target.kind).pattern:
            raise SpecError(
                f"spec.world_untreated needs a pattern target (wnt_boundary, notch_fate, ...); "
                f"spec.target.kind is {spec.target.kind!r}"
            )
        if isinstance(spec.world_untreated, bool) or not isinstance(spec.world_untreated, int):
            raise SpecError(
                f"spec.world_untreated must be an int (a pattern choice), got {spec.world_untreated!r}"
            )
    for i, r in enumerate(spec.world_protocols):
        if spec.world_untreated is None:
            raise SpecError("spec.world_protocols needs spec.world_untreated (conditioned worlds)")
        if (
            not isinstance(r, (list, tuple))
            or len(r) % 2
            or not r
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in r)
        ):
            raise SpecError(
                f"spec.world_protocols[{i}] must be non-negative numbers, (level, start minute) per "
                f"control, got {r!r}"
            )
    if not spec.world_untreated_minutes > 0:
        raise SpecError(f"spec.world_untreated_minutes must be > 0, got {spec.world_untreated_minutes}")
    if not 0 <= spec.world_margin < 0.5:
        raise SpecError(f"spec.world_margin must be in [0, 0.5) (normalised units), got {spec.world_margin}")
    if not isinstance(spec.base, str) or (spec.base and spec.base == spec.id):
        raise SpecError(f"spec.base must be another task's env id (or empty), got {spec.base!r}")
