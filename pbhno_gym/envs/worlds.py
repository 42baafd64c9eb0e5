"""Unknown worlds: hidden true parameters and hidden mechanisms of an environment instance.

A spec with ``world_seed = k`` runs one fixed world (one tissue or cell line): its true log
parameters are drawn once from the prior, ``log theta ~ N(log nominal, prior_sd^2)``, by a
counter-based stream keyed by k alone (:func:`world_key`), so the same k gives the same world in
any process, independent of reset seeds and of torch's global RNG. ``mechanisms`` adds hidden
kinetic terms (:mod:`pbhno_gym.physics.pathways.mechanisms`) whose parameters are drawn with the
world. Agents are told the skeleton's prior (``PathwayCore.prior``: the base pathway's parameters
only); the truth (``PathwayCore.true_parameters``) has the skeleton's parameters first, then the
mechanisms'.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..physics import Parameters, Simulator, get_pathway
from ..physics.pathways import with_mechanisms
from ..physics.pathways.base import Pathway
from ..utils.rng import CounterRNG, seed_to_key, splitmix64_reference
from .factory import build_layout
from .spec import EnvSpec

__all__ = ["STREAM_WORLD", "world_key", "world_pathway", "build_world_simulator", "world_prior", "draw_world"]

STREAM_WORLD = 61
_WORLD_DOMAIN = 0x574F524C44  # "WORLD": separates world keys from reset-seed keys


def world_key(seed: int) -> int:
    """The int64 stream key of world ``seed`` (never equal to a reset seed's key)."""
    return seed_to_key(splitmix64_reference(int(seed) ^ _WORLD_DOMAIN))


def world_pathway(spec: EnvSpec) -> Pathway:
    """The spec's pathway with its hidden ``mechanisms`` (the base pathway when there are none)."""
    return with_mechanisms(get_pathway(spec.pathway), spec.mechanisms)


def build_world_simulator(spec: EnvSpec, device=None, dtype=torch.float32) -> Simulator:
    """The simulator of the true world: the spec's layout and steps, the world's pathway."""
    return Simulator(
        world_pathway(spec),
        build_layout(spec.layout),
        spec.control_interval,
        spec.substeps,
        dtype=dtype,
        device=device,
    )


def world_prior(spec: EnvSpec, device=None, dtype=torch.float32) -> Parameters:
    """The prior worlds are drawn from: skeleton parameters at the spec's nominal values (the
    prior agents are told), then each mechanism's parameters at their documented priors."""
    pset = world_pathway(spec).params
    try:
        return Parameters.from_set(pset, spec.parameters, dtype=dtype, device=device)
    except ValueError as e:
        raise ValueError(f"spec.parameters: {e}") from None


def draw_world(prior: Parameters, seeds: Sequence[int]) -> Tensor:
    """(len(seeds), P) true log parameters, one world per seed: ``prior_mean + prior_sd * z``
    with z from the counter stream of :func:`world_key` (float64 draws, cast to the prior's dtype)."""
    rng = CounterRNG(len(seeds))
    rng.seed(torch.tensor([world_key(s) for s in seeds], dtype=torch.int64))
    z = rng.normal(STREAM_WORLD, len(prior), dtype=torch.float64)
    lt = prior.prior_mean.double().cpu() + prior.prior_sd.double().cpu() * z
    return lt.to(dtype=prior.log_values.dtype, device=prior.log_values.device)
