"""Gauss-Newton calibration of PB-HNO's theta with the networks frozen (Algorithm 1's theta step).

Adam moves every log-parameter by about its learning rate per step whatever the curvature, so
on a sparse design (3 trajectories, 12 noisy samples each) a few hundred steps wander around the
optimum rather than reach it. Theta has only a handful of entries, so we solve for it directly:
:class:`ModelProblem` is the inverse problem of a PB-HNO model whose networks, coupling operators
and initial-state offsets are held fixed, and :func:`calibrate_theta` runs the same multistart
trust-region least squares as the true-model MAP baseline (:mod:`~pbhno_gym.discovery.optimize`)
on it, with the model's prior on log theta.

Used twice by the trainer: before training (``TrainConfig.calibrate_nfev``), where the freshly
built model *is* the mechanistic skeleton (zero-initialised MLP correction and FNO, coupling at
``A_geom``/``Phi``), so theta starts at the skeleton's MAP instead of the prior mean; and after
training (``TrainConfig.polish_nfev``), giving the MAP of theta conditional on the learned parts,
the point at which the Laplace covariance of :mod:`.discovery` is evaluated.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from torch import Tensor

from ..discovery.optimize import multistart
from ..discovery.prior import Prior
from ..discovery.problem import InverseProblem, central_differences
from .data import EpisodeTensors
from .losses import predict_all

__all__ = ["ModelProblem", "calibrate_theta", "model_prior"]


def model_prior(model) -> Prior:
    """The model's Gaussian prior on its free log-parameters, boxed at ``theta_box`` sds."""
    idx = model.free_index
    box = model.config.theta_box
    return Prior(
        tuple(model.free_names),
        model.prior_mean[idx].double().cpu().numpy(),
        model.prior_sigma[idx].double().cpu().numpy(),
        width=float(box) if box is not None else 10.0,
    )


class ModelProblem(InverseProblem):
    """Free log theta -> the model's predictions of the observed data, networks frozen.

    Residuals use the dataset's noise variance (the likelihood of the training loss). Jacobians
    are central differences with step ``fd_step`` in log theta, every perturbed parameter vector
    in one batched rollout (rows = vectors x episodes, at most ``max_rows`` per call).
    """

    def __init__(
        self,
        model,
        data: EpisodeTensors,
        delta: Tensor,
        prior: Prior | None = None,
        fd_step: float = 1e-2,
        max_rows: int = 96,
    ) -> None:
        self.model, self.data = model, data
        self.delta = delta.detach()
        self.prior = prior if prior is not None else model_prior(model)
        if tuple(self.prior.names) != tuple(model.free_names):
            raise ValueError(f"prior names {self.prior.names} differ from the model's {model.free_names}")
        self.mask = data.mask
        pts = data.points
        y, var = data.y[data.mask], data.var[data.mask]
        if pts is not None:  # measurement points (off-grid times, replicates) after the grid
            y, var = torch.cat([y, pts.y]), torch.cat([var, pts.var])
        self.y = y.double().cpu().numpy()
        self.sigma = var.sqrt().double().cpu().numpy()
        self.fd_step, self.max_rows = float(fd_step), int(max_rows)
        self.E = data.n_episodes

    def _full(self, lt: np.ndarray) -> Tensor:
        m = self.model
        full = m.log_theta.detach().expand(lt.shape[0], -1).clone()
        full[:, m.free_index] = torch.as_tensor(lt, dtype=m.dtype, device=m.device)
        return full

    @torch.no_grad()
    def _values(self, lt: np.ndarray) -> np.ndarray:
        """(K, R) predictions at K free log-parameter vectors."""
        K, E = lt.shape[0], self.E
        full = self._full(lt)
        out = np.empty((K, self.n_data))
        per = max(1, self.max_rows // E)
        for s in range(0, K, per):
            k = min(per, K - s)
            rows = full[s : s + k].repeat_interleave(E, 0)
            pts = None if self.data.points is None else self.data.points.tile(k, E)
            pred, pt = predict_all(
                self.model, self.data.actions.repeat(k, 1, 1), self.delta.repeat(k, 1, 1), rows, points=pts
            )
            pred = pred.reshape(k, E, *pred.shape[1:])[:, self.mask]
            if pt is not None:
                pred = torch.cat([pred, pt.reshape(k, -1)], 1)
            out[s : s + k] = pred.double().cpu().numpy()
        return out

    def predict(self, log_theta, jac=False):
        lt = np.atleast_2d(np.asarray(log_theta, dtype=np.float64))
        need = np.broadcast_to(np.asarray(jac, dtype=bool), (lt.shape[0],))
        if not need.any():
            return self._values(lt), None
        return central_differences(self._values, lt, need, self.fd_step)


def calibrate_theta(
    model,
    data: EpisodeTensors,
    delta: Tensor,
    max_nfev: int = 20,
    n_starts: int = 1,
    seed: int = 0,
    use_prior: bool = True,
    progress: bool = False,
) -> dict:
    """Set ``model.log_theta_free`` to the (MAP) least-squares optimum with everything else frozen.

    Starts: the model's current theta, then prior draws. Returns the objective before and after
    (0.5 * sum of squared weighted residuals, plus the prior's when ``use_prior``), the number of
    evaluations of every start and the chosen point. The model is left unchanged if no start
    improves on the current theta (or every start failed). ``progress`` shows a bar over the
    evaluations (the starting objective, then residuals + finite-difference Jacobian of every
    start in lockstep, each 1 + 2p rollouts) with an ETA.
    """
    problem = ModelProblem(model, data, delta)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # the starting objective, then at most max_nfev lockstep evaluations with their Jacobians
        bar = tqdm(total=max_nfev + 1, desc="theta calibration", unit="eval", file=sys.stderr)
        inner = problem.residuals

        def residuals(*args, **kwargs):
            out = inner(*args, **kwargs)
            bar.update(1)
            return out

        problem.residuals = residuals  # type: ignore[method-assign]
    prior = problem.prior
    x0 = model.log_theta_free.detach().double().cpu().numpy()
    rng = np.random.default_rng(seed)
    starts = np.concatenate([x0[None], prior.sample(max(0, n_starts - 1), rng)], 0)
    before = float(problem.neg_log_lik(x0, use_prior)[0])
    try:
        runs = multistart(problem, starts, use_prior, max_nfev=max_nfev, tol=1e-6)
    finally:
        if bar is not None:
            bar.close()
    costs = np.array([r["cost"] for r in runs])
    best = int(np.argmin(costs))
    improved = bool(math.isfinite(costs[best]) and costs[best] < before)
    if improved:
        with torch.no_grad():
            model.log_theta_free.copy_(torch.as_tensor(runs[best]["x"]).to(model.log_theta_free))
        model.project_theta_()
    return {
        "before": before,
        "after": float(costs[best]) if improved else before,
        "improved": improved,
        "nfev": [r["nfev"] for r in runs],
        "waterfall": np.sort(costs).tolist(),
        "log_theta": model.log_theta_free.detach().double().cpu().tolist(),
    }
