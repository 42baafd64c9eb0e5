"""Read a user's own measurements in a PEtab-style table into an episode dataset.

Measurement table (TSV, PEtab's measurement-table columns):

| column | meaning |
|---|---|
| observableId | ``<species>_cell<i>`` (``H_cell1``: reporter H of cell 1) or ``ligand_r<row>_c<col>`` |
| simulationConditionId | the experiment (one episode per condition) |
| time | minutes from the start: any float in [0, horizon * control_interval] (off-grid allowed) |
| measurement | value in physical units (nM, or the phenotype's units) |
| noiseParameters | optional standard deviation of the measurement, physical units |
| replicateId | optional; every row is its own residual (replicates: same condition, time, observable) |

Condition table (optional TSV): ``simulationConditionId``, ``time`` (start of a piece, minutes,
on the control grid),
then one column per control name (physical units, e.g. ``ligand_left``, ``gsi``): a piecewise-
constant schedule; controls not listed are zero. Without a condition table every condition is
unstimulated. Observables must be channels of the environment spec's observation model (the
model predicts exactly those); values are normalised with the spec's channel normalisation.
Malformed tables are refused with the file, row and column named.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..data.format import Dataset, DatasetError
from ..envs.factory import EnvModel, build, channel_meta, dataset_meta
from ..envs.spec import EnvSpec, load_spec

__all__ = ["read_measurements", "PetabError"]


class PetabError(DatasetError):
    """A malformed measurement or condition table (the message names file, row and column)."""


def _rows(path: Path, required: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise PetabError(f"{path}: no such file")
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise PetabError(f"{path}: missing column(s) {missing}; found {header}")
        return header, list(reader)


def _num(path: Path, row: int, col: str, text: str | None, positive: bool = False) -> float:
    try:
        v = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PetabError(f"{path}: row {row}, column '{col}': not a number ({text!r})") from None
    if not math.isfinite(v) or (positive and v <= 0):
        raise PetabError(
            f"{path}: row {row}, column '{col}': must be {'positive and ' if positive else ''}finite, got {v}"
        )
    return v


FRACTION_SLACK = 0.1
"""Measurements of fraction species (e.g. active ERK) may stray this far outside [0, 1] (noise)."""


def _grid_step(path: Path, row: int, t: float, dt: float, horizon: int) -> int:
    """The control step of time ``t`` (minutes): on the grid and within the horizon, or refused
    (condition tables: controls are piecewise constant over control intervals)."""
    _in_horizon(path, row, t, dt, horizon)
    k = t / dt
    if abs(k - round(k)) > 1e-6:
        raise PetabError(
            f"{path}: row {row}, column 'time': a control schedule piece must start on the {dt:g}-min "
            f"control grid, got {t} min"
        )
    return int(round(k))


def _in_horizon(path: Path, row: int, t: float, dt: float, horizon: int) -> None:
    if t < 0:
        raise PetabError(f"{path}: row {row}, column 'time': must be >= 0 min, got {t}")
    if t > horizon * dt * (1 + 1e-9):
        raise PetabError(
            f"{path}: row {row}, column 'time': {t} min is outside the environment's horizon "
            f"[0, {horizon * dt:g}] min ({horizon} steps of {dt:g} min)"
        )


GRID_TOL = 1e-6
"""Times within this fraction of a control interval of a grid point count as on the grid."""


def read_measurements(
    measurements: str | Path, spec: EnvSpec | str, conditions: str | Path | None = None
) -> Dataset:
    """A :class:`Dataset` (no ground truth) from PEtab-style tables for the environment ``spec``.

    Every row is one residual. The first measurement of a (condition, grid time, observable) goes
    into the grid arrays (``meas_values``/``meas_mask``); every other row (off-grid times, and
    replicates: further rows of the same condition, time and observable) into the point arrays
    ``pt_*`` of :mod:`pbhno_gym.data.format`, located by control interval and fraction of it.
    """
    mpath = Path(measurements)
    spec = load_spec(spec) if isinstance(spec, str) else spec
    parts = build(spec)
    ch = channel_meta(parts.obs_model)
    chans, low, scale = ch["channels"], np.array(ch["channel_low"]), np.array(ch["channel_scale"])
    index = {}
    for i, c in enumerate(chans):
        key = (
            f"{c['species']}_cell{c['cell']}" if c["kind"] == "species" else f"ligand_r{c['row']}_c{c['col']}"
        )
        index[key] = i
    header, rows = _rows(mpath, ["observableId", "simulationConditionId", "time", "measurement"])
    dt = spec.control_interval
    parsed = []
    for r, row in enumerate(rows, start=2):  # header is row 1
        obs = row["observableId"]
        if obs not in index:
            raise PetabError(
                f"{mpath}: row {r}, column 'observableId': unknown observable {obs!r}; "
                f"this spec measures {sorted(index)[:6]}..."
            )
        cond = row["simulationConditionId"]
        if cond in ("", None):
            raise PetabError(f"{mpath}: row {r}, column 'simulationConditionId': empty")
        t = _num(mpath, r, "time", row["time"])
        _in_horizon(mpath, r, t, dt, spec.horizon)
        y = _num(mpath, r, "measurement", row["measurement"])
        ub = parts.pathway.upper_bound
        if (
            ub is not None
            and chans[index[obs]]["kind"] == "species"
            and not -FRACTION_SLACK <= y / ub <= (1 + FRACTION_SLACK)
        ):
            raise PetabError(
                f"{mpath}: row {r}, column 'measurement': {obs} is a fraction in [0, {ub:g}] "
                f"(noise slack {FRACTION_SLACK:g}), got {y}"
            )
        sd = None
        if "noiseParameters" in header and row.get("noiseParameters", "") not in ("", None):
            sd = _num(mpath, r, "noiseParameters", row["noiseParameters"], positive=True)
        parsed.append((cond, t / dt, index[obs], y, sd, r))
    if not parsed:
        raise PetabError(f"{mpath}: no measurements")
    conds = sorted({p[0] for p in parsed})
    T = max(math.ceil(p[1] - GRID_TOL) for p in parsed)
    if T < 1:
        raise PetabError(f"{mpath}: all measurements are at time 0; nothing to fit dynamics to")
    E, C, U = len(conds), len(chans), parts.n_controls
    vals = np.full((E, T + 1, C), np.nan, np.float32)
    sds = np.full((E, T + 1, C), np.nan, np.float32)
    mask = np.zeros((E, T + 1, C), bool)
    pts: dict[str, list] = {k: [] for k in ("episode", "step", "frac", "channel", "value", "sd", "row")}
    cond_index = {c: e for e, c in enumerate(conds)}
    for cond, tk, c, y, sd, r in parsed:
        e = cond_index[cond]
        v = (y - low[c]) / scale[c]
        sdn = np.nan if sd is None else sd / scale[c]
        k = int(round(tk))
        if abs(tk - k) <= GRID_TOL and not mask[e, k, c]:
            mask[e, k, c] = True
            vals[e, k, c], sds[e, k, c] = v, sdn
            continue
        # off the grid, or a replicate: the interval (k0, k0 + 1] holding it and the fraction of
        # it (a grid time k > 0 is the end of interval k - 1, so every point has a control)
        k0 = max(math.ceil(tk - GRID_TOL) - 1, 0)
        frac = min(max(tk - k0, 0.0), 1.0)
        for key, val in zip(pts, (e, k0, frac, c, v, sdn, r), strict=True):
            pts[key].append(val)
    actions = np.zeros((E, T, U), np.float32)
    if conditions is not None:
        actions = _schedules(Path(conditions), conds, parts, T, dt)
    arrays = {
        "actions": actions,
        "meas_values": vals,
        "meas_mask": mask,
        "times": (np.arange(T + 1) * dt).astype(np.float32),
    }
    if pts["row"]:
        for key, dtype in POINT_DTYPES.items():
            arrays[f"pt_{key}"] = np.asarray(pts[key], dtype)
    default = math.sqrt(spec.observation.additive_noise**2 + spec.observation.multiplicative_noise**2)
    if not np.isnan(sds[mask]).all():
        arrays["meas_sd"] = np.where(mask & np.isnan(sds), default, sds).astype(np.float32)
    meta = dataset_meta(
        parts,
        conditions=conds,
        source=str(mpath),
        n_rows=len(parsed),
        n_offgrid=int(sum(abs(p[1] - round(p[1])) > GRID_TOL for p in parsed)),
        n_points=len(pts["row"]),
        replicate_ids="replicateId" in header,
    )
    return Dataset(arrays, {**meta, "version": 1})


POINT_DTYPES = {
    "episode": np.int32,
    "step": np.int32,
    "frac": np.float64,
    "channel": np.int32,
    "value": np.float32,
    "sd": np.float32,
    "row": np.int32,
}


def _schedules(path: Path, conds: list[str], parts: EnvModel, T: int, dt: float) -> np.ndarray:
    names = list(parts.control_names)
    header, rows = _rows(path, ["simulationConditionId", "time"])
    unknown = [h for h in header if h not in ("simulationConditionId", "time") and h not in names]
    if unknown:
        raise PetabError(f"{path}: unknown control column(s) {unknown}; controls are {names}")
    low, high = parts.control_low.numpy(), parts.control_high.numpy()
    out = np.zeros((len(conds), T, len(names)), np.float32)
    pieces: dict[str, list[tuple[int, np.ndarray]]] = {}
    for r, row in enumerate(rows, start=2):
        cond = row["simulationConditionId"]
        if cond not in conds:
            raise PetabError(f"{path}: row {r}, column 'simulationConditionId': {cond!r} has no measurements")
        t = _num(path, r, "time", row["time"])
        _grid_step(path, r, t, dt, parts.spec.horizon)
        u = np.zeros(len(names), np.float32)
        for j, n in enumerate(names):
            if n in row and row[n] not in ("", None):
                u[j] = _num(path, r, n, row[n])
                if not low[j] <= u[j] <= high[j]:
                    raise PetabError(
                        f"{path}: row {r}, column '{n}': {u[j]} outside the bounds [{low[j]}, {high[j]}]"
                    )
        pieces.setdefault(cond, []).append((int(round(t / dt)), u))
    for cond, ps in pieces.items():
        e = conds.index(cond)
        for (k0, u), nxt in zip(
            sorted(ps, key=lambda p: p[0]), sorted(ps, key=lambda p: p[0])[1:] + [(T, None)], strict=True
        ):
            out[e, k0 : nxt[0]] = u
    return out
