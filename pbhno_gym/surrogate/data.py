"""Training data for PB-HNO: episode datasets as tensors, with the measurement noise model.

The model learns only from what a lab measures: the applied controls and the measured channels
at the steps they were measured (``meas_mask``). True states in the dataset are never used for
training (they serve evaluation only). Per-measurement noise variance follows the spec's noise
model, ``sigma^2 = additive^2 + multiplicative^2 * y^2`` (normalised units). Measurements off the
control grid and replicates (a user's table) are :class:`PointTensors`: each its own residual.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..data.format import Dataset, DatasetError

__all__ = ["EpisodeTensors", "PointTensors", "dataset_fingerprint", "check_compatible"]


@dataclass
class PointTensors:
    """Measurement points (off-grid times, replicates; ``pt_*`` of the dataset format): M rows."""

    ep: Tensor  # (M,) episode (row of the batch)
    step: Tensor  # (M,) control interval k: the point is advanced from the state at step k
    dur: Tensor  # (M,) minutes after step k (0 <= dur <= dt)
    chan: Tensor  # (M,) channel
    y: Tensor  # (M,) measured value (normalised)
    var: Tensor  # (M,) noise variance

    def __len__(self) -> int:
        return int(self.ep.shape[0])

    def index(self, idx: Tensor, n_episodes: int) -> PointTensors:
        """The points of episodes ``idx`` (distinct), renumbered to their position in ``idx``."""
        pos = torch.full((n_episodes,), -1, dtype=torch.long, device=self.ep.device)
        pos[idx] = torch.arange(len(idx), device=self.ep.device)
        at = pos[self.ep] >= 0
        return PointTensors(
            pos[self.ep][at], self.step[at], self.dur[at], self.chan[at], self.y[at], self.var[at]
        )

    def tile(self, k: int, n_episodes: int) -> PointTensors:
        """The points of ``k`` stacked copies of the batch (rows ``j * n_episodes + ep``)."""
        M = len(self)
        off = torch.arange(k, device=self.ep.device).repeat_interleave(M) * n_episodes
        return PointTensors(
            self.ep.repeat(k) + off,
            self.step.repeat(k),
            self.dur.repeat(k),
            self.chan.repeat(k),
            self.y.repeat(k),
            self.var.repeat(k),
        )


@dataclass
class EpisodeTensors:
    """Dataset arrays as tensors on one device (E episodes, T steps, C channels, U controls)."""

    actions: Tensor  # (E, T, U) physical
    y: Tensor  # (E, T+1, C) measured values (0 where not measured)
    mask: Tensor  # (E, T+1, C) bool
    var: Tensor  # (E, T+1, C) measurement noise variance
    log_theta_true: Tensor  # (E, P), evaluation only
    points: PointTensors | None = None  # measurements off the grid and replicates

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
        points = None
        if ds.n_points:
            a = ds.arrays
            py = np.asarray(a["pt_value"], np.float64)
            pvar = np.where(np.isnan(a["pt_sd"]), sa**2 + sm**2 * py**2, np.nan_to_num(a["pt_sd"]) ** 2)
            dt = float(ds["times"][1] - ds["times"][0])
            points = PointTensors(
                t(a["pt_episode"], torch.long),
                t(a["pt_step"], torch.long),
                t(np.asarray(a["pt_frac"], np.float64) * dt),
                t(a["pt_channel"], torch.long),
                t(py),
                t(np.maximum(pvar, noise_floor**2)),
            )
        return cls(t(ds["actions"]), t(y), t(mask, torch.bool), t(var), t(truth), points)

    @property
    def n_episodes(self) -> int:
        return int(self.actions.shape[0])

    @property
    def n_obs(self) -> int:
        """Residuals: grid measurements plus points."""
        return int(self.mask.sum()) + (0 if self.points is None else len(self.points))

    def index(self, idx: Tensor) -> EpisodeTensors:
        pts = None if self.points is None else self.points.index(idx, self.n_episodes)
        return EpisodeTensors(
            self.actions[idx], self.y[idx], self.mask[idx], self.var[idx], self.log_theta_true[idx], pts
        )


def dataset_fingerprint(ds: Dataset) -> str:
    """A short hash of what a model was trained on (env, shapes, the action and measurement data)."""
    h = hashlib.sha256()
    h.update(str(ds.meta.get("env_id")).encode())
    points = ("pt_episode", "pt_step", "pt_frac", "pt_channel", "pt_value") if ds.n_points else ()
    for k in ("actions", "meas_values", "meas_mask", *points):
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
