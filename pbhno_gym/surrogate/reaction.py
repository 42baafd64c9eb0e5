"""The reaction block (paper eq. 5): a neural ODE for every cell, integrated with torchdiffeq.

``dx/dt = f_mech(x, ell(t); theta, u) + c * tanh(MLP([x / x_scale, ell / ell_scale, u / u_max]))``

* ``f_mech`` is the pathway's known kinetics (``Pathway.drift``), so theta enters mechanistically;
* the MLP (3 layers of 128, ReLU; last layer zero-initialised) learns what the mechanism misses;
  its output is the ODE residual ``R_ODE`` the loss penalises under the current theta;
* ``ell(t)`` interpolates linearly between the membrane ligand at the start and end of the step
  (the PDE block advances the field first).

Keeping the learned dynamics non-stiff, by scaling (torchdiffeq has no stiff solver and one step
size per batch): time is integrated in units of the control interval (tau = t / dt), inputs are
normalised to O(1), and the correction is bounded by ``c = correction_cap * x_scale / dt`` per
species, so the MLP can never add a rate faster than ``correction_cap`` of a species' scale per
control interval. The mechanistic part keeps its own stiffness (Notch cis-inactivation, ~2/min),
which the adaptive solver resolves or the fixed-step mode handles with ``substeps``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from ..physics.pathways.base import Pathway

__all__ = ["CellDynamics"]


def mlp(inp: int, out: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = inp
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    last = nn.Linear(d, out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*mods, last)


class ReactionMLP(nn.Module):
    """One MLP per reaction, batched into a few bmm calls: reaction r's output sees only the inputs
    ``mask[r]`` lets through (masked inputs get exactly zero weight gradient). Layer sizes and
    initialisation as :func:`mlp` (``nn.Linear``'s uniform bound 1/sqrt(fan in), last layer zero)."""

    def __init__(self, mask: Tensor, hidden: int, layers: int) -> None:
        super().__init__()
        R, D = mask.shape
        self.register_buffer("mask", mask.to(torch.get_default_dtype())[:, None, :].clone())
        dims = [D] + [hidden] * (layers - 1) + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            bound = 0.0 if i == len(dims) - 2 else a**-0.5
            self.weights.append(nn.Parameter(torch.empty(R, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(R, 1, b).uniform_(-bound, bound)))

    def forward(self, inp: Tensor) -> Tensor:
        """(..., D) -> (..., R)."""
        lead = inp.shape[:-1]
        h = inp.reshape(1, -1, inp.shape[-1]) * self.mask  # (R, M, D)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
        return h[..., 0].t().reshape(*lead, -1)


class CellDynamics(nn.Module):
    """Hybrid per-cell right-hand side; call :meth:`solve` to advance one control interval.

    Args:
        pathway: the known kinetics.
        x_scale: (S,) typical magnitude of each species (for normalisation and the cap).
        ell_scale: typical membrane ligand (nM), 1 for ODE-only pathways.
        u_max: (n_inh,) upper bounds of the inhibitor channels.
        dt: control interval (min).
        hidden, layers: MLP size (Table II: 128, 3).
        correction_cap: bound of the learned rate per control interval, as a fraction of x_scale.
        learn: include the MLP (False: purely mechanistic, an ablation).
        form: ``"additive"`` (the MLP's bounded rate is added to the drift) or ``"modulation"``
            (the MLP multiplies each reaction flux ``v_r`` by ``exp(modulation_cap tanh(g_r))``:
            the correction is ``sum_r v_r (m_r - 1) nu_r``, so it acts only through the skeleton's
            reactions, with their own dependence on stimulus and free pools).
        gate_rest: subtract the MLP's output at the rest state ``x_rest`` (same controls), so the
            correction vanishes there and the rest-state kinetics (e.g. the initial slope after a
            stimulus) belong to theta alone.
        modulation_cap: bound of ``|log m_r|`` in the modulation form.
        modulation_inputs: what each reaction's log-factor may depend on in the modulation form:
            ``"all"`` (one MLP of the whole cell state, ligand and controls) or ``"regulators"``
            (one MLP per reaction, :class:`ReactionMLP`, that sees the ligand, the controls and only
            the species its skeleton rate law does not contain, ``Pathway.rate_dependence``): the
            network can then add a missing regulation (e.g. ERK inhibiting Raf activation) but not
            reshape a rate law in its own substrates, a trade-off direction with the rate constant.
        learn_uptake: a second small MLP gives each cell's membrane uptake coefficient a learned
            factor ``exp(modulation_cap tanh(g(x) - g(x_rest)))`` of the cell's own state, one at
            rest (:meth:`uptake_factor`): a cell-state-dependent ligand sink the skeleton lacks
            (e.g. a target-induced Notum/Dkk-like sink) is then learnable, and at rest the
            uptake is theta's alone.
        uptake_gate: where the uptake factor is one: ``"rest"`` (above) or ``"regulators"``:
            ``g(x) - g(x with the regulators zeroed)``, the regulators being the species the
            skeleton's uptake law does not read (``uptake_reads``, set by the model). A sink
            ``k T`` added to ``kappa k_on R`` is then the factor ``1 + k T / (kappa k_on R)``, one
            at T = 0 for every R, so kappa keeps its own meaning; gated at a rest state with T > 0,
            kappa would absorb ``k T_rest``.
    """

    def __init__(
        self,
        pathway: Pathway,
        x_scale: Tensor,
        ell_scale: float,
        u_max: Tensor,
        dt: float,
        hidden: int = 128,
        layers: int = 3,
        correction_cap: float = 0.5,
        learn: bool = True,
        form: str = "additive",
        gate_rest: bool = False,
        modulation_cap: float = 3.0,
        learn_uptake: bool = False,
        modulation_inputs: str = "all",
        uptake_gate: str = "rest",
    ) -> None:
        super().__init__()
        self.pathway = pathway
        S = len(pathway.species)
        self.n_inh = len(pathway.inhibitors)
        self.register_buffer("x_scale", x_scale.clone())
        self.register_buffer("u_max", u_max.clone().clamp_min(1e-12))
        self.ell_scale, self.dt, self.learn = float(ell_scale), float(dt), learn
        self.cap = correction_cap
        if form not in ("additive", "modulation"):
            raise ValueError(f"CellDynamics: form must be 'additive' or 'modulation', got {form!r}")
        self.form, self.gate_rest, self.mod_cap = form, bool(gate_rest), float(modulation_cap)
        if modulation_inputs not in ("all", "regulators"):
            raise ValueError(
                f"CellDynamics: modulation_inputs must be 'all' or 'regulators', got {modulation_inputs!r}"
            )
        if modulation_inputs == "regulators" and form != "modulation":
            raise ValueError("CellDynamics: modulation_inputs='regulators' needs form='modulation'")
        n_out = len(pathway.reactions) if form == "modulation" else S
        self.net: nn.Module | None = None
        if learn and modulation_inputs == "regulators":
            lacks = ~pathway.rate_dependence()  # (R, S): species a rate law does not read
            mask = torch.cat([lacks, torch.ones(n_out, 1 + self.n_inh, dtype=torch.bool)], 1)
            self.net = ReactionMLP(mask, hidden, layers)
        elif learn:
            self.net = mlp(S + 1 + self.n_inh, n_out, hidden, layers)
        self.register_buffer("x_rest", torch.zeros(S, dtype=x_scale.dtype), persistent=False)  # gate's rest
        self.uptake_net = mlp(S, 1, hidden, layers) if learn_uptake else None
        if uptake_gate not in ("rest", "regulators"):
            raise ValueError(f"CellDynamics: uptake_gate must be 'rest' or 'regulators', got {uptake_gate!r}")
        self.uptake_gate = uptake_gate
        # species the skeleton's uptake law reads (kept by the "regulators" gate); all by default
        self.register_buffer("uptake_reads", torch.ones(S, dtype=torch.bool), persistent=False)  # from config

    def uptake_factor(self, x: Tensor) -> Tensor | None:
        """(B, N) learned factor on each cell's uptake coefficient, 1 at the gate (the rest state,
        or zero regulators; None without ``learn_uptake``)."""
        if self.uptake_net is None:
            return None
        xs = self.x_scale
        if self.uptake_gate == "regulators":
            gate = x * self.uptake_reads.to(x.dtype)  # the regulators zeroed, the law's own species kept
        else:
            gate = self.x_rest.expand_as(x)
        both = self.uptake_net(torch.stack([x / xs, gate / xs]))[..., 0]
        return torch.exp(self.mod_cap * torch.tanh(both[0] - both[1]))

    def _net(self, x: Tensor, ell: Tensor | None, u_inh: Tensor) -> Tensor:
        """The MLP on normalised inputs, minus its value at the rest state with ``gate_rest``."""
        B, N, _ = x.shape
        e = (
            torch.zeros(B, N, 1, dtype=x.dtype, device=x.device)
            if ell is None
            else (ell / self.ell_scale)[..., None]
        )
        uu = (u_inh / self.u_max)[:, None, :].expand(B, N, self.n_inh)
        inp = torch.cat([x / self.x_scale, e, uu], -1)
        if not self.gate_rest:
            return self.net(inp)
        xr = (self.x_rest / self.x_scale).expand(B, N, -1)
        both = self.net(torch.stack([inp, torch.cat([xr, e, uu], -1)]))  # one MLP call for both
        return both[0] - both[1]

    def correction(
        self, x: Tensor, ell: Tensor | None, u_inh: Tensor, th: dict | None = None, inh: dict | None = None
    ) -> Tensor:
        """The learned rate (B, N, S) in species units per minute (zero without the MLP); the
        modulation form needs the parameters ``th`` and controls ``inh`` of the fluxes."""
        if self.net is None:
            return torch.zeros_like(x)
        g = self._net(x, ell, u_inh)
        if self.form == "modulation":
            v = self.pathway.fluxes(x, ell, th, inh)
            m1 = torch.expm1(self.mod_cap * torch.tanh(g))
            return (v * m1) @ self.pathway.nu(x.dtype, x.device)
        return self.cap * self.x_scale / self.dt * torch.tanh(g)

    def rate(self, x: Tensor, ell: Tensor | None, th: dict, inh: dict, u_inh: Tensor) -> Tensor:
        """dx/dt (B, N, S) in species units per minute."""
        xp = x.clamp_min(0)
        if self.net is not None and self.form == "modulation":  # one flux evaluation: (v m) @ nu
            v = self.pathway.fluxes(xp, ell, th, inh)
            m = torch.exp(self.mod_cap * torch.tanh(self._net(xp, ell, u_inh)))
            return (v * m) @ self.pathway.nu(x.dtype, x.device)
        return self.pathway.drift(xp, ell, th, inh) + self.correction(xp, ell, u_inh, th, inh)

    def solve(
        self,
        x: Tensor,
        ell0: Tensor | None,
        ell1: Tensor | None,
        th: dict,
        inh: dict,
        u_inh: Tensor,
        method: str = "dopri5",
        adjoint: bool = False,
        substeps: int = 8,
        rtol: float = 1e-3,
        atol: float = 1e-4,
        frac: float | Tensor = 1.0,
    ) -> Tensor:
        """Integrate over one control interval (or the fraction ``frac`` of it, a float or per row
        (B, 1, 1), with the membrane ligand going linearly from ``ell0`` to ``ell1`` over that
        part); returns x clipped at zero.

        Each call binds its inputs in its own :class:`_BoundRHS`, so adjoint backward passes, which
        re-evaluate the right-hand side later, see the inputs of *their* step.
        """
        span = torch.tensor([0.0, 1.0], dtype=x.dtype, device=x.device)
        opts = {"step_size": 1.0 / substeps} if method in ("rk4", "euler", "midpoint") else {}
        if adjoint and torch.is_grad_enabled():  # (without gradients the adjoint is plain odeint)
            spec = _AdjointSpec(self, list(th), list(inh), frac, method, rtol, atol, opts, span)
            out = _AdjointSolve.apply(
                spec, x, ell0, ell1, u_inh, *th.values(), *inh.values(), *self.parameters()
            )
            return out.clamp_min(0)
        rhs = _BoundRHS(self, ell0, ell1, th, inh, u_inh, frac)
        if method == "rk4":  # torchdiffeq's fixed-grid RK4 (3/8 rule), without its per-call overhead
            return _rk4(rhs, x, span, 1.0 / substeps).clamp_min(0)
        out = odeint(rhs, x, span, method=method, rtol=rtol, atol=atol, options=opts)
        return out[-1].clamp_min(0)


def _rk4(func, y: Tensor, span: Tensor, step_size: float) -> Tensor:
    """``odeint(func, y, span, method="rk4", options={"step_size": h})[-1]``, step for step: the
    same time grid (torchdiffeq's constructor) and the same 3/8-rule stages, in a plain loop (on a
    CPU torchdiffeq's wrappers cost about as much as the MAPK right-hand side itself)."""
    n = torch.ceil((span[-1] - span[0]) / step_size + 1).item()
    grid = torch.arange(0, n, dtype=span.dtype, device=span.device) * step_size + span[0]
    grid[-1] = span[-1]
    third = 1.0 / 3.0
    for t0, t1 in zip(grid[:-1], grid[1:], strict=True):
        dt = t1 - t0
        k1 = func(t0, y)
        k2 = func(t0 + dt * third, y + dt * k1 * third)
        k3 = func(t0 + dt * (2 * third), y + dt * (k2 - k1 * third))
        k4 = func(t1, y + dt * (k1 - k2 + k3))
        y = y + (k1 + 3 * (k2 + k3) + k4) * dt * 0.125
    return y


class _AdjointSpec:
    """The non-tensor settings of one adjoint solve: dict keys, method, tolerances, span."""

    def __init__(self, dyn, th_keys, inh_keys, frac, method, rtol, atol, opts, span) -> None:
        self.dyn, self.th_keys, self.inh_keys, self.frac = dyn, th_keys, inh_keys, frac
        self.method, self.rtol, self.atol, self.opts, self.span = method, rtol, atol, opts, span


class _AdjointSolve(torch.autograd.Function):
    """One control interval by torchdiffeq's adjoint, with every input it closes over cut loose.

    torchdiffeq returns gradients for the tensors handed to it as ``adjoint_params``, by
    differentiating the right-hand side with respect to them. When one of them depends on
    another (the membrane ligand ``ell1`` is computed from theta and the controls, which are
    also inputs), that derivative is a total one and the shared path is counted twice: the field
    parameters' gradients came out exactly doubled; and leaving the controls out made dZ/du
    zero. Here the right-hand side is bound to detached leaf copies of every input (parameter
    dict and inhibitor views included), so each path is counted once, and ``backward`` returns
    the leaves' gradients as the inputs' (so ``autograd.grad`` and ``backward`` both work).
    Inputs: ``spec, x, ell0, ell1, u_inh, *theta values, *inhibitor values, *network params``.
    """

    @staticmethod
    def forward(ctx, spec: _AdjointSpec, *inputs):  # type: ignore[override]
        n_th, n_inh = len(spec.th_keys), len(spec.inh_keys)
        k = 4 + n_th + n_inh
        tensors, params = inputs[:k], inputs[k:]
        leaves = [None if t is None else t.detach().requires_grad_(t.requires_grad) for t in tensors]
        xl, e0, e1, ui = leaves[:4]
        th = dict(zip(spec.th_keys, leaves[4 : 4 + n_th], strict=True))
        inh = dict(zip(spec.inh_keys, leaves[4 + n_th :], strict=True))
        rhs = _BoundRHS(spec.dyn, e0, e1, th, inh, ui, spec.frac)
        adj = tuple(t for t in (*params, *leaves[1:]) if t is not None and t.requires_grad)
        with torch.enable_grad():
            out = odeint_adjoint(
                rhs,
                xl,
                spec.span,
                method=spec.method,
                rtol=spec.rtol,
                atol=spec.atol,
                options=spec.opts,
                adjoint_params=adj,
                # fixed step: the backward solve takes the forward's steps (given explicitly: the
                # adjoint options replace, not extend, the forward ones); adaptive: step-size
                # control on the state and its adjoint only, not on the parameter-gradient
                # integrals (Kidger et al. 2021), far fewer backward steps at the same accuracy
                adjoint_options=dict(spec.opts) if spec.opts else {"norm": "seminorm"},
            )[-1]
        ctx.out, ctx.wrt = out, [t for t in (*leaves, *params) if t is not None and t.requires_grad]
        ctx.mask = [t is not None and t.requires_grad for t in (*leaves, *params)]
        return out.detach()

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        grads = iter(torch.autograd.grad(ctx.out, ctx.wrt, grad_out, allow_unused=True) if ctx.wrt else ())
        return (None, *(next(grads) if m else None for m in ctx.mask))


class _BoundRHS(nn.Module):
    """The right-hand side of one step with its inputs bound, in control-interval time tau."""

    def __init__(self, dyn: CellDynamics, ell0, ell1, th, inh, u_inh, frac: float | Tensor = 1.0) -> None:
        super().__init__()
        self.dyn, self.frac = dyn, frac if isinstance(frac, Tensor) else float(frac)
        self.ell0, self.ell1, self.th, self.inh, self.u_inh = ell0, ell1, th, inh, u_inh

    def forward(self, tau: Tensor, x: Tensor) -> Tensor:
        ell = None if self.ell0 is None else self.ell0 + tau * (self.ell1 - self.ell0)
        return (self.dyn.dt * self.frac) * self.dyn.rate(x, ell, self.th, self.inh, self.u_inh)
