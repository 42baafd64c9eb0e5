"""PB-HNO: an FNO for the ligand field coupled to a neural ODE for the cells (paper section IV).

One control step of the shared latent ``z = (L, {x_i})`` (a :class:`SimState`):

1. ``ell_0 = A(L)`` (learned averaging, eq. 6) and the membrane flux ``b = B(L, x)`` from the
   mechanistic emission/uptake of each cell under theta (learned boundary operator, eq. 6);
2. the PDE block (eq. 4): ``L' = G(L, b, S)``. Default ("residual"): ``L' = ETD_theta(L, b, S) +
   s FNO_phi(L, ETD, b, S)`` (``s = residual_scale``: the correction is small), where
   ``ETD_theta = e^{dt A} L + dt phi1(dt A)(b + S)`` is the exact diffusion-decay
   step with ``D, lambda`` from theta and the forcing frozen over the step; the FNO starts at
   zero and learns what freezing and the mechanism miss. The eq. (1) residual of the step,
   ``L' - ETD_theta``, is what the physics loss penalises. ("fno": ``L' = L + FNO_phi(...)``, the
   paper's pure operator step, tied to theta only through that residual loss.)
3. ``ell_1 = A(L')``; the reaction block (eq. 5) integrates every cell from ``x`` over the
   interval with ``ell`` interpolated between ``ell_0`` and ``ell_1``.

Theta (log-parameters) is a trainable vector; ``free_params`` selects which entries are fitted,
the rest stay at their nominal values. The model implements :class:`ControlModel`, so the MPC
plans through it exactly as through the true simulator. Checkpoints describe themselves
(config + state) and load with :meth:`PBHNO.load`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..control.model import ControlModel
from ..envs.core import episode_start_state
from ..envs.factory import build, channel_meta
from ..envs.spec import EnvSpec, load_spec
from ..physics.params import Parameters
from ..physics.reduced import ReducedFieldSimulator
from ..physics.simulator import SimState, Simulator
from ..physics.transport import SpectralOperator
from ..utils.io import CheckpointError, atomic_torch_save, safe_torch_load
from .coupling import AveragingOperator, BoundaryOperator
from .fno import FNO2d
from .modal import ModalAveraging, ModalBoundary, ModalCorrection
from .reaction import CellDynamics

__all__ = ["PBHNOConfig", "PBHNO", "CheckpointError", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "pbhno-model"
CHECKPOINT_VERSION = 1


@dataclass
class PBHNOConfig:
    """Everything needed to rebuild a PB-HNO model (saved inside every checkpoint)."""

    env_spec: dict[str, Any]  # EnvSpec.to_dict() of the environment the model serves
    free_params: list[str] | None = None  # fitted parameters (None: all)
    pde_block: str = "residual"  # residual (ETD transport + FNO correction) | fno | none (ETD only, ablation)
    width: int = 32
    modes: int = 32  # cosine modes per dimension (Table II)
    n_layers: int = 4  # spectral layers (Table II)
    hidden: int = 128  # MLP width (Table II)
    mlp_layers: int = 3
    correction_cap: float = 0.5
    # "additive" (bounded learned rate) | "modulation" (learned log-factors on the skeleton's fluxes)
    correction_form: str = "additive"
    # the correction vanishes at the rest state (cells' initial state under the starting theta)
    gate_rest: bool = False
    modulation_cap: float = 3.0  # bound of |log factor| in the modulation form
    # "all" | "regulators": each reaction's factor sees only the species its rate law lacks
    modulation_inputs: str = "all"
    # gain on the FNO's output in the residual block: the skeleton's per-step transport error is a
    # small fraction of the field scale, and Adam's first steps move every weight by ~lr whatever
    # the gradient's size, so a unit gain let one step at lr 1e-3 raise a fitted Wnt loss 8x
    residual_scale: float = 0.01
    learn_correction: bool = True  # False: mechanistic kinetics only (ablation)
    learn_coupling: bool = True  # False: A = A_geom, B = Phi_phys exactly
    # a learned factor of each cell's state on its membrane uptake, 1 at rest (CellDynamics.uptake_factor)
    learn_uptake: bool = False
    # where that factor is one: "rest" (the cells' rest state) | "regulators" (wherever the species
    # the skeleton's uptake law does not read are zero, e.g. a target-induced sink off without target)
    uptake_gate: str = "rest"
    solver: str = "dopri5"  # torchdiffeq method; "rk4" for the fixed-step mode
    # adjoint sensitivities (memory-light; refused where re-integrating the cells backwards over a
    # sub-interval is unstable, see PBHNO.ADJOINT_LIMIT); False: backprop through the solver
    adjoint: bool = True
    # fixed-step mode: steps per control interval; "auto": h * (fastest loss rate at rest) <= 1
    substeps: int | str = "auto"
    # K > 1: field and cells advance together in K ETD-RK2 sub-intervals (tighter coupling);
    # "auto": the reference simulator's fewest fixed sub-steps (Notch-v1: 16, Wnt-v1: 2)
    field_substeps: int | str = "auto"
    rtol: float = 1e-3
    atol: float = 1e-4
    init_log_theta: list[float] | None = None  # starting theta (default: the prior mean)
    dtype: str = "float32"
    # field pathways: carry the ligand field in its lowest m x m (or [my, mx]) cosine modes, with the
    # mechanistic operators projected once and modal learned blocks (surrogate/modal.py): a
    # planning model whose cost does not grow with the grid. None or 0: the field on the grid
    field_modes: int | list[int] | None = None
    theta_box: float | None = 3.0  # keep log theta within prior mean +- theta_box prior sds (None: free)
    design: dict[str, Any] | None = None  # a discovery Design (meta["design"]): its channels + initial state
    scales: dict[str, list[float] | float] = field(default_factory=dict)  # filled at construction


class PBHNO(nn.Module, ControlModel):
    """The PB-HNO surrogate of one environment spec (see module docstring)."""

    name = "pbhno"

    def __init__(self, config: PBHNOConfig, device=None) -> None:
        super().__init__()
        if config.pde_block not in ("residual", "fno", "none"):
            raise ValueError(
                f"PBHNOConfig.pde_block must be 'residual', 'fno' or 'none', got {config.pde_block!r}"
            )
        self.config = config
        self.spec: EnvSpec = load_spec(base=config.env_spec)
        self._dtype = getattr(torch, config.dtype)
        dev = torch.device(device or "cpu")
        self._build_helpers(dev)
        params = self.sim.params
        names = list(params.names)
        free = names if config.free_params is None else list(config.free_params)
        unknown = [n for n in free if n not in names]
        if unknown:
            raise ValueError(f"PBHNOConfig.free_params: unknown parameter(s) {unknown}; known: {names}")
        self.param_names = tuple(names)
        self.free_names = tuple(free)
        prior = params.log_theta(self.spec.parameters, torch.float64)
        init = (
            prior
            if config.init_log_theta is None
            else torch.tensor(config.init_log_theta, dtype=torch.float64)
        )
        if init.shape != prior.shape:
            raise ValueError(
                f"PBHNOConfig.init_log_theta must have {len(names)} entries, got {tuple(init.shape)}"
            )
        self.register_buffer("free_index", torch.tensor([names.index(n) for n in free], dtype=torch.long))
        self.register_buffer("log_theta_fixed", init.to(self._dtype))
        self.log_theta_free = nn.Parameter(init[[names.index(n) for n in free]].to(self._dtype))
        self.register_buffer("prior_mean", prior.to(self._dtype))
        self.register_buffer("prior_sigma", params.prior_sigma(self._dtype))
        if not config.scales:
            config.scales = self._nominal_scales()
        sc = config.scales
        pw = self.pathway
        u_max = self.sim.control_high[self.sim.n_sources :].to(self._dtype)
        if config.learn_uptake and self.sim.grid is None:
            raise ValueError(f"PBHNOConfig.learn_uptake: pathway {pw.name!r} has no ligand field to take up")
        self.cells = CellDynamics(
            pw,
            torch.tensor(sc["x"], dtype=self._dtype),
            float(sc["ell"]),
            u_max,
            self.dt,
            config.hidden,
            config.mlp_layers,
            config.correction_cap,
            config.learn_correction,
            config.correction_form,
            config.gate_rest,
            config.modulation_cap,
            config.learn_uptake,
            config.modulation_inputs,
            config.uptake_gate,
        )
        self.has_field = self.sim.grid is not None
        if self.reduced is not None:
            red = self.reduced
            self.averaging = ModalAveraging(red, config.learn_coupling)
            self.boundary = ModalBoundary(red, config.learn_coupling)
            if config.pde_block != "none":
                self.fno = ModalCorrection(4, red.modes, 4 * config.width, config.n_layers)
        elif self.has_field:
            lay = self.sim.layout
            self.averaging = AveragingOperator(
                lay.averaging_operator(self._dtype), self.sim.grid.shape, config.learn_coupling
            )
            self.boundary = BoundaryOperator(
                lay.membrane_operator(self._dtype), self.sim.grid.shape, config.learn_coupling
            )
            if config.pde_block != "none":
                self.fno = FNO2d(4, 1, config.width, config.modes, config.n_layers)
        self.field_substeps, self.cell_substeps = self._resolve_substeps(config)
        self.to(device=dev, dtype=self._dtype)
        if config.gate_rest or config.learn_uptake:  # the rest state the gated parts vanish at (cell mean)
            with torch.no_grad():
                self.cells.x_rest.copy_(self.initial_state(1).x[0].mean(0))
        if config.learn_uptake and config.uptake_gate == "regulators":
            self.cells.uptake_reads.copy_(self.pathway.uptake_dependence())

    def _membrane(self, x: Tensor, th: dict, inh: dict) -> tuple[Tensor, Tensor]:
        """(B, N) ligand release and uptake coefficient of every cell (uptake with its learned factor),
        from one split of the state (``Pathway.membrane_terms``)."""
        upt, emis = self.pathway.membrane_terms(x, th, inh)
        if emis is None:  # cells that emit nothing: the boundary operators take an explicit zero
            emis = torch.zeros_like(upt)
        fac = self.cells.uptake_factor(x)
        return emis, (upt if fac is None else upt * fac)

    # ------------------------------------------------------------------ helpers (not modules)
    #: largest |h * rate| for which a fixed-step method damps a decaying mode (negative real axis)
    STABILITY = {"rk4": 2.78, "midpoint": 2.0, "euler": 2.0}
    #: largest rate * interval over which the adjoint's backward re-integration of the cell state
    #: is trusted (it amplifies errors by up to e^10 ~ 2e4; Wnt-v1 at K = 1: 5.1, Notch-v1 at K = 64: 0.95)
    ADJOINT_LIMIT = 10.0

    def _resolve_substeps(self, cfg: PBHNOConfig) -> tuple[int, int]:
        """(coupled field sub-steps K, fixed-step cell steps per control interval), "auto" resolved
        from the pathway's fastest rates at rest under extreme controls (``Simulator.rest_rates``).
        Refuses fixed-step settings whose steps are unstable for those rates."""
        for name in ("substeps", "field_substeps"):
            v = getattr(cfg, name)
            if v != "auto" and not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"PBHNOConfig.{name} must be a positive int or 'auto', got {v!r}")
        rates = self.sim.rest_rates()
        rate = rates[0]
        K = 1
        if self.has_field:
            auto = cfg.field_substeps == "auto"
            K = self.sim.min_fixed_substeps(rates) if auto else int(cfg.field_substeps)
        n = max(K, math.ceil(self.dt * rate)) if cfg.substeps == "auto" else int(cfg.substeps)
        n = K * -(-n // K)  # each of the K sub-intervals takes ceil(n / K) steps
        h = self.dt / n
        limit = self.STABILITY.get(cfg.solver)
        if limit is not None and h * rate > limit:
            raise ValueError(
                f"PBHNOConfig.substeps={cfg.substeps!r} with solver {cfg.solver!r} gives steps of {h:g} min, "
                f"but the fastest loss rate at rest is {rate:.3g}/min: h * rate = {h * rate:.3g} exceeds "
                f"the method's stability limit {limit}; use substeps >= "
                f"{math.ceil(self.dt * rate / limit)} or 'auto'"
            )
        if cfg.adjoint and limit is not None and h * rate > 1:
            raise ValueError(
                f"PBHNOConfig.adjoint=True with {cfg.solver!r} steps of {h:g} min: the backward solve "
                f"re-integrates the cells against their fastest loss rate ({rate:.3g}/min), which needs "
                f"h * rate <= 1 (here {h * rate:.3g}) to stay accurate; use substeps >= "
                f"{math.ceil(self.dt * rate)} or 'auto'"
            )
        if cfg.adjoint and rate * self.dt / K > self.ADJOINT_LIMIT:
            raise ValueError(
                f"PBHNOConfig.adjoint=True: the adjoint re-integrates the cell states backwards over "
                f"each of the {K} coupled sub-interval(s) of {self.dt / K:g} min, where the fastest loss "
                f"rate at rest ({rate:.3g}/min) amplifies the solver's error by up to "
                f"exp({rate * self.dt / K:.3g}), so its gradients would be wrong (NaN on Notch at K = 1); "
                f"use adjoint=False (exact gradients of the discretisation) or field_substeps >= "
                f"{math.ceil(rate * self.dt / self.ADJOINT_LIMIT)}"
            )
        return K, n

    def _build_helpers(self, device: torch.device) -> None:
        parts = build(self.spec, device, self._dtype)
        self.sim: Simulator = parts.sim
        self.pathway = self.sim.pathway
        self.obs_model = parts.obs_model
        self.spectral = (
            SpectralOperator(self.sim.grid, self._dtype, device) if self.sim.grid is not None else None
        )
        fm = self.config.field_modes
        if fm and self.sim.grid is None:
            raise ValueError(
                f"PBHNOConfig.field_modes: pathway {self.pathway.name!r} has no ligand field to reduce"
            )
        # the field in its lowest cosine modes (SimState.L holds the coefficients (B, my, mx))
        modes = tuple(fm) if isinstance(fm, list) else fm
        self.reduced = ReducedFieldSimulator(self.sim, modes) if fm else None
        self.dt = self.sim.dt
        self.n_controls = self.sim.n_controls
        self.control_low, self.control_high = self.sim.control_low, self.sim.control_high
        self.n_cells = self.sim.n_cells
        self._design = None
        if self.config.design is not None:
            from ..discovery.design import Design, DesignModel, design_model

            d = Design.from_dict(self.config.design).skeleton()  # hidden mechanisms are not PB-HNO's
            ref = design_model(d)  # float64: the channel scales the dataset was generated with
            sp, lig = ref.scales()
            meta = ref.channel_meta()
            self._design = dict(
                model=DesignModel(d, dtype=self._dtype, device=device),
                channels=meta["channels"],
                species=torch.tensor(ref.species_idx, device=device),
                sp_scale=torch.as_tensor(sp[ref.species_idx], dtype=self._dtype, device=device),
                pixels=None if ref.pixels is None else ref.pixels.to(device),
                lig_scale=float(lig),
            )

    def to(self, *args, **kwargs):  # type: ignore[override]
        """Move to a device (helpers are rebuilt there). The dtype is fixed by ``PBHNOConfig.dtype``."""
        _, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is not None and dtype != self._dtype:
            raise ValueError(
                f"PB-HNO's dtype is set by PBHNOConfig.dtype ({self.config.dtype}); "
                f"rebuild the model to use {dtype}"
            )
        out = super().to(*args, **kwargs)
        dev = self.log_theta_fixed.device
        if self.sim.device != dev:
            self._build_helpers(dev)
        return out

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return self.log_theta_fixed.device

    @property
    def dtype(self) -> torch.dtype:  # type: ignore[override]
        return self._dtype

    def _nominal_scales(self) -> dict[str, Any]:
        """Typical magnitudes from a mechanistic rollout at the prior mean with mid-range controls
        (model-side knowledge, no data): species, membrane ligand and field scales."""
        sim = self.sim
        lt = self.prior_mean if hasattr(self, "prior_mean") else sim.params.log_theta(self.spec.parameters)
        with torch.no_grad():
            st = episode_start_state(sim, self.spec, lt.to(self._dtype), 1)
            u = (0.5 * (sim.control_low + sim.control_high))[None]
            xs, Ls = [st.x], [st.L]
            for _ in range(min(self.spec.horizon, 24)):
                st = sim.step(st, u, lt.to(self._dtype))
                xs.append(st.x)
                Ls.append(st.L)
        x = torch.cat(xs).abs().amax((0, 1)).clamp_min(1e-3)
        if sim.grid is None:
            return {"x": x.tolist(), "ell": 1.0, "L": 1.0}
        L = torch.cat(Ls)
        ell = float((L.reshape(L.shape[0], -1) @ sim.A.T).abs().max().clamp_min(1e-6))
        return {"x": x.tolist(), "ell": ell, "L": float(L.abs().max().clamp_min(1e-6))}

    # ------------------------------------------------------------------ parameters
    @property
    def log_theta(self) -> Tensor:
        """(P,) full log-parameter vector (fitted entries from ``log_theta_free``)."""
        return self.log_theta_fixed.index_put((self.free_index,), self.log_theta_free)

    @torch.no_grad()
    def project_theta_(self) -> None:
        """Clamp the fitted log-parameters into the prior box (mean +- ``theta_box`` sds): the
        box every discovery method shares, and a guard against stiff excursions."""
        box = self.config.theta_box
        if box is None:
            return
        mu = self.prior_mean[self.free_index]
        sd = self.prior_sigma[self.free_index]
        self.log_theta_free.copy_(
            torch.maximum(torch.minimum(self.log_theta_free, mu + box * sd), mu - box * sd)
        )

    @property
    def theta(self) -> Parameters:
        """The current estimate (detached) with the prior and the fitted (free) entries: what the
        MPC agent and the MHE start from."""
        free = torch.zeros(len(self.param_names), dtype=torch.bool, device=self.device)
        free[self.free_index] = True
        return Parameters(self.param_names, self.log_theta.detach(), self.prior_mean, self.prior_sigma, free)

    def theta_dict(self) -> dict[str, float]:
        return {
            n: float(v) for n, v in zip(self.param_names, torch.exp(self.log_theta).tolist(), strict=True)
        }

    # ------------------------------------------------------------------ ControlModel
    def _rest_state(self, batch: int, lt: Tensor) -> SimState:
        return episode_start_state(self.reduced or self.sim, self.spec, lt, batch)

    def grid_state(self, z: SimState) -> SimState:
        """``z`` with its field on the grid (decoded from the modes when ``field_modes`` is set)."""
        return z if self.reduced is None or z.L is None else self.reduced.decode_state(z)

    def encode_state(self, z: SimState) -> SimState:
        """A grid state (an env's, an oracle's) in this model's coordinates."""
        return z if self.reduced is None else self.reduced.encode_state(z)

    def initial_state(self, batch: int, log_theta: Tensor | None = None) -> SimState:
        """Cells at rest (or settled, as the spec's episodes start) under theta; no ligand.
        With a discovery design: the design's initial state (rest or settled)."""
        lt = self.log_theta if log_theta is None else log_theta
        if self._design is not None:
            lt = lt.expand(batch, -1) if lt.dim() == 1 else lt
            return self.encode_state(self._design["model"].initial_state(lt))
        return self._rest_state(batch, lt)

    def step(
        self,
        z: SimState,
        u: Tensor,
        log_theta: Tensor | None = None,
        aux: dict | None = None,
        duration: Tensor | None = None,
    ) -> SimState:
        """One control interval. ``aux`` (a dict) collects the physics residuals for the loss.

        ``duration`` (B,) minutes in [0, dt]: advance each row only that far (the state at an
        off-grid measurement): the cells' ODE and the mechanistic transport over exactly that
        time, the learned field correction (a per-interval operator) pro rata. No residuals."""
        cfg = self.config
        f = None if duration is None else (duration.to(self._dtype) / self.dt).reshape(-1, 1, 1)
        if f is not None:
            aux = None
        lt = self.log_theta if log_theta is None else log_theta
        th = self.sim.params.unpack(lt)
        lig, inh = self.sim.split_controls(u)
        u_inh = u[:, self.sim.n_sources :]
        B = u.shape[0]
        L1 = ell0 = ell1 = None
        K = self.field_substeps
        x1 = None
        if self.has_field:
            # grid: DCT in and out, fields kept >= 0; modes: the state is the coefficients already
            red = self.reduced
            fwd, inv = (self.spectral.forward, self.spectral.inverse) if red is None else (_same, _same)
            pos = _same if red is not None else (lambda t: t.clamp_min(0))
            L = z.L
            ell0 = self.averaging(L)
            src = (self.sim if red is None else red).external_source(lig, th, B).reshape(L.shape)
            diff, lam = self.pathway.field_coefficients(th)
            h = self.dt / K if f is None else (self.dt / K) * f
            modes = None if red is None else red.modes
            e, hp1, hp2 = self.spectral.multipliers(diff.reshape(-1), lam.reshape(-1), h, modes)
            Lk, xk, b_sum, reg = L, z.x, 0.0, 0.0
            for _ in range(K):  # mechanistic transport; with K > 1 the cells move with the field
                emis, upt = self._membrane(xk, th, inh)
                b, b_phys = self.boundary(Lk, emis, upt)
                n0 = fwd(b + src)
                a_hat = e * fwd(Lk) + hp1 * n0
                etd = inv(a_hat)
                if aux is not None:
                    reg = reg + self.boundary.regularizer(b, b_phys) / (K if K == 1 else 2 * K)
                if K > 1:  # ETD-RK2: cells over the sub-interval, then the field's corrector
                    pred = pos(etd)
                    xk = self.cells.solve(
                        xk,
                        self.averaging(Lk),
                        self.averaging(pred),
                        th,
                        inh,
                        u_inh,
                        cfg.solver,
                        cfg.adjoint and f is None,
                        self.cell_substeps // K,  # a multiple of K (_resolve_substeps)
                        cfg.rtol,
                        cfg.atol,
                        frac=1.0 / K if f is None else f / K,
                    )
                    emis, upt = self._membrane(xk, th, inh)
                    b1, b1_phys = self.boundary(pred, emis, upt)
                    corr = hp2 * (fwd(b1 + src) - n0)
                    etd = pos(inv(a_hat + corr))
                    if aux is not None:
                        reg = reg + self.boundary.regularizer(b1, b1_phys) / (2 * K)
                    b = 0.5 * (b + b1)
                b_sum = b_sum + b / K
                Lk = etd
            # field scale of the networks' inputs and the residuals: a coefficient of a field of
            # size ls is up to ls sqrt(H W) (orthonormal basis), so sums of squared coefficients
            # over ls^2 H W are the grid's means of squared pixels over ls^2 (Parseval)
            ls = float(cfg.scales["L"])
            if red is not None:
                ls = ls * math.sqrt(red.grid.ny * red.grid.nx)
            if cfg.pde_block == "none":
                L1 = pos(etd)
            else:
                span = self.dt if f is None else self.dt * f  # (B, 1, 1) for a partial step
                inp = torch.stack([L / ls, etd / ls, b_sum * (span / ls), src * (span / ls)], 1)
                g = self.fno(inp)[:, 0] * ls * (1.0 if f is None else f)
                if cfg.pde_block == "residual":
                    L1 = pos(etd + cfg.residual_scale * g)
                else:
                    L1 = pos(L + g)
            ell1 = self.averaging(L1)
            if K > 1:
                x1 = xk
            if aux is not None:
                per = (((L1 - etd) / ls) ** 2).flatten(1)
                aux.setdefault("pde", []).append(per.mean(1) if red is None else per.sum(1))
                aux.setdefault("op", []).append(reg / ls**2)
        if x1 is None:
            x1 = self.cells.solve(
                z.x,
                ell0,
                ell1,
                th,
                inh,
                u_inh,
                cfg.solver,
                cfg.adjoint and f is None,
                self.cell_substeps,
                cfg.rtol,
                cfg.atol,
                frac=1.0 if f is None else f,
            )
        if aux is not None:
            xp = z.x.clamp_min(0)
            corr = self.cells.correction(xp, ell0, u_inh, th, inh) / (self.cells.x_scale / self.dt)
            aux.setdefault("ode", []).append((corr**2).flatten(1).mean(1))
            if aux.get("orth"):  # the correction and the skeleton's theta-sensitivities, same units
                aux.setdefault("corr", []).append(corr)
                aux.setdefault("sens", []).append(self.drift_sensitivity(z.x, ell0, lt, inh))
        return SimState(x1, L1, z.t + (self.dt if duration is None else duration.to(z.t)))

    @torch.no_grad()
    def drift_sensitivity(
        self, x: Tensor, ell: Tensor | None, log_theta: Tensor, inh: dict, eps: float = 1e-3
    ) -> Tensor:
        """(B, N, S, p) d f_mech / d log theta_free (central differences), in the correction's units
        (x_scale per control interval): the directions in which theta moves the kinetics."""
        lt = log_theta.detach()
        cols = []
        for j in self.free_index.tolist():
            e = torch.zeros_like(lt)
            e[..., j] = eps
            hi = self.pathway.drift(x.clamp_min(0), ell, self.sim.params.unpack(lt + e), inh)
            lo = self.pathway.drift(x.clamp_min(0), ell, self.sim.params.unpack(lt - e), inh)
            cols.append((hi - lo) / (2 * eps))
        return torch.stack(cols, -1) / (self.cells.x_scale / self.dt)[:, None]

    def phenotype(self, z: SimState) -> Tensor:
        return self.obs_model.phenotype(z.x)

    def measure(self, z: SimState) -> Tensor:
        if self._design is not None:  # the design's normalised species (and edge-pixel ligand) channels
            d = self._design
            v = (z.x[..., d["species"]] / d["sp_scale"]).flatten(-2)
            if d["pixels"] is not None:
                L = self.grid_state(z).L
                v = torch.cat([v, L.flatten(-2)[..., d["pixels"]] / d["lig_scale"]], -1)
            return v
        return self.obs_model.true_channels(self.grid_state(z))

    def channels(self) -> list[dict]:
        """Descriptions of the measurement channels (must match a dataset's ``meta["channels"]``)."""
        if self._design is not None:
            return self._design["channels"]
        return channel_meta(self.obs_model)["channels"]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write a self-describing checkpoint atomically."""
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "class": type(self).__name__,
            "config": dataclasses.asdict(self.config),
            "state_dict": self.state_dict(),
            "extra": extra or {},
        }
        return atomic_torch_save(payload, path)

    @classmethod
    def load(cls, path: str | Path, device=None) -> PBHNO:
        """Rebuild a model from a checkpoint written by :meth:`save` (or a training checkpoint)."""
        payload = read_checkpoint(path)
        model_payload = payload.get("model", payload)
        try:
            # checkpoints from before residual_scale existed used a unit gain
            cfg = PBHNOConfig(**{"residual_scale": 1.0, **model_payload["config"]})
        except TypeError as e:
            raise CheckpointError(f"{path}: model config does not match this version ({e})") from None
        model = cls(cfg, device=device)
        missing, unexpected = model.load_state_dict(model_payload["state_dict"], strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: state does not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        return model


def _same(t: Tensor) -> Tensor:
    return t


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no pickled code runs); check its tag, version."""
    path = Path(path)
    payload = safe_torch_load(path)
    tag = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if tag not in (CHECKPOINT_FORMAT, "pbhno-train"):
        raise CheckpointError(f"{path}: not a PB-HNO checkpoint (format tag {tag!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {payload.get('version')}, this code reads {CHECKPOINT_VERSION}"
        )
    return payload
