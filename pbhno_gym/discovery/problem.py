"""Inverse problems as batched residual functions of the free log-parameters.

An :class:`InverseProblem` predicts the measured data ``y`` (R,) with noise sd ``sigma`` (R,)
from free log-parameters, for a batch of K parameter vectors at once, optionally with the
Jacobian. Everything statistical (MLE/MAP, Fisher information, CRLB, profiles, MCMC) works on
this interface, so it is tested on a linear-Gaussian problem with known answers and used on the
simulator:

* :class:`SimulatorProblem`: the true model of a dataset made by ``make_dataset`` (its design's
  float64 simulator, initial state and measurement operator). The Jacobian comes from
  forward-mode autograd through the simulator: the batch carries one row per (parameter
  vector, free parameter) with a one-hot tangent, so a single dual-number rollout gives all
  sensitivities exactly.
* :class:`SpecProblem`: the true model of a user's measurement table (``surrogate.petab``):
  the dataset's environment spec, with measurements at arbitrary times and replicates.
* :class:`LinearGaussianProblem`: ``y = A log theta + b + noise``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD

from ..data.format import Dataset
from ..envs.core import episode_start_state
from ..physics.simulator import SimState
from .design import dataset_design, design_model
from .prior import Prior

__all__ = [
    "InverseProblem",
    "SimulatorProblem",
    "SpecProblem",
    "LinearGaussianProblem",
    "central_differences",
    "noise_sd",
]


class InverseProblem(ABC):
    """Data ``y`` (R,), noise sd ``sigma`` (R,), prior over the free log-parameters.

    Subclasses implement :meth:`predict`; the rest is derived.
    """

    prior: Prior
    y: np.ndarray
    sigma: np.ndarray
    #: (R,) time of every datum (for time-resolved diagnostics); index order if None
    data_times: np.ndarray | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.prior.names

    @property
    def p(self) -> int:
        return self.prior.size

    @property
    def n_data(self) -> int:
        return int(self.y.shape[0])

    @abstractmethod
    def predict(self, log_theta: np.ndarray, jac: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(K, p) free log-parameters -> predictions (K, R) and, if ``jac``, d/dlog theta (K, R, p)."""

    def residuals(
        self, log_theta: np.ndarray, jac: bool = False, use_prior: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Weighted residuals ``(pred - y) / sigma`` (K, R[+p]) and their Jacobian, batched.

        With ``use_prior`` the prior residuals ``(log theta - mean) / sd`` are appended, so
        ``0.5 * sum r^2`` is the negative log posterior (up to a constant).
        """
        lt = np.atleast_2d(np.asarray(log_theta, dtype=np.float64))
        pred, J = self.predict(lt, jac)
        r = (pred - self.y) / self.sigma
        if J is not None:
            J = J / self.sigma[None, :, None]
        if use_prior:
            r = np.concatenate([r, (lt - self.prior.mean) / self.prior.sd], 1)
            if J is not None:
                eye = np.broadcast_to(np.diag(1 / self.prior.sd), (lt.shape[0], self.p, self.p))
                J = np.concatenate([J, eye], 1)
        return r, J

    def neg_log_lik(self, log_theta: np.ndarray, use_prior: bool = False) -> np.ndarray:
        """(K,) 0.5 * sum of squared weighted residuals (the Gaussian -log L up to a constant)."""
        r, _ = self.residuals(log_theta, False, use_prior)
        return 0.5 * (r**2).sum(1)

    def fisher(self, log_theta: np.ndarray) -> np.ndarray:
        """(p, p) Fisher information ``J^T Sigma^-1 J`` at one point (Appendix B)."""
        _, J = self.predict(np.atleast_2d(log_theta), True)
        Jw = J[0] / self.sigma[:, None]
        return Jw.T @ Jw


def central_differences(
    values: Callable[[np.ndarray], np.ndarray], lt: np.ndarray, need: np.ndarray, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Values (K, R) at the rows of ``lt`` (K, p) and central-difference Jacobians (K, R, p) for
    the rows flagged in ``need`` (zero elsewhere), all points in one call of ``values``."""
    K, p = lt.shape
    rows = np.nonzero(need)[0]
    pts = [lt] + [np.concatenate([lt[i] + h * np.eye(p), lt[i] - h * np.eye(p)]) for i in rows]
    vals = values(np.concatenate(pts, 0))
    J = np.zeros((K, vals.shape[1], p))
    for n, i in enumerate(rows):
        off = K + 2 * p * n
        J[i] = ((vals[off : off + p] - vals[off + p : off + 2 * p]) / (2 * h)).T
    return vals[:K], J


class LinearGaussianProblem(InverseProblem):
    """``y = A log theta + b + sigma * e``: Fisher information ``A^T diag(sigma^-2) A`` exactly."""

    def __init__(self, A: np.ndarray, b: np.ndarray, y: np.ndarray, sigma: np.ndarray, prior: Prior) -> None:
        self.A, self.b = np.asarray(A, float), np.asarray(b, float)
        self.y, self.sigma, self.prior = np.asarray(y, float), np.asarray(sigma, float), prior
        if self.A.shape != (len(self.y), prior.size):
            raise ValueError(f"A must be ({len(self.y)}, {prior.size}), got {self.A.shape}")

    def predict(self, log_theta, jac=False):
        lt = np.atleast_2d(log_theta)
        pred = lt @ self.A.T + self.b
        return pred, (np.broadcast_to(self.A, (lt.shape[0], *self.A.shape)).copy() if jac else None)


def structure_design(dataset: Dataset, skeleton: bool = False, mechanisms: Sequence[str] = ()):
    """The dataset's design as a model structure: the generator, its skeleton (``skeleton``), or
    the skeleton plus candidate ``mechanisms`` (never the hidden ones: a candidate structure
    must not see what it is meant to find)."""
    design = dataset_design(dataset)
    if mechanisms:
        return design.skeleton().replace(hidden=tuple(mechanisms), hidden_parameters={})
    return design.skeleton() if skeleton else design


class SimulatorProblem(InverseProblem):
    """The true-model inverse problem of a dataset made by :func:`~.design.make_dataset`.

    Args:
        dataset: the data (controls, irregular masked measurements, noise sd in meta).
        free: parameters to estimate (default: the design's free parameters).
        prior: prior over ``free`` (default: the dataset's recorded prior).
        max_rows: rows per simulator call (splits large batches to bound memory).
        jac_mode: "autograd" (forward-mode AD, exact) or "fd" (central differences with step
            ``fd_step`` in log theta, in the same batched call; ~1e-9 relative agreement, and
            faster on CPU where torch's forward AD pays ~0.3 ms per op mixing dual and plain tensors).
        skeleton: fit the design's skeleton (its hidden mechanisms left out: a misspecified
            model when the data come from a richer world) instead of the generator.
        mechanisms: fit the skeleton plus these mechanisms instead (a candidate structure, e.g. a
            ``regulation:...`` proposed by :mod:`pbhno_gym.surrogate.distill`); their parameters
            must be in ``free`` (and ``prior``), since the design knows no value for them.
    """

    def __init__(
        self,
        dataset: Dataset,
        free: Sequence[str] | None = None,
        prior: Prior | None = None,
        max_rows: int = 256,
        jac_mode: str = "autograd",
        fd_step: float = 1e-5,
        skeleton: bool = False,
        mechanisms: Sequence[str] = (),
    ) -> None:
        if jac_mode not in ("autograd", "fd"):
            raise ValueError(f"jac_mode must be 'autograd' or 'fd', got {jac_mode!r}")
        self.jac_mode, self.fd_step = jac_mode, float(fd_step)
        design = structure_design(dataset, skeleton, mechanisms)
        free = tuple(free) if free is not None else design.free
        self.model = design_model(design.replace(free=free))
        self.prior = prior if prior is not None else Prior.from_meta(dataset.meta, free)
        if tuple(self.prior.names) != free:
            raise ValueError(f"prior names {self.prior.names} differ from the free parameters {free}")
        self.dataset = dataset
        self.controls = torch.as_tensor(dataset["actions"], dtype=torch.float64)  # (E, T, U)
        self.mask = torch.as_tensor(dataset["meas_mask"])  # (E, T+1, C)
        self.y = dataset["meas_values"][dataset["meas_mask"]].astype(np.float64)
        sd = np.asarray(dataset.meta["noise_sd"], dtype=np.float64)
        self.sigma = np.broadcast_to(sd, dataset["meas_mask"].shape)[dataset["meas_mask"]].copy()
        if not (self.sigma > 0).all():
            raise ValueError("SimulatorProblem: meta['noise_sd'] must be > 0 for every measured channel")
        self.E = self.controls.shape[0]
        # time (minutes) of every measured entry, in data order (for time-resolved diagnostics)
        t_idx = np.nonzero(dataset["meas_mask"])[1]
        self.data_times = np.asarray(dataset["times"], dtype=np.float64)[t_idx]
        self.max_rows = int(max_rows)
        self.n_sim_rows = 0  # trajectories simulated so far (cost accounting)

    def _channels(self, lt_full: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        xs, Ls = self.model.simulate(lt_full, controls)
        self.n_sim_rows += lt_full.shape[0]
        return self.model.channels(xs, Ls)  # (rows, T+1, C)

    def _gather(self, ch: torch.Tensor, k: int) -> torch.Tensor:
        """(k*E, T+1, C) -> (k, R) measured entries in dataset order."""
        ch = ch.reshape(k, self.E, *ch.shape[1:])
        return ch[:, self.mask]

    def predict(self, log_theta, jac=False):
        """Batched predictions; ``jac`` may be a bool or a (K,) mask of the rows needing a Jacobian
        (value-only rows ride along in the same dual-number rollout with a zero tangent)."""
        lt = torch.as_tensor(np.atleast_2d(log_theta), dtype=torch.float64)
        K, p = lt.shape
        if p != self.p:
            raise ValueError(f"log_theta must have {self.p} columns ({', '.join(self.names)}), got {p}")
        need = np.broadcast_to(np.asarray(jac, dtype=bool), (K,))
        if self.jac_mode == "fd" and need.any():
            return self._predict_fd(lt.numpy(), need)
        pred = np.empty((K, self.n_data))
        J = np.zeros((K, self.n_data, p)) if need.any() else None
        # rows per parameter vector: p (one tangent each) if a Jacobian is wanted, else 1
        reps = np.where(need, p, 1)
        start = 0
        while start < K:
            stop, rows = start, 0
            while stop < K and (stop == start or rows + reps[stop] * self.E <= self.max_rows):
                rows += reps[stop] * self.E
                stop += 1
            self._predict_chunk(
                lt[start:stop],
                need[start:stop],
                reps[start:stop],
                pred[start:stop],
                None if J is None else J[start:stop],
            )
            start = stop
        return pred, J

    def _predict_fd(self, lt: np.ndarray, need: np.ndarray):
        return central_differences(lambda X: self.predict(X, False)[0], lt, need, self.fd_step)

    def _predict_chunk(self, lt, need, reps, pred_out, jac_out) -> None:
        k, p, E = lt.shape[0], lt.shape[1], self.E
        full = self.model.full_log_theta(lt)  # (k, P)
        row_of = np.repeat(np.arange(k), reps)  # which parameter vector each (vector, tangent) row is
        dir_of = np.concatenate([np.arange(r) for r in reps])  # tangent direction (only if needed)
        rows = torch.as_tensor(row_of).repeat_interleave(E)
        lt_rows = full[rows]
        u = self.controls.repeat(len(row_of), 1, 1)
        if not need.any():
            with torch.no_grad():
                ch = self._channels(lt_rows, u)
            pred_out[:] = self._gather(ch, len(row_of)).numpy()
            return
        tan = torch.zeros_like(lt_rows)
        has_t = torch.as_tensor(need[row_of]).repeat_interleave(E)
        cols = torch.as_tensor(self.model.free_idx)[torch.as_tensor(dir_of).repeat_interleave(E)]
        idx = torch.arange(lt_rows.shape[0])
        tan[idx[has_t], cols[has_t]] = 1.0
        with torch.no_grad(), fwAD.dual_level():
            ch = self._channels(fwAD.make_dual(lt_rows, tan), u)
            prim, tang = fwAD.unpack_dual(ch)
        val = self._gather(prim, len(row_of)).numpy()  # (rows, R)
        d = None if tang is None else self._gather(tang, len(row_of)).numpy()
        first = np.concatenate([[0], np.cumsum(reps)[:-1]])
        pred_out[:] = val[first]
        for i in np.nonzero(need)[0]:
            jac_out[i] = d[first[i] : first[i] + p].T

    def predict_channels(self, log_theta: np.ndarray, controls: np.ndarray | None = None) -> np.ndarray:
        """(E, T+1, C) noise-free channels at one free log-parameter vector (default: the data's controls)."""
        u = self.controls if controls is None else torch.as_tensor(controls, dtype=torch.float64)
        full = self.model.full_log_theta(torch.as_tensor(np.atleast_2d(log_theta))).expand(u.shape[0], -1)
        with torch.no_grad():
            return self._channels(full, u).numpy()


def noise_sd(dataset: Dataset, values: np.ndarray, given: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Noise sd of measurements: ``given`` where finite, else the spec's noise model
    ``sqrt(additive^2 + multiplicative^2 y^2)`` (normalised units, as PB-HNO's loss), floored."""
    obs = dataset.meta["spec"]["observation"]
    sa, sm = float(obs["additive_noise"]), float(obs["multiplicative_noise"])
    model = np.sqrt(sa**2 + sm**2 * np.asarray(values, np.float64) ** 2)
    return np.maximum(np.where(np.isfinite(given), given, model), floor)


class SpecProblem(InverseProblem):
    """The true-model inverse problem of a dataset read from a measurement table (no design).

    The model is the float64 simulator of the dataset's environment spec (``meta['spec']``),
    started as its episodes start (:func:`~pbhno_gym.envs.core.episode_start_state`), measured by
    its observation model; parameters not in ``free`` stay at the spec's values. Residuals: every
    grid measurement (``meas_mask``) and every measurement point (``pt_*``: off-grid times and
    replicates), the latter from one batched :meth:`Simulator.step` of ``frac * dt`` minutes from
    the state at its interval's start. Noise: the table's ``noiseParameters`` or the spec's noise
    model (:func:`noise_sd`). Jacobians: central differences (step ``fd_step``) in the same
    batched rollout.
    """

    def __init__(
        self,
        dataset: Dataset,
        free: Sequence[str] | None = None,
        prior: Prior | None = None,
        max_rows: int = 256,
        fd_step: float = 1e-5,
    ) -> None:
        from ..envs.factory import build
        from ..envs.spec import load_spec

        meta = dataset.meta
        if "spec" not in meta:
            raise ValueError("SpecProblem: the dataset's meta has no 'spec' (read it with read_measurements)")
        self.spec = load_spec(base=meta["spec"])
        parts = build(self.spec, None, torch.float64)
        self.sim, self.obs_model = parts.sim, parts.obs_model
        names = list(self.sim.params.names)
        free = tuple(free) if free is not None else tuple(meta.get("free_params") or names)
        self.prior = prior if prior is not None else Prior.from_meta(meta, free)
        if tuple(self.prior.names) != free:
            raise ValueError(f"prior names {self.prior.names} differ from the free parameters {free}")
        self.base = self.sim.params.log_theta(self.spec.parameters, torch.float64)
        self.free_idx = [names.index(n) for n in free]
        self.dataset, self.fd_step, self.max_rows = dataset, float(fd_step), int(max_rows)
        self.controls = torch.as_tensor(dataset["actions"], dtype=torch.float64)  # (E, T, U)
        self.E = self.controls.shape[0]
        self.mask = torch.as_tensor(dataset["meas_mask"])
        times = np.asarray(dataset["times"], np.float64)
        y_grid = dataset["meas_values"][dataset["meas_mask"]].astype(np.float64)
        sd_grid = (
            dataset["meas_sd"][dataset["meas_mask"]].astype(np.float64)
            if "meas_sd" in dataset.arrays
            else np.full_like(y_grid, np.nan)
        )
        t_grid = times[np.nonzero(dataset["meas_mask"])[1]]
        a = dataset.arrays
        if dataset.n_points:
            self.pt_ep = torch.as_tensor(a["pt_episode"], dtype=torch.long)
            self.pt_k = torch.as_tensor(a["pt_step"], dtype=torch.long)
            self.pt_c = torch.as_tensor(a["pt_channel"], dtype=torch.long)
            self.pt_dur = torch.as_tensor(a["pt_frac"], dtype=torch.float64) * self.sim.dt
            y_pt, sd_pt = a["pt_value"].astype(np.float64), a["pt_sd"].astype(np.float64)
            t_pt = times[a["pt_step"]] + a["pt_frac"] * self.sim.dt
        else:
            y_pt = sd_pt = t_pt = np.zeros(0)
        self.n_grid = len(y_grid)
        self.y = np.concatenate([y_grid, y_pt])
        self.sigma = noise_sd(dataset, self.y, np.concatenate([sd_grid, sd_pt]))
        self.data_times = np.concatenate([t_grid, t_pt])
        self.n_sim_rows = 0

    def full_log_theta(self, lt: np.ndarray) -> torch.Tensor:
        """(K, p) free log-parameters -> (K, P), the others at the spec's values."""
        out = self.base.expand(lt.shape[0], -1).clone()
        out[:, self.free_idx] = torch.as_tensor(lt, dtype=torch.float64)
        return out

    @torch.no_grad()
    def _values(self, lt: np.ndarray) -> np.ndarray:
        """(K, R) predictions of every residual's datum at K free log-parameter vectors."""
        K, E = lt.shape[0], self.E
        out = np.empty((K, self.n_data))
        per = max(1, self.max_rows // E)
        for s in range(0, K, per):
            full = self.full_log_theta(lt[s : s + per])
            k = full.shape[0]
            rows = full.repeat_interleave(E, 0)  # (k*E, P), episode fastest
            u = self.controls.repeat(k, 1, 1)
            st = episode_start_state(self.sim, self.spec, rows, k * E)
            _, xs, Ls = self.sim.rollout(st, u, rows)
            self.n_sim_rows += k * E
            B, T1 = xs.shape[:2]
            flat = SimState(
                xs.flatten(0, 1),
                None if Ls is None else Ls.flatten(0, 1),
                torch.zeros(B * T1, dtype=xs.dtype),
            )
            ch = self.obs_model.true_channels(flat).reshape(k, E, T1, -1)
            parts = [ch[:, self.mask].reshape(k, -1)]
            if self.n_data > self.n_grid:
                M = len(self.pt_ep)
                blk = torch.arange(k).repeat_interleave(M)
                row = blk * E + self.pt_ep.repeat(k)
                kk = self.pt_k.repeat(k)
                z = SimState(
                    xs[row, kk],
                    None if Ls is None else Ls[row, kk],
                    torch.zeros(len(row), dtype=xs.dtype),
                )
                z = self.sim.step(z, u[row, kk], rows[row], duration=self.pt_dur.repeat(k))
                v = self.obs_model.true_channels(z)[torch.arange(len(row)), self.pt_c.repeat(k)]
                parts.append(v.reshape(k, M))
            out[s : s + k] = torch.cat(parts, 1).numpy()
        return out

    def predict(self, log_theta, jac=False):
        lt = np.atleast_2d(np.asarray(log_theta, dtype=np.float64))
        if lt.shape[1] != self.p:
            raise ValueError(
                f"log_theta must have {self.p} columns ({', '.join(self.names)}), got {lt.shape[1]}"
            )
        need = np.broadcast_to(np.asarray(jac, dtype=bool), (lt.shape[0],))
        if not need.any():
            return self._values(lt), None
        return central_differences(self._values, lt, need, self.fd_step)
