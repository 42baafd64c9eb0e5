"""The one factory from an environment spec to its parts.

Everything that needs a spec's simulator, observation model, control bounds, dose budgets,
nominal parameters or dataset metadata gets them here (:func:`build`, :func:`dataset_meta`,
:func:`channel_meta`), so the env core, the control and surrogate models, the data collector,
the discovery designs and the baselines cannot drift apart in how a spec is read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..physics import Parameters, Simulator, get_pathway
from ..physics.pathways.base import Pathway
from ..physics.simulator import SimState
from .layouts import get_layout
from .observation import ObservationModel
from .spec import EnvSpec, LayoutSpec, load_spec

__all__ = [
    "EnvModel",
    "build",
    "build_layout",
    "build_simulator",
    "channel_meta",
    "dataset_meta",
    "episode_start_state",
]


def build_layout(ls: LayoutSpec):
    """A :class:`CellLayout` from a layout spec (its kind looked up in :mod:`.layouts`)."""
    return get_layout(ls.kind)(ls)


def episode_start_state(sim: Simulator, spec: EnvSpec, log_theta: Tensor, batch: int) -> SimState:
    """The noise-free state an episode starts from: cells at rest and no ligand, or, when the spec
    has ``settle_minutes``, the uncontrolled steady state (reached in 15 coarse steps: the scheme's
    fixed points are exact). Shared by the env, the oracle model and PB-HNO."""
    st = sim.initial_state(log_theta, batch)
    encode = getattr(sim, "encode_state", None)  # a reduced-field planning model: settle on the grid
    if spec.settle_minutes > 0:
        if encode is not None:
            st = SimState(st.x, st.x.new_zeros(batch, *sim.grid.shape), st.t)  # no ligand yet
        settler = Simulator(
            sim.pathway,
            sim.layout,
            spec.settle_minutes / 15,
            4,
            max_stiffness=1e9,
            dtype=sim.dtype,
            device=sim.device,
        )
        zero = sim.control_low.expand(st.batch_size, -1)
        for _ in range(15):
            st = settler.step(st, zero, log_theta)
        if encode is not None:
            st = encode(st)
    return SimState(st.x, st.L, torch.zeros_like(st.t))


def build_simulator(spec: EnvSpec, device=None, dtype=torch.float32) -> Simulator:
    """The spec's simulator alone (raises a clear error if its substeps cannot be taken).

    Prefer :func:`build`, which also gives the observation model, bounds and budgets."""
    return Simulator(
        get_pathway(spec.pathway),
        build_layout(spec.layout),
        spec.control_interval,
        spec.substeps,
        dtype=dtype,
        device=device,
    )


@dataclass(frozen=True, eq=False)  # tensors inside: compare fields, not models
class EnvModel:
    """A spec's simulator, observation model, controls and nominal parameters, on one device.

    ``control_low`` / ``control_high`` are the physical action bounds (what the action space is
    when ``normalize_actions`` is off); ``budget`` is each control's cumulative dose limit
    (rate x minutes, ``inf`` where the spec sets none); ``prior`` is the :class:`Parameters` agents
    are told: the spec's nominal values as the prior mean, with the pathway's log-normal widths
    times the spec's ``prior_scale``.
    """

    spec: EnvSpec
    sim: Simulator
    obs_model: ObservationModel
    control_names: tuple[str, ...]
    control_low: Tensor
    control_high: Tensor
    budget: Tensor
    prior: Parameters

    @property
    def pathway(self) -> Pathway:
        return self.sim.pathway

    @property
    def n_cells(self) -> int:
        return self.sim.n_cells

    @property
    def n_controls(self) -> int:
        return self.sim.n_controls

    @property
    def obs_dim(self) -> int:
        return self.obs_model.dim

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """float32 (low, high) of the env's action space (``[-1, 1]`` if actions are normalised)."""
        if self.spec.normalize_actions:
            one = np.ones(self.n_controls, dtype=np.float32)
            return -one, one
        low = self.control_low.cpu().numpy().astype(np.float32)
        return low, self.control_high.cpu().numpy().astype(np.float32)


def scale_prior(prior: Parameters, scale: float) -> Parameters:
    """``prior`` with every sd multiplied by ``scale`` (the spec's ``prior_scale``)."""
    return prior if scale == 1.0 else dataclasses.replace(prior, prior_sd=prior.prior_sd * scale)


def build(spec: EnvSpec | str, device=None, dtype=torch.float32) -> EnvModel:
    """Every part of ``spec`` (or a spec id) on ``device`` in ``dtype``.

    Raises ValueError naming the spec field when its parameters or budgets do not fit the pathway.
    """
    spec = load_spec(spec) if isinstance(spec, str) else spec
    device = torch.device(device or "cpu")
    sim = build_simulator(spec, device, dtype)
    nominal = dict(spec.parameters)
    if spec.mechanisms:  # the hidden mechanisms' entries set the world prior (envs.worlds.world_prior)
        nominal = {k: v for k, v in nominal.items() if k in sim.params.index}
    try:
        prior = Parameters.from_set(sim.params, nominal, dtype=dtype, device=device)
    except ValueError as e:
        raise ValueError(f"spec.parameters: {e}") from None
    prior = scale_prior(prior, spec.prior_scale)
    names = tuple(c.name for c in sim.control_specs)
    for k in spec.budgets:
        if k not in names:
            raise ValueError(f"spec.budgets.{k}: no such control; controls are {', '.join(names)}")
    budget = torch.tensor([spec.budgets.get(n, float("inf")) for n in names], dtype=dtype, device=device)
    return EnvModel(
        spec=spec,
        sim=sim,
        obs_model=ObservationModel(spec, sim, sim.n_cells, device, dtype),
        control_names=names,
        control_low=sim.control_low,
        control_high=sim.control_high,
        budget=budget,
        prior=prior,
    )


def channel_meta(obs_model: ObservationModel) -> dict[str, Any]:
    """What each measurement channel is and how it is normalised (a dataset's ``channels``,
    ``channel_low``, ``channel_scale``)."""
    om, sim = obs_model, obs_model.sim
    pw = sim.pathway
    species = [pw.species[i] for i in om.species_idx.tolist()]
    chans = [{"kind": "species", "cell": c, "species": s} for c in range(sim.n_cells) for s in species]
    low = [float(om.species_low[pw.species_index[s]]) for _ in range(sim.n_cells) for s in species]
    scale = [float(om.species_scale[pw.species_index[s]]) for _ in range(sim.n_cells) for s in species]
    if om.ligand_idx is not None:
        nx = sim.grid.nx
        for p in om.ligand_idx.tolist():
            chans.append({"kind": "ligand", "row": p // nx, "col": p % nx, "pixel": p})
            low.append(0.0)
            scale.append(float(om.spec.observation.ligand_scale))
    return {"channels": chans, "channel_low": low, "channel_scale": scale}


def dataset_meta(model: EnvModel, **fields: Any) -> dict[str, Any]:
    """The spec-derived part of an episode dataset's ``meta`` (spec, pathway, species, controls
    and bounds, parameter names and prior, observation layout, channels), then ``fields``.

    ``fields`` adds what depends on the run (seed, policy, n_episodes, created, ...) and may
    replace spec-derived entries where a dataset measures differently (a discovery design's
    channels, layout and prior width)."""
    pw, spec = model.pathway, model.spec
    meta = {
        "env_id": spec.id,
        "spec": spec.to_dict(),
        "pathway": spec.pathway,
        "species": list(pw.species),
        "phenotype": list(pw.phenotype),
        "control_names": list(model.control_names),
        "control_low": model.control_low.cpu().tolist(),
        "control_high": model.control_high.cpu().tolist(),
        "param_names": list(model.sim.params.names),
        "prior_mean": model.prior.prior_mean.cpu().tolist(),
        "prior_sigma": model.prior.prior_sd.cpu().tolist(),
        "obs_layout": {k: [s.start, s.stop] for k, s in model.obs_model.layout.items()},
        **channel_meta(model.obs_model),
    }
    meta.update(fields)
    return meta
