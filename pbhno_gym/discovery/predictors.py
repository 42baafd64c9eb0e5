"""Predictors: what a fitted method forecasts (see :class:`~.result.Predictor`).

:class:`MechanisticPredictor` plugs a method's parameter estimate into the dataset's true
model structure (its design's simulator): how every parameter-estimation method (MLE, MAP,
SBINN, PINN) forecasts under new controls and reconstructs the ligand field.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.format import Dataset
from .design import design_model

__all__ = ["MechanisticPredictor"]


class MechanisticPredictor:
    """The design's simulator with the free parameters at ``log_theta`` (others nominal);
    ``skeleton``: the design's skeleton (hidden mechanisms left out) instead of the generator;
    ``mechanisms``: the skeleton plus these (a fitted candidate structure,
    :func:`~.problem.structure_design`)."""

    def __init__(
        self,
        names: tuple[str, ...],
        log_theta: np.ndarray,
        skeleton: bool = False,
        mechanisms: tuple[str, ...] = (),
    ) -> None:
        self.names, self.log_theta = tuple(names), np.asarray(log_theta, dtype=np.float64)
        self.skeleton, self.mechanisms = bool(skeleton), tuple(mechanisms)

    def _run(self, dataset: Dataset):
        from .problem import structure_design

        design = structure_design(dataset, self.skeleton, self.mechanisms)
        model = design_model(design.replace(free=self.names))
        u = torch.as_tensor(dataset["actions"], dtype=torch.float64)
        lt = model.full_log_theta(torch.as_tensor(self.log_theta)[None]).expand(u.shape[0], -1)
        with torch.no_grad():
            xs, Ls = model.simulate(lt, u)
        return model, xs, Ls

    def forecast(self, dataset: Dataset) -> np.ndarray:
        model, xs, Ls = self._run(dataset)
        return model.channels(xs, Ls).numpy()

    def field(self, dataset: Dataset) -> np.ndarray | None:
        _, _, Ls = self._run(dataset)
        return None if Ls is None else Ls.numpy()
