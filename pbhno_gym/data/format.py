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

    def subset(self, idx) -> Dataset:
        keep = {k: (v if k == "times" else v[idx]) for k, v in self.arrays.items()}
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
    if arrays["actions"].shape[2] != len(meta["control_names"]):
        raise DatasetError(
            f"{where}: actions have {arrays['actions'].shape[2]} channels for "
            f"{len(meta['control_names'])} control names"
        )


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
