"""Experimental designs for parameter discovery, and the generator of their datasets.

A :class:`Design` states an inverse problem exactly: which environment (pathway, geometry,
control interval, substeps), which species are measured in every cell (and how many ligand
pixels along the tissue edge), which parameters are free (the rest stay at the spec's nominal
values), their prior, the noise model, the irregular sampling and the control inputs. The
generator simulates it with the float64 :class:`~pbhno_gym.physics.Simulator` and masks the
result into the episode :class:`~pbhno_gym.data.Dataset` format, so PB-HNO and every baseline
read identical data. The design itself is stored in ``meta["design"]`` (with the seed and the
noise and sparsity actually used), which is how amortised methods rebuild its simulator.
The named designs (``notch_sparse``, ``mapk_tiny``, ...) are registered in :mod:`.designs`.

Model error: a design may generate its data from a richer world than the skeleton every
method is handed. ``hidden`` names mechanisms (:mod:`pbhno_gym.physics.pathways.mechanisms`)
that the data-generating simulator has and the design's spec (the skeleton) lacks, at the values
``hidden_parameters`` (natural units; each mechanism's nominal otherwise), held fixed across
seeds. The dataset's ``meta`` then describes the skeleton (spec, parameter names, prior,
``log_theta`` columns); ``meta["true_log_theta"]`` is the world's full vector (skeleton's
parameters first). :class:`DesignModel` of such a design is the generator (the correct model,
mechanisms included); :meth:`Design.skeleton` is the design without them (the misspecified
model). Channel scales always come from the skeleton, so both measure in the same units.

Noise model: additive Gaussian, ``y = v + noise * e``, ``e ~ N(0, 1)``, in normalised units;
each species is normalised by its typical level (the RMS of its noise-free trajectory under
nominal parameters and the seed-0 controls), so ``noise = 0.2`` means "20% of the species'
typical level". ``meta["noise_sd"]`` records the sd of every channel.

Sampling: each trajectory is measured at ``n_times`` distinct control steps drawn uniformly from
1..T (irregular, different per trajectory); every observed channel is measured at those steps.

Randomness: independent streams from ``SeedSequence([seed, stream])`` for the true parameters
(drawn from the prior, truncated at ``theta_truncate`` sds), the control schedules (random pulse
trains, :class:`~pbhno_gym.data.RandomPulsePolicy`), the sampling times and the noise; changing
the noise level or the sparsity keeps the other draws (common random numbers across fig1).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..data.format import DATASET_VERSION, Dataset, _check
from ..data.policies import RandomPulsePolicy
from ..envs.factory import build, dataset_meta
from ..envs.observation import edge_pixels
from ..envs.spec import EnvSpec, load_spec
from ..envs.worlds import build_world_simulator
from ..physics.simulator import SimState, Simulator
from .prior import Prior

__all__ = [
    "Design",
    "make_dataset",
    "simulate_prior",
    "DesignModel",
    "design_model",
    "dataset_design",
    "DESIGNS",
    "register_design",
    "get_design",
    "available_designs",
]

STREAM_THETA, STREAM_CONTROLS, STREAM_TIMES, STREAM_NOISE = 1, 2, 3, 4


@dataclass(frozen=True)
class Design:
    """An inverse-problem design (see the module docstring for the noise and sampling model).

    Attributes:
        name: short id used in file names and tables.
        env: base environment spec id (pathway, geometry, interval, substeps).
        overrides: spec overrides (``horizon``, ``layout``, ``parameters``, ...).
        observed: species measured in every cell.
        ligand_samples: ligand pixels measured, spaced along the grid edge (0: none).
        ligand_scale: nM; normalises ligand samples (None: their nominal RMS level).
        free: parameters to estimate; all others fixed at the spec's nominal values.
        prior_sd: sd of the log-normal prior of the free parameters (None: the pathway's 0.5).
        n_traj: trajectories (experiments, each with its own controls) per dataset.
        n_times: measured control steps per trajectory (irregular).
        noise: additive noise sd as a fraction of each species' typical level.
        controls: control channels that are driven (None: all); the others stay at their low.
        schedule: "random_pulse" (RandomPulsePolicy trains with ``pulse`` keyword arguments:
            p_on, p_off, min_frac) or "constant" (each trajectory holds a level drawn
            uniformly in [0.2, 1] x the channel's upper bound: smooth responses).
        pulse: RandomPulsePolicy keyword arguments.
        initial: "rest" (the pathway's unsignalled state) or "settled" (then ``settle_minutes``
            without controls, as the environments start).
        theta_truncate: true parameters are drawn from the prior truncated at this many sds.
        hidden: mechanisms the data-generating world has and the skeleton (``env``) lacks.
        hidden_parameters: values (natural units) of the hidden mechanisms' parameters, fixed
            across seeds (unnamed ones at the mechanism's nominal value).
    """

    name: str
    env: str
    free: tuple[str, ...]
    observed: tuple[str, ...]
    overrides: dict = field(default_factory=dict)
    ligand_samples: int = 0
    ligand_scale: float | None = None
    prior_sd: float | None = None
    n_traj: int = 3
    n_times: int = 12
    noise: float = 0.2
    controls: tuple[str, ...] | None = None
    schedule: str = "random_pulse"
    pulse: dict = field(default_factory=dict)
    initial: str = "rest"
    settle_minutes: float = 1800.0
    theta_truncate: float = 2.0
    hidden: tuple[str, ...] = ()
    hidden_parameters: dict = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "free", tuple(self.free))
        object.__setattr__(self, "observed", tuple(self.observed))
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.hidden_parameters and not self.hidden:
            raise ValueError("Design.hidden_parameters given without hidden mechanisms")
        if self.controls is not None:
            object.__setattr__(self, "controls", tuple(self.controls))
        for k in ("n_traj", "n_times"):
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"Design.{k} must be a positive integer, got {v!r}")
        if not self.noise >= 0:
            raise ValueError(f"Design.noise must be >= 0, got {self.noise}")
        if self.schedule not in ("random_pulse", "constant"):
            raise ValueError(f"Design.schedule must be 'random_pulse' or 'constant', got {self.schedule!r}")
        if self.initial not in ("rest", "settled"):
            raise ValueError(f"Design.initial must be 'rest' or 'settled', got {self.initial!r}")
        if not self.observed and self.ligand_samples == 0:
            raise ValueError("Design.observed: measure at least one species or ligand pixel")
        if self.ligand_samples < 0:
            raise ValueError("Design.ligand_samples must be >= 0")
        if self.prior_sd is not None and not self.prior_sd > 0:
            raise ValueError("Design.prior_sd must be > 0")

    def replace(self, **kw) -> Design:
        """A copy with some fields changed (validated again)."""
        return replace(self, **kw)

    def skeleton(self) -> Design:
        """The design without its hidden mechanisms: the model every method is handed (free
        parameters of the mechanisms dropped). Itself when nothing is hidden."""
        if not self.hidden:
            return self
        from ..physics.pathways import get_mechanism

        extra = {p.name for m in self.hidden for p in get_mechanism(self.spec().pathway, m).params}
        return self.replace(
            hidden=(), hidden_parameters={}, free=tuple(n for n in self.free if n not in extra)
        )

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> Design:
        d = dict(d)
        for k in ("free", "observed", "hidden"):
            if k in d:
                d[k] = tuple(d[k])
        if d.get("controls") is not None:
            d["controls"] = tuple(d["controls"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def spec(self) -> EnvSpec:
        return load_spec(self.env, copy.deepcopy(self.overrides))


# ---------------------------------------------------------------------------- simulation
class DesignModel:
    """The design's float64 simulator, initial state and measurement operator (the true model).

    ``channels(x, L)`` maps cell states (..., N, S) and fields (..., H, W) to the design's
    normalised measurement channels (..., C); the MLE baseline and the data generator share it.
    """

    def __init__(self, design: Design, dtype=torch.float64, device=None) -> None:
        self.design, self.dtype = design, dtype
        self.spec = design.spec()
        self.parts = build(self.spec, device, dtype)  # the skeleton (what the dataset's meta describes)
        self.sim: Simulator = self.parts.sim
        values = dict(self.spec.parameters)
        if design.hidden:  # the generator: the skeleton plus the hidden mechanisms
            self.sim = build_world_simulator(
                dataclasses.replace(self.spec, mechanisms=design.hidden), device, dtype
            )
            values.update(design.hidden_parameters)
        self.pathway = self.sim.pathway
        self.params = self.sim.params
        unknown = [n for n in design.free if n not in self.params]
        if unknown:
            raise ValueError(
                f"Design.free: {unknown} not parameters of {self.pathway.name} ({self.params.names})"
            )
        bad = [s for s in design.observed if s not in self.pathway.species]
        if bad:
            raise ValueError(
                f"Design.observed: {bad} not species of {self.pathway.name} ({self.pathway.species})"
            )
        if design.controls is not None:
            names = [c.name for c in self.sim.control_specs]
            bad = [c for c in design.controls if c not in names]
            if bad:
                raise ValueError(f"Design.controls: {bad} not controls of this env ({names})")
        try:
            self.prior_mean = self.params.log_theta(values, torch.float64).numpy()
        except ValueError as e:
            raise ValueError(f"Design.hidden_parameters: {e}") from None
        sd = self.params.prior_sigma(torch.float64).numpy()
        self.prior_sd = np.full_like(sd, design.prior_sd) if design.prior_sd is not None else sd
        self.free_idx = [self.params.index[n] for n in design.free]
        self.settler = None
        if design.initial == "settled":
            self.settler = Simulator(
                self.pathway,
                self.sim.layout,
                design.settle_minutes / 15,
                4,
                max_stiffness=1e9,
                dtype=dtype,
                device=device,
            )
        self.species_idx = [self.pathway.species_index[s] for s in design.observed]
        self.pixels = None
        if design.ligand_samples:
            if self.sim.grid is None:
                raise ValueError("Design.ligand_samples: this pathway has no ligand field")
            self.pixels = edge_pixels(self.sim.grid.ny, self.sim.grid.nx, design.ligand_samples)
        self.n_channels = self.sim.n_cells * len(self.species_idx) + (
            0 if self.pixels is None else len(self.pixels)
        )
        self._scales: tuple[np.ndarray, float] | None = None

    @property
    def prior(self) -> Prior:
        i = self.free_idx
        return Prior(self.design.free, self.prior_mean[i], self.prior_sd[i])

    def full_log_theta(self, free_values: torch.Tensor) -> torch.Tensor:
        """(K, p) free log-parameters -> (K, P) with the others at the nominal values."""
        base = torch.as_tensor(self.prior_mean, dtype=free_values.dtype, device=free_values.device)
        out = base.expand(free_values.shape[0], -1).clone()
        out[:, self.free_idx] = free_values
        return out

    def initial_state(self, log_theta: torch.Tensor) -> SimState:
        """(B, P) log-parameters -> initial states (differentiable in theta)."""
        st = self.sim.initial_state(log_theta)
        if self.settler is not None:
            zero = self.sim.control_low.expand(st.batch_size, -1)
            for _ in range(15):
                st = self.settler.step(st, zero, log_theta)
            st = SimState(st.x, st.L, torch.zeros_like(st.t))
        return st

    def simulate(
        self, log_theta: torch.Tensor, controls: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Cell states (B, T+1, N, S) and fields (B, T+1, H, W) or None, for (B, P) and (B, T, U)."""
        st = self.initial_state(log_theta)
        _, xs, Ls = self.sim.rollout(st, controls, log_theta)
        return xs, Ls

    def scales(self) -> tuple[np.ndarray, float]:
        """(S,) typical level of each species and of the sampled ligand: RMS over four nominal
        trajectories under seed-0 controls (a property of the design, not of any dataset)."""
        if self._scales is None and self.design.hidden:  # shared with the skeleton: same units
            skel = design_model(self.design.skeleton())
            self._scales, self._ell_scale = skel.scales(), skel._ell_scale
        if self._scales is None:
            lt = torch.as_tensor(self.prior_mean, dtype=self.dtype).expand(4, -1)
            u = torch.as_tensor(self.controls(np.random.default_rng(0), 4), dtype=self.dtype)
            with torch.no_grad():
                xs, Ls = self.simulate(lt, u)
            sp = xs.pow(2).mean((0, 1, 2)).sqrt().clamp_min(1e-6).numpy()
            self._ell_scale = 1.0
            if Ls is not None:
                ell = self.sim.membrane_average(Ls.flatten(2))
                self._ell_scale = float(ell.pow(2).mean().sqrt().clamp_min(1e-6))
            lig = 1.0
            if self.pixels is not None:
                lig = self.design.ligand_scale or float(
                    Ls.flatten(2)[..., self.pixels].pow(2).mean().sqrt().clamp_min(1e-6)
                )
            self._scales = (sp, lig)
        return self._scales

    def typical_levels(self) -> tuple[np.ndarray, float]:
        """(S,) species and membrane-ligand ``ell`` RMS levels under nominal parameters: prior
        knowledge of scales that every learned method may use to normalise its outputs."""
        sp, _ = self.scales()
        return sp, self._ell_scale

    def channel_meta(self) -> dict[str, Any]:
        sp, lig = self.scales()
        chans, low, scale = [], [], []
        for c in range(self.sim.n_cells):
            for s in self.design.observed:
                chans.append({"kind": "species", "cell": c, "species": s})
                low.append(0.0)
                scale.append(float(sp[self.pathway.species_index[s]]))
        if self.pixels is not None:
            nx = self.sim.grid.nx
            for p in self.pixels.tolist():
                chans.append({"kind": "ligand", "row": p // nx, "col": p % nx, "pixel": p})
                low.append(0.0)
                scale.append(lig)
        return {"channels": chans, "channel_low": low, "channel_scale": scale}

    def channels(self, xs: torch.Tensor, Ls: torch.Tensor | None) -> torch.Tensor:
        """Normalised channels (..., C) from cell states (..., N, S) and fields (..., H, W)."""
        sp, lig = self.scales()
        idx = self.species_idx
        scale = torch.as_tensor(sp[idx], dtype=xs.dtype, device=xs.device)
        v = (xs[..., idx] / scale).flatten(-2)
        if self.pixels is not None:
            v = torch.cat([v, Ls.flatten(-2)[..., self.pixels.to(Ls.device)] / lig], -1)
        return v

    def controls(
        self,
        rng: np.random.Generator,
        n: int,
        pulse: dict | None = None,
        channels: tuple[str, ...] | None = None,
    ) -> np.ndarray:
        """(n, T, U) random pulse schedules in physical units (unpulsed channels at their low)."""
        low, high = self.sim.control_low.cpu().numpy(), self.sim.control_high.cpu().numpy()
        names = [c.name for c in self.sim.control_specs]
        chans = self.design.controls if channels is None else channels
        if chans is not None:
            bad = [c for c in chans if c not in names]
            if bad:
                raise ValueError(f"controls {bad} are not channels of this env ({names})")
        T = self.spec.horizon
        if self.design.schedule == "constant" and pulse is None:
            level = low + (high - low) * rng.uniform(0.2, 1.0, (n, 1, len(high)))
            u = np.broadcast_to(level, (n, T, len(high))).copy()
        else:
            pol = RandomPulsePolicy(low, high, **{**self.design.pulse, **(pulse or {})})
            pol.reset(n, [int(s) for s in rng.integers(0, 2**31 - 1, n)])
            u = np.stack([pol.act(n) for _ in range(T)], 1).astype(np.float64)
        if chans is not None:
            off = [j for j, nm in enumerate(names) if nm not in chans]
            u[..., off] = low[off]
        return u


_MODELS: dict[str, DesignModel] = {}


def design_model(design: Design) -> DesignModel:
    """Cached :class:`DesignModel` (float64, CPU) of a design (noise, sparsity, names aside)."""
    design = design.replace(name="", description="", noise=0.0, n_times=1, n_traj=1)
    key = json.dumps(design.to_dict(), sort_keys=True)
    if key not in _MODELS:
        _MODELS[key] = DesignModel(design)
    return _MODELS[key]


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def _draws(
    design: Design, model: DesignModel, seed: int, stream: int, log_theta, controls, pulse, control_channels
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """True log theta (P,), controls (E, T, U), measurement mask (E, T+1, C), noise draws."""
    E, T, C = design.n_traj, model.spec.horizon, model.n_channels
    if design.n_times > T:
        raise ValueError(f"Design.n_times={design.n_times} exceeds the {T} control steps of the horizon")
    prior = model.prior
    if log_theta is None:
        z = np.clip(
            _rng(seed, STREAM_THETA).standard_normal(prior.size),
            -design.theta_truncate,
            design.theta_truncate,
        )
        lt = model.prior_mean.copy()
        lt[model.free_idx] = prior.mean + prior.sd * z
    else:
        lt = np.asarray(log_theta, dtype=np.float64).reshape(-1)
        if lt.shape != model.prior_mean.shape:
            raise ValueError(f"log_theta must have {len(model.prior_mean)} entries, got {lt.shape}")
    if controls is None:
        u = model.controls(_rng(seed, STREAM_CONTROLS + 10 * stream), E, pulse, control_channels)
    else:
        u = np.asarray(controls, dtype=np.float64)
        if u.shape != (E, T, model.sim.n_controls):
            raise ValueError(f"controls must have shape ({E}, {T}, {model.sim.n_controls}), got {u.shape}")
    rt = _rng(seed, STREAM_TIMES + 10 * stream)
    mask = np.zeros((E, T + 1, C), dtype=bool)
    for e in range(E):
        mask[e, np.sort(rt.choice(np.arange(1, T + 1), design.n_times, replace=False))] = True
    eps = _rng(seed, STREAM_NOISE + 10 * stream).standard_normal((E, T + 1, C))
    return lt, u, mask, eps


def _simulate(model: DesignModel, lt: np.ndarray, u: np.ndarray, max_rows: int = 256):
    """Cell states, fields (or None) and clean channels for (B, P) and (B, T, U), in chunks."""
    xs, Ls, ch = [], [], []
    for s in range(0, len(lt), max_rows):
        with torch.no_grad():
            x, L = model.simulate(torch.as_tensor(lt[s : s + max_rows]), torch.as_tensor(u[s : s + max_rows]))
            ch.append(model.channels(x, L).numpy())
        xs.append(x.numpy())
        if L is not None:
            Ls.append(L.numpy())
    return np.concatenate(xs), (np.concatenate(Ls) if Ls else None), np.concatenate(ch)


def make_dataset(
    design: Design | str,
    seed: int,
    *,
    noise: float | None = None,
    n_times: int | None = None,
    n_traj: int | None = None,
    log_theta: np.ndarray | None = None,
    controls: np.ndarray | None = None,
    pulse: dict | None = None,
    control_channels: tuple[str, ...] | None = None,
    stream: int = 0,
) -> Dataset:
    """Simulate one dataset of the design.

    Args:
        seed: draws the true parameters (shared by all trajectories), controls, times, noise.
        noise, n_times, n_traj: override the design's values (recorded in ``meta["design"]``).
        log_theta: (P,) true log-parameters instead of a prior draw.
        controls: (E, T, U) control schedules instead of random pulses.
        pulse, control_channels: change the random pulse statistics / pulsed channels
            (counterfactual tests with unseen inputs).
        stream: offsets the control/time/noise streams (0: training data; another value gives
            new experiments on the same system - the true parameters depend on ``seed`` only).
    """
    if isinstance(design, str):
        design = get_design(design)
    changes = {k: v for k, v in dict(noise=noise, n_times=n_times, n_traj=n_traj).items() if v is not None}
    design = design.replace(**changes) if changes else design
    model = design_model(design)
    E, T = design.n_traj, model.spec.horizon
    lt, u, mask, eps = _draws(design, model, seed, stream, log_theta, controls, pulse, control_channels)
    xs, Ls, clean = _simulate(model, np.tile(lt, (E, 1)), u)
    if not np.isfinite(clean).all():
        raise RuntimeError(f"design {design.name}: simulation with seed {seed} produced non-finite values")
    C = clean.shape[-1]
    P0 = len(model.parts.sim.params)  # the skeleton's parameters come first in the world's vector
    noise_sd = np.full(C, design.noise)
    values = np.where(mask, clean + noise_sd * eps, np.nan)
    obs = np.concatenate([np.nan_to_num(values), mask.astype(np.float64)], -1)
    arrays = {
        "obs": obs.astype(np.float32),
        "meas_values": values.astype(np.float32),
        "meas_mask": mask,
        "actions": u.astype(np.float32),
        "rewards": np.zeros((E, T), np.float32),
        "x": xs.astype(np.float32),
        "log_theta": np.tile(lt[:P0], (E, 1)).astype(np.float32),  # the skeleton's columns
        "target_params": np.zeros((E, 0), np.float32),
        "success": np.zeros(E, bool),
        "times": (np.arange(T + 1) * model.spec.control_interval).astype(np.float32),
    }
    if Ls is not None:
        arrays["L"] = Ls.astype(np.float32)
    meta = dataset_meta(  # the design's own prior width, observation layout and channels
        model.parts,
        version=DATASET_VERSION,
        prior_sigma=model.prior_sd.tolist(),
        seed=int(seed),
        policy="random_pulse" if controls is None else "given",
        n_episodes=E,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        obs_layout={"values": [0, C], "fresh": [C, 2 * C]},
        noise_sd=noise_sd.tolist(),
        noise_model="additive Gaussian, sd = noise_sd per channel (normalised units)",
        free_params=list(design.free),
        true_log_theta=lt.tolist(),
        true_param_names=list(model.params.names),
        design={**design.to_dict(), "seed": int(seed), "stream": int(stream)},
        **model.channel_meta(),
    )
    _check(arrays, meta, f"design {design.name}")
    return Dataset(arrays, meta)


def simulate_prior(design: Design, seeds: list[int], stream: int = 0) -> dict[str, np.ndarray]:
    """Many datasets of a design in one batched simulation (training data for amortised methods).

    Returns arrays with a leading dataset axis n: ``log_theta`` (n, P), ``actions`` (n, E, T, U),
    ``clean`` (n, E, T+1, C) noise-free channels, ``meas_values`` (n, E, T+1, C) noisy values
    (NaN where not measured), ``meas_mask``, and ``L`` (n, E, T+1, H, W) for field pathways.
    Dataset i equals ``make_dataset(design, seeds[i], stream=stream)``.
    """
    model = design_model(design)
    E = design.n_traj
    d = [_draws(design, model, s, stream, None, None, None, None) for s in seeds]
    lt = np.stack([x[0] for x in d])
    u = np.stack([x[1] for x in d])
    mask = np.stack([x[2] for x in d])
    eps = np.stack([x[3] for x in d])
    n = len(seeds)
    _, Ls, clean = _simulate(model, np.repeat(lt, E, 0), u.reshape(n * E, *u.shape[2:]))
    clean = clean.reshape(n, E, *clean.shape[1:])
    vals = np.where(mask, clean + design.noise * eps, np.nan)
    out = dict(log_theta=lt, actions=u, clean=clean, meas_values=vals, meas_mask=mask)
    if Ls is not None:
        out["L"] = Ls.reshape(n, E, *Ls.shape[1:])
    return out


def dataset_design(dataset: Dataset) -> Design:
    """The :class:`Design` a dataset was generated from (raises if it has none)."""
    d = dataset.meta.get("design")
    if d is None:
        raise ValueError("dataset has no meta['design']: it was not made by make_dataset")
    return Design.from_dict(d)


# ---------------------------------------------------------------------------- the registry
DESIGNS: dict[str, Design] = {}
"""The registry (registration order): the catalogue in :mod:`.designs` fills it when the
``pbhno_gym.discovery`` package is imported; add to it with :func:`register_design`."""


def register_design(design: Design, *, overwrite: bool = False) -> Design:
    """Add ``design`` under ``design.name``; refuses to replace one unless ``overwrite``."""
    if not isinstance(design, Design):
        raise TypeError(f"register_design needs a Design, got {type(design).__name__}")
    if design.name in DESIGNS and not overwrite and DESIGNS[design.name] != design:
        raise ValueError(f"design {design.name!r} is already registered (pass overwrite=True to replace it)")
    DESIGNS[design.name] = design
    return design


def available_designs() -> list[str]:
    """Names of the registered designs, in registration order."""
    return list(DESIGNS)


def get_design(name: str, **changes) -> Design:
    """A registered design, optionally with fields changed (``noise=0.1``, ``n_times=6``, ...)."""
    if name not in DESIGNS:
        raise ValueError(f"unknown design {name!r}; known designs: {', '.join(DESIGNS)}")
    return DESIGNS[name].replace(**changes) if changes else DESIGNS[name]
