"""Training data for PB-HNO: episode datasets as tensors, with the measurement noise model.

The model learns only from what a lab measures: the applied controls and the measured channels
at the steps they were measured (``meas_mask``). True states in the dataset are never used for
training (they serve evaluation only). Per-measurement noise variance follows the spec's noise
model, ``sigma^2 = additive^2 + multiplicative^2 * y^2`` (normalised units).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.format import Dataset, DatasetError

__all__ = ["EpisodeTensors", "dataset_fingerprint", "check_compatible"]


@dataclass
class EpisodeTensors:
    """Dataset arrays as tensors on one device (E episodes, T steps, C channels, U controls)."""

    actions: Tensor  # (E, T, U) physical
    y: Tensor  # (E, T+1, C) measured values (0 where not measured)
    mask: Tensor  # (E, T+1, C) bool
    var: Tensor  # (E, T+1, C) measurement noise variance
    log_theta_true: Tensor  # (E, P), evaluation only

    @classmethod
    def from_dataset(
        cls, ds: Dataset, device=None, dtype=torch.float32, noise_floor: float = 1e-3
    ) -> EpisodeTensors:
        obs = ds.meta["spec"]["observation"]
        mask = np.asarray(ds["meas_mask"], bool)
        y = np.where(mask, np.nan_to_num(ds["meas_values"]), 0.0)
        sa, sm = float(obs["additive_noise"]), float(obs["multiplicative_noise"])
        var = np.maximum(sa**2 + sm**2 * y**2, noise_floor**2)
        if "meas_sd" in ds.arrays:  # user-supplied noise parameters win
            var = np.where(mask, np.maximum(np.nan_to_num(ds["meas_sd"], nan=1.0) ** 2, noise_floor**2), var)

        def t(a, dt=dtype):
            return torch.as_tensor(np.asarray(a), dtype=dt, device=device)

        truth = ds["log_theta"] if "log_theta" in ds.arrays else np.full((mask.shape[0], 0), np.nan)
        return cls(t(ds["actions"]), t(y), t(mask, torch.bool), t(var), t(truth))

    @property
    def n_episodes(self) -> int:
        return int(self.actions.shape[0])

    def index(self, idx: Tensor) -> EpisodeTensors:
        return EpisodeTensors(
            self.actions[idx], self.y[idx], self.mask[idx], self.var[idx], self.log_theta_true[idx]
        )


def dataset_fingerprint(ds: Dataset) -> str:
    """A short hash of what a model was trained on (env, shapes, the action and measurement data)."""
    h = hashlib.sha256()
    h.update(str(ds.meta.get("env_id")).encode())
    for k in ("actions", "meas_values", "meas_mask"):
        a = np.ascontiguousarray(ds[k])
        h.update(str(a.shape).encode())
        h.update(np.nan_to_num(a).tobytes())
    return h.hexdigest()[:16]


def check_compatible(model, ds: Dataset) -> None:
    """Refuse a dataset whose environment, controls or channels differ from the model's."""
    spec = model.spec
    if ds.meta.get("env_id") != spec.id:
        raise DatasetError(f"dataset is for {ds.meta.get('env_id')!r}, the model for {spec.id!r}")
    names = [c.name for c in model.sim.control_specs]
    if list(ds.meta["control_names"]) != names:
        raise DatasetError(f"dataset controls {ds.meta['control_names']} differ from the model's {names}")
    if ds.meta["channels"] != model.channels():
        raise DatasetError("dataset measurement channels differ from the model's (observation spec mismatch)")
    if abs(float(ds["times"][1] - ds["times"][0]) - model.dt) > 1e-6:
        raise DatasetError(
            f"dataset control interval {ds['times'][1] - ds['times'][0]} min != model dt {model.dt}"
        )
