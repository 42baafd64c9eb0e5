"""The episode dataset format: one NPZ file, arrays plus a JSON ``meta`` record.

Arrays (E episodes, T control steps, D obs dims, C measurement channels, N cells, S species, P
parameters):

| key            | shape              | dtype   | meaning                                              |
|----------------|--------------------|---------|------------------------------------------------------|
| obs            | (E, T+1, D)        | float32 | observations as the agent saw them                   |
| meas_values    | (E, T+1, C)        | float32 | normalised measurement (NaN where not measured)      |
| meas_mask      | (E, T+1, C)        | bool    | channel measured at that step                        |
| actions        | (E, T, U)          | float32 | applied controls, physical units (after bounds/budget)|
| rewards        | (E, T)             | float32 | rewards                                              |
| x              | (E, T+1, N, S)     | float32 | true cell states (evaluation only)                   |
| L              | (E, T+1, H, W)     | float32 | true ligand field (field pathways, optional)         |
| log_theta      | (E, P)             | float32 | true log-parameters                                  |
| target_params  | (E, K)             | float32 | the episode's target                                 |
| success        | (E,)               | bool    | info["is_success"] at the last step                  |
| times          | (T+1,)             | float32 | minutes                                              |
| meas_sd        | (E, T+1, C)        | float32 | optional per-measurement noise sd (normalised)       |
| pt_episode     | (M,)               | int32   | optional measurement points: episode                 |
| pt_step        | (M,)               | int32   | control interval k (0 <= k < T) the point lies in    |
| pt_frac        | (M,)               | float64 | time = times[k] + frac * dt, 0 <= frac <= 1          |
| pt_channel     | (M,)               | int32   | measurement channel                                  |
| pt_value       | (M,)               | float32 | normalised measurement                               |
| pt_sd          | (M,)               | float32 | noise sd (normalised), NaN: the spec's noise model   |
| pt_row         | (M,)               | int32   | row of the source table (messages)                   |

Measurement points carry what the grid arrays cannot: measurements between control times and
replicates (several rows of one episode, time and channel). Each point is its own residual,
predicted from the state at ``times[k]`` advanced by ``frac * dt`` under that interval's control
(``Simulator.step(duration=...)``; ``surrogate.petab`` writes them).

Required: actions, meas_values, meas_mask, times. The truth arrays (obs, rewards, x, L, log_theta,
target_params, success) are written by ``collect_episodes`` and absent from a user's own
measurements (``pbhno_gym.surrogate.petab``).

``meta`` (JSON): format version, env id, the full spec, pathway, species, control names and
bounds, parameter names, channel descriptions (cell, species or ligand pixel), the normalisation
of each channel (low, scale), seed, policy, and creation info. Files are written atomically;
``load_dataset`` checks the version, every key, dtype, shape and finiteness, and names what is
wrong.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..physics.params import Parameters
from ..utils.io import _atomic

__all__ = ["DATASET_VERSION", "Dataset", "DatasetError", "save_dataset", "load_dataset"]

DATASET_VERSION = 1
REQUIRED = (
    "obs",
    "meas_values",
    "meas_mask",
    "actions",
    "rewards",
    "x",
    "log_theta",
    "target_params",
    "success",
    "times",
)


class DatasetError(ValueError):
    """A dataset file that is missing, corrupt or inconsistent (the message says what and where)."""


@dataclass
class Dataset:
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    @property
    def n_episodes(self) -> int:
        return int(self.arrays["actions"].shape[0])

    @property
    def horizon(self) -> int:
        return int(self.arrays["actions"].shape[1])

    @property
    def prior(self) -> Parameters:
        """The parameters the dataset's agents were told: the env spec's prior (nominal mean)."""
        m = self.meta
        return Parameters(
            tuple(m["param_names"]),
            torch.tensor(m["prior_mean"], dtype=torch.float64),
            torch.tensor(m["prior_mean"], dtype=torch.float64),
            torch.tensor(m["prior_sigma"], dtype=torch.float64),
        )

    @property
    def true_parameters(self) -> Parameters:
        """(E, P) the parameters each episode was generated with (for evaluation only)."""
        return self.prior.replace(torch.as_tensor(self.arrays["log_theta"], dtype=torch.float64))

    @property
    def n_points(self) -> int:
        """Measurement points (off-grid times and replicates; see the module docstring)."""
        return int(self.arrays["pt_episode"].shape[0]) if "pt_episode" in self.arrays else 0

    def subset(self, idx) -> Dataset:
        keep = {k: (v if k == "times" else v[idx]) for k, v in self.arrays.items() if k not in POINT_KEYS}
        if self.n_points:  # points of the kept episodes, renumbered
            sel = np.arange(self.n_episodes)[idx]
            sel = np.atleast_1d(sel)
            pos = np.full(self.n_episodes, -1)
            pos[sel] = np.arange(len(sel))
            at = pos[self.arrays["pt_episode"]] >= 0
            for k in POINT_KEYS:
                keep[k] = self.arrays[k][at]
            keep["pt_episode"] = pos[self.arrays["pt_episode"][at]].astype(np.int32)
        return Dataset(keep, dict(self.meta))


def _check(arrays: dict[str, np.ndarray], meta: dict[str, Any], where: str) -> None:
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise DatasetError(f"{where}: missing array(s) {missing}")
    if meta.get("version") != DATASET_VERSION:
        raise DatasetError(
            f"{where}: format version {meta.get('version')!r}, this code reads {DATASET_VERSION}"
        )
    E, T = arrays["actions"].shape[:2]
    expect = {
        "obs": (E, T + 1),
        "meas_values": (E, T + 1),
        "meas_mask": (E, T + 1),
        "rewards": (E, T),
        "x": (E, T + 1),
        "log_theta": (E,),
        "target_params": (E,),
        "success": (E,),
        "times": (T + 1,),
    }
    if "L" in arrays:
        expect["L"] = (E, T + 1)
    for k, lead in expect.items():
        if arrays[k].shape[: len(lead)] != lead:
            raise DatasetError(f"{where}: array {k!r} has shape {arrays[k].shape}, expected leading {lead}")
    if arrays["meas_values"].shape != arrays["meas_mask"].shape:
        raise DatasetError(f"{where}: meas_values and meas_mask shapes differ")
    for k in [k for k in ("obs", "actions", "rewards", "x", "log_theta", "times", "L") if k in arrays]:
        if not np.isfinite(arrays[k]).all():
            raise DatasetError(f"{where}: array {k!r} contains NaN or inf")
    mv, mm = arrays["meas_values"], arrays["meas_mask"]
    if not np.isfinite(mv[mm]).all():
        raise DatasetError(f"{where}: meas_values is not finite where meas_mask is set")
    for k in ("env_id", "pathway", "species", "control_names", "param_names", "channels", "spec"):
        if k not in meta:
            raise DatasetError(f"{where}: meta lacks {k!r}")
    if "meas_sd" in arrays and not (arrays["meas_sd"][mm] > 0).all():
        raise DatasetError(f"{where}: meas_sd must be positive where meas_mask is set")
    if "log_theta" in arrays and arrays["log_theta"].shape[1] != len(meta["param_names"]):
        raise DatasetError(
            f"{where}: log_theta has {arrays['log_theta'].shape[1]} columns for "
            f"{len(meta['param_names'])} parameter names"
        )
    _check_points(arrays, E, T, mm.shape[2], where)
    if arrays["actions"].shape[2] != len(meta["control_names"]):
        raise DatasetError(
            f"{where}: actions have {arrays['actions'].shape[2]} channels for "
            f"{len(meta['control_names'])} control names"
        )


POINT_KEYS = ("pt_episode", "pt_step", "pt_frac", "pt_channel", "pt_value", "pt_sd", "pt_row")


def _check_points(arrays: dict[str, np.ndarray], E: int, T: int, C: int, where: str) -> None:
    """Measurement points: all arrays or none, one length, indices in range, finite values."""
    have = [k for k in POINT_KEYS if k in arrays]
    if not have:
        return
    if len(have) != len(POINT_KEYS):
        raise DatasetError(f"{where}: measurement points need all of {list(POINT_KEYS)}, got {have}")
    M = arrays["pt_episode"].shape
    bad = [k for k in POINT_KEYS if arrays[k].shape != M or arrays[k].ndim != 1]
    if bad:
        raise DatasetError(f"{where}: point arrays {bad} differ in shape from pt_episode {M}")
    for k, hi in (("pt_episode", E), ("pt_step", T), ("pt_channel", C)):
        a = arrays[k]
        if a.size and not (a.min() >= 0 and a.max() < hi):
            raise DatasetError(f"{where}: {k} must lie in [0, {hi}), got [{a.min()}, {a.max()}]")
    f = arrays["pt_frac"]
    if not (np.isfinite(f).all() and (f >= 0).all() and (f <= 1).all()):
        raise DatasetError(f"{where}: pt_frac must lie in [0, 1]")
    if not np.isfinite(arrays["pt_value"]).all():
        raise DatasetError(f"{where}: pt_value contains NaN or inf")
    sd = arrays["pt_sd"]
    if not (np.isnan(sd) | (sd > 0)).all():
        raise DatasetError(f"{where}: pt_sd must be positive (or NaN for the noise model)")


def save_dataset(path: str | Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Validate and write atomically (temp file + rename)."""
    meta = {**meta, "version": DATASET_VERSION}
    _check(arrays, meta, str(path))
    payload = {**arrays, "meta": np.array(json.dumps(meta, default=str))}
    return _atomic(path, lambda f: np.savez_compressed(f, **payload))


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate a dataset; raises :class:`DatasetError` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        raise DatasetError(f"{path}: not a readable dataset (corrupt or truncated NPZ: {e})") from None
    if "meta" not in arrays:
        raise DatasetError(f"{path}: no 'meta' record")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: meta is not valid JSON ({e})") from None
    _check(arrays, meta, str(path))
    return Dataset(arrays, meta)
