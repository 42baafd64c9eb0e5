"""The differentiable model interface every planner and estimator works through.

A :class:`ControlModel` advances a batched latent state under physical controls and predicts
what the environment scores and measures, all differentiably:

* ``initial_state(batch, log_theta)``: a default latent (cells at rest, no ligand);
* ``step(z, u, log_theta)``: one control interval, ``u`` (B, n_controls) in physical units;
* ``phenotype(z)``: (B, N) normalised phenotype, the quantity the env's reward and success use;
* ``measure(z)``: (B, C) noise-free prediction of the env's normalised measurement channels;
* ``theta``: the model's current parameter estimate (:class:`~pbhno_gym.physics.Parameters`,
  with the prior it came from); ``log_theta=None`` in ``step``/``initial_state`` means it.
  Planners and estimators start from ``theta``, never from the prior: a fitted model plans with
  its fit.

The latent is a :class:`~pbhno_gym.physics.SimState` ``(x (B, N, S), L (B, H, W) or None)``:
exactly the paper's shared latent ``z = (L, {x_i})`` for both the true simulator and PB-HNO.
:class:`SimulatorModel` is the true simulator behind this interface (the *oracle* when given
the true parameters); the PB-HNO surrogate implements the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import torch
from torch import Tensor

from ..envs.core import episode_start_state
from ..envs.factory import build
from ..envs.spec import EnvSpec, load_spec
from ..envs.worlds import build_world_simulator, world_prior
from ..physics.params import Parameters
from ..physics.reduced import ReducedFieldSimulator
from ..physics.simulator import SimState

__all__ = ["ControlModel", "SimulatorModel"]


class ControlModel(ABC):
    """Batched, differentiable dynamics + measurement model of one environment spec."""

    name: str = "model"
    spec: EnvSpec
    dt: float
    n_controls: int
    control_low: Tensor
    control_high: Tensor
    param_names: tuple[str, ...]
    device: torch.device
    dtype: torch.dtype
    #: upper bound of every species (fractions, e.g. MAPK), used to keep estimates physical
    state_upper_bound: float | None = None

    @property
    @abstractmethod
    def theta(self) -> Parameters:
        """The current parameter estimate (shared (P,) log-values) with its prior and free mask."""

    @property
    def prior(self) -> Parameters:
        """The same parameters at their prior mean (what a model knows before any data)."""
        return self.theta.prior()

    @abstractmethod
    def initial_state(self, batch: int, log_theta: Tensor | None = None) -> SimState: ...

    @abstractmethod
    def step(self, z: SimState, u: Tensor, log_theta: Tensor | None = None) -> SimState: ...

    @abstractmethod
    def phenotype(self, z: SimState) -> Tensor: ...

    @abstractmethod
    def measure(self, z: SimState) -> Tensor: ...

    def encode_state(self, z: SimState) -> SimState:
        """An environment's true state in this model's coordinates (oracle agents; identity for a
        model that shares the simulator's state)."""
        return z

    def step_jacobian(
        self,
        x: Tensor,
        t: Tensor,
        u: Tensor,
        log_theta: Tensor,
        active: Tensor,
        output: str,
        wrt_theta: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One step of an ODE latent and its Jacobians by forward mode
        (:func:`.jacobian.step_jacobian`); a compiled model runs it compiled."""
        from .jacobian import step_jacobian

        return step_jacobian(self, x, t, u, log_theta, active, output, wrt_theta)

    def rollout(
        self, z: SimState, U: Tensor, log_theta: Tensor | None = None
    ) -> tuple[list[SimState], Tensor]:
        """Apply a schedule U (B, T, n_u): states [z_0 .. z_T] and phenotypes (B, T+1, N)."""
        states, ph = [z], [self.phenotype(z)]
        for t in range(U.shape[1]):
            z = self.step(z, U[:, t], log_theta)
            states.append(z)
            ph.append(self.phenotype(z))
        return states, torch.stack(ph, 1)


class SimulatorModel(ControlModel):
    """The true simulator of an env spec behind the :class:`ControlModel` interface.

    With the environment's true parameters this is the *oracle* (it bounds what any controller
    can reach); with nominal or estimated parameters it is a classical mechanistic model.

    ``state_floor`` (> 0 for planning) keeps species at or above that absolute level before and
    after each step. The simulator's Patankar weight ``dest / x`` is 0 at an exactly-zero
    species but its rate constant for any x > 0, so the step is discontinuous there and its
    autograd derivative is wrong by orders of magnitude (MAPK at rest: -9020 where finite
    differences give -27 and the floored model -9.4). A floor of 1e-6 changes costs by ~1e-5.
    """

    name = "simulator"

    def __init__(
        self,
        spec: EnvSpec | str,
        device=None,
        dtype=torch.float32,
        state_floor: float = 0.0,
        parameters: Parameters | Mapping[str, float] | None = None,
        world: bool = False,
        field_modes: int | tuple[int, int] | None = None,
    ) -> None:
        """``parameters``: the values this model holds (natural units by name, or a
        :class:`Parameters`); default the spec's nominal values, which are also its prior mean.
        ``world=True`` models the spec's true world, hidden ``mechanisms`` included (their
        parameters after the skeleton's): for oracles only; agents get the skeleton (default).
        ``field_modes``: carry the ligand field in its lowest cosine modes
        (:class:`~pbhno_gym.physics.reduced.ReducedFieldSimulator`; None or 0: the full grid)."""
        if not state_floor >= 0:
            raise ValueError(f"SimulatorModel.state_floor must be >= 0, got {state_floor!r}")
        self.state_floor = float(state_floor)
        self.spec = load_spec(spec) if isinstance(spec, str) else spec
        self.device, self.dtype = torch.device(device or "cpu"), dtype
        parts = build(self.spec, self.device, dtype)
        self.sim, self.obs_model = parts.sim, parts.obs_model
        prior = parts.prior
        if world and self.spec.mechanisms:
            self.sim = build_world_simulator(self.spec, self.device, dtype)
            prior = world_prior(self.spec, self.device, dtype)
        if field_modes:
            self.sim = ReducedFieldSimulator(self.sim, field_modes)
        self.reduced = isinstance(self.sim, ReducedFieldSimulator)
        self.dt = self.sim.dt
        self.n_controls = self.sim.n_controls
        self.control_low, self.control_high = self.sim.control_low, self.sim.control_high
        self.param_names = self.sim.params.names
        if isinstance(parameters, Parameters):
            if parameters.names != prior.names:
                raise ValueError(
                    f"SimulatorModel parameters: names {parameters.names} do not match "
                    f"the pathway's {prior.names}"
                )
            self._theta = parameters.to(self.device, dtype)
        else:
            self._theta = prior.updated(parameters or {})
        self.n_cells = self.sim.n_cells
        self.state_upper_bound = self.sim.pathway.upper_bound

    @property
    def theta(self) -> Parameters:
        return self._theta

    def initial_state(self, batch: int, log_theta: Tensor | None = None) -> SimState:
        """The noise-free state episodes of this spec start from (rest, or settled)."""
        lt = self._theta.log_values if log_theta is None else log_theta
        return episode_start_state(self.sim, self.spec, lt, batch)

    def step(self, z: SimState, u: Tensor, log_theta: Tensor | None = None) -> SimState:
        lt = self._theta.log_values if log_theta is None else log_theta
        if self.state_floor == 0:
            return self.sim.step(z, u, lt)
        out = self.sim.step(SimState(z.x.clamp_min(self.state_floor), z.L, z.t), u, lt)
        return SimState(out.x.clamp_min(self.state_floor), out.L, out.t)

    def phenotype(self, z: SimState) -> Tensor:
        return self.obs_model.phenotype(z.x)

    def measure(self, z: SimState) -> Tensor:
        return self.obs_model.true_channels(self.sim.decode_state(z) if self.reduced else z)

    def encode_state(self, z: SimState) -> SimState:
        return self.sim.encode_state(z) if self.reduced else z
