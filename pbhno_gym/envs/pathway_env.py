"""The single-environment Gymnasium interface over the batched core (a batch of one)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ..utils.rng import seed_to_key
from .checks import action_tensor, check_render_mode, check_seed
from .core import PathwayCore
from .render import render_rgb
from .spec import EnvSpec, load_spec

__all__ = ["PathwayEnv", "make_env", "to_numpy_info"]


def to_numpy_info(info: dict[str, torch.Tensor], row: int) -> dict[str, Any]:
    """One env's info: Python scalars for scalars, numpy arrays otherwise."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        v = v.detach()
        a = (v if v.device.type == "cpu" else v.cpu()).numpy()[row]  # numpy indexing: no torch op
        out[k] = a.item() if a.ndim == 0 else a.copy()
    return out


class PathwayEnv(gym.Env[np.ndarray, np.ndarray]):
    """Steer a simulated signalling tissue to a target phenotype with ligand pulses and inhibitors.

    ## Description
    A coupled ODE-PDE simulation of one pathway (Notch, Wnt or MAPK; see ``docs/models.md``) on
    a 2D tissue. Every control interval the agent sets ligand-pulse rates over source regions
    and inhibitor doses; the tissue evolves; a lab-like instrument reports noisy, partial,
    irregularly sampled reporter levels. The ids differ by spec (``envs/*.toml``):

    * ``pbhno/Wnt-v1``: place the on/off boundary of a Wnt target gene in a 4 x 4 field of cells
      (ligand pulse in the source strip, Dkk1-like antagonist).
    * ``pbhno/Notch-v1``: choose which of two cells becomes the Hes-high receiver of a
      lateral-inhibition fate split (ligand to the left/right half, gamma-secretase inhibitor).
    * ``pbhno/NotchLattice-v0``: write a checkerboard of a given parity into a 4 x 4 lattice
      (patterned ligand release per cell, GSI).
    * ``pbhno/MAPK-v0``: track a switching set-point of active ERK (stimulus, MEK inhibitor).

    ## Action Space
    ``Box(low, high, (n_controls,), float32)`` in physical units, channels and bounds listed in
    ``env.unwrapped.control_names`` / ``control_specs`` (``normalize_actions=True``: ``Box(-1, 1)``
    mapped affinely onto the bounds). Out-of-bound actions are clipped and flagged
    (``info["action_clipped"]``); each channel's cumulative dose (rate x minutes) is capped by
    the spec's ``budgets`` (``info["budget_limited"]``, ``info["dose_left"]``). NaN/inf actions
    raise ``ValueError`` and leave the state unchanged.

    ## Observation Space
    ``Box(float32)``: held noisy measurements of each channel (reporter species per cell, optional
    ligand at edge pixels), a fresh-measurement mask, the measurement age, the target phenotype
    for the next ``preview`` steps, elapsed-time fraction, and the fraction of each dose budget
    left. ``env.unwrapped.obs_layout`` gives the slices. ``obs_mode="full"`` returns every species
    and the whole ligand field, noise-free (debugging, oracles).

    ## Rewards
    Minus the MPC stage cost: ``-(Q mean_i (p_i - p*_i)^2 + R mean_j (u_j / u_max_j)^2)`` with
    normalised phenotype ``p`` and Table II weights Q = 1, R = 0.01, so rewards are in about
    [-1, 0]. ``info["is_success"]`` (SB3's convention) is true when every cell has met its target
    for the last ``success_window`` steps.

    ## Starting State
    Cells at rest (Wnt, MAPK) or at their uncontrolled steady state (Notch, ``settle_minutes``),
    with log-normal cell-to-cell variability ``init_noise``; target drawn from the spec's
    distribution; with ``randomize_parameters=True`` the mechanistic parameters are drawn from
    their log-normal priors.

    ## Unknown worlds
    ``world_seed=k`` draws the true parameters once from the prior (log-normal around the spec's
    nominal values), reproducibly from k alone, and keeps them for the env's life: one tissue or
    cell line (see :mod:`pbhno_gym.envs.worlds`). ``mechanisms=[...]`` adds hidden kinetic terms
    (:mod:`pbhno_gym.physics.pathways.mechanisms`) whose parameters are drawn with the world.
    Agents are told ``env.unwrapped.core.prior`` (the base pathway's parameters at the nominal
    values); the truth is ``core.true_parameters`` and ``info["log_theta"]``, for oracles and
    evaluation only. ``world_seed`` and ``randomize_parameters`` exclude each other.

    ## Episode End
    No terminal states. Truncation after ``horizon`` control steps, or early if the numerics
    blow up (``info["numerical_failure"]``; the last finite observation is returned).

    ## Arguments
    ``gym.make(id, render_mode=None, device="cpu", dtype=torch.float32, compile=False, **overrides)``:
    ``compile=True`` runs each transition through ``torch.compile``, as two graphs (the physics, then
    reward, targets, measurement and observation; the same episode to float32 round-off, ~5x
    (MAPK) and ~3.5x (Wnt) the env-steps/s on one CPU thread after 10-60 s of compiling). Any spec
    field can be overridden (``horizon=24``, ``observation={"sample_prob": 1.0}``,
    ``parameters={"k_on": 0.02}``, ``obs_mode="full"``); unknown or invalid fields raise.
    ``info`` also carries the true state (``x``, ``L``) and ``log_theta`` for evaluation only.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        spec_id: str | None = None,
        env_spec: EnvSpec | None = None,
        render_mode: str | None = None,
        device=None,
        dtype=torch.float32,
        compile: bool = False,
        **overrides,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        self.env_spec = env_spec if env_spec is not None else load_spec(spec_id, overrides)
        self.render_mode = render_mode
        self.core = PathwayCore(self.env_spec, 1, device, dtype, compile=compile)
        self.control_specs = self.core.sim.control_specs
        self.control_names = self.core.control_names
        self.obs_layout = self.core.obs_model.layout
        self.horizon = self.env_spec.horizon
        if self.env_spec.normalize_actions:
            self.action_space = spaces.Box(-1.0, 1.0, (self.core.sim.n_controls,), np.float32)
        else:
            self.action_space = spaces.Box(
                self.core.low.cpu().numpy().astype(np.float32),
                self.core.high.cpu().numpy().astype(np.float32),
                dtype=np.float32,
            )
        low, high = self.core.obs_model.bounds()
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seed = check_seed(seed)
        self.core.check_options(options)  # refuse before the generators move
        super().reset(seed=seed)
        keys = None
        if seed is not None or not self._seeded:
            raw = seed if seed is not None else int(self.np_random.integers(2**62))
            keys = torch.tensor([seed_to_key(raw)], dtype=torch.int64)
            self._seeded = True
        obs = self.core.reset(keys=keys, options=options)
        info = {
            "target": self.core.targets.describe(self.core.target_params)[0],
            **to_numpy_info(self.core.true_info(), 0),
        }
        return obs[0].cpu().numpy(), info

    def step(self, action):
        a = action_tensor(action, self.action_space.shape, self.control_names, self.core.device)
        res = self.core.step(a[None])
        info = to_numpy_info(res.info, 0)
        info.update(to_numpy_info(self.core.true_info(), 0))
        return (
            res.obs[0].cpu().numpy(),
            float(res.reward[0]),
            bool(res.terminated[0]),
            bool(res.truncated[0]),
            info,
        )

    def render(self):
        if self.render_mode == "rgb_array":
            return render_rgb(self.core, 0)
        return None


def make_env(render_mode: str | None = None, **kwargs: Any) -> PathwayEnv:
    """The registered entry point: a :class:`PathwayEnv`.

    A function rather than the class so that ``gym.make(id, render_mode="human")`` reaches the
    env's own check (a clear error listing the render modes) instead of Gymnasium's
    HumanRendering wrapper and its pygame requirement.
    """
    if render_mode == "rgb_array_list":  # what gym.make does for a class entry point
        from gymnasium.wrappers import RenderCollection

        return RenderCollection(PathwayEnv(render_mode="rgb_array", **kwargs))
    check_render_mode(render_mode, PathwayEnv.metadata["render_modes"])
    return PathwayEnv(render_mode=render_mode, **kwargs)
