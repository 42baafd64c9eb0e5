"""The pathway interface: intracellular kinetics as a reaction network plus membrane coupling.

A pathway is written once, as reaction fluxes ``v_r(x, ell; theta, u)`` and a stoichiometry
matrix ``nu`` (R x S): the drift is ``f = v @ nu`` (eq. 3). The same flux function, written with
plain arithmetic only, serves torch (simulator, surrogate residuals, MPC) and SymPy (structural
identifiability): :meth:`Pathway.rate_expressions` is the dictionary-in, list-out core.
In torch the simulator calls it once per stage (:meth:`Pathway.kinetics`): on stacked copies of
the state, with production and destruction assembled by one matmul, so a sub-step costs a few
dozen tensor ops whatever the number of reactions and species.

Coupling to the ligand field (eq. 1), per cell i and membrane pixel x in Gamma_i:

    sink(x)   = uptake_i * L(x)      (binding, Phi linear in L: mass action)
    source(x) = emission_i           (ligand shed or presented by the cell)

plus the pathway's field parameters (diffusion D, decay lambda) and the ligand-pulse controls,
which deliver ligand at a rate u_k (nM/min) over the layout's source region k.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..params import ControlSpec, ParamSet
from ..tracing import is_tracing

__all__ = ["Pathway", "hill"]


def hill(x: Any, k: Any, n: int) -> Any:
    """Activating Hill function x^n / (k^n + x^n); integer n keeps it defined for x slightly < 0."""
    xn = x**n
    return xn / (k**n + xn)


class Pathway(ABC):
    """Abstract pathway. Subclasses set the class attributes and implement the rate core."""

    name: str
    species: tuple[str, ...]
    reactions: tuple[str, ...]
    #: list of (reaction, {species: coefficient}) pairs defining nu
    stoich_table: Sequence[tuple[str, Mapping[str, int]]]
    params: ParamSet
    #: pathway-specific non-ligand controls (inhibitors, stimuli)
    inhibitors: tuple[ControlSpec, ...]
    #: bounds of each ligand-pulse channel (one channel per source region), None if no field
    ligand_pulse: ControlSpec | None
    has_field: bool
    #: species forming the observed phenotype (reporters)
    phenotype: tuple[str, ...]
    #: system size Omega (molecules per concentration unit) for the chemical Langevin equation
    volume: float = 100.0
    #: species that are fractions are kept <= upper_bound by the stochastic variant
    upper_bound: float | None = None

    def __init__(self) -> None:
        s_idx = {s: i for i, s in enumerate(self.species)}
        nu = torch.zeros(len(self.stoich_table), len(self.species), dtype=torch.float64)
        for r, (_, coeffs) in enumerate(self.stoich_table):
            for s, c in coeffs.items():
                nu[r, s_idx[s]] = c
        self.reactions = tuple(r for r, _ in self.stoich_table)
        self._nu64 = nu
        self._nu_cache: dict = {}
        self.species_index = s_idx
        self._aug, self._w64 = self._table_of(nu)
        #: the table's nonzero rows as (reaction, state copy, row of ``w``), read eagerly here so
        #: that the compiled branch of :meth:`kinetics` unrolls them without a host read
        C1 = self._aug.shape[0]
        nonzero = (self._w64 != 0).any(1).tolist()
        self._table_rows = tuple((i // C1, i % C1, i) for i, nz in enumerate(nonzero) if nz)

    @staticmethod
    def _table_of(nu: Tensor) -> tuple[Tensor, Tensor]:
        """The index tensors of :meth:`kinetics` (float64 / bool, CPU), from the stoichiometry.

        ``aug`` (1 + C, 1, 1, S) bool: copy 0 of the state is untouched, copy 1 + j has its
        j-th consumed species set to one. ``w`` (R (1 + C), 2 S): row (r, c) maps flux r of copy c
        to production (columns :S, from copy 0, ``max(nu, 0)``) and destruction coefficients
        (columns S:, from the copy of the consumed species s, ``max(-nu_rs, 0)``).
        """
        R, S = nu.shape
        consumed = [i for i in range(S) if bool((nu[:, i] < 0).any())]
        C = len(consumed)
        aug = torch.zeros(1 + C, 1, 1, S, dtype=torch.bool)
        w = torch.zeros(R, 1 + C, 2 * S, dtype=torch.float64)
        w[:, 0, :S] = nu.clamp_min(0)
        for j, i in enumerate(consumed):
            aug[1 + j, ..., i] = True
            w[:, 1 + j, S + i] = (-nu[:, i]).clamp_min(0)
        return aug, w.reshape(R * (1 + C), 2 * S)

    # ------------------------------------------------------------------ rate core
    @abstractmethod
    def rate_expressions(
        self, x: Mapping[str, Any], ell: Any, th: Mapping[str, Any], u: Mapping[str, Any]
    ) -> list[Any]:
        """Reaction fluxes from species ``x``, membrane ligand ``ell``, parameters, inhibitors.

        Works on torch tensors (broadcasting (B, N) species with (B, 1) parameters) and on
        SymPy symbols alike: plain arithmetic only.
        """

    def uptake_expression(self, x: Mapping[str, Any], th: Mapping[str, Any], u: Mapping[str, Any]) -> Any:
        """Field sink per unit ligand on Gamma_i (1/min). Pathways with a field override."""
        return 0.0

    def emission_expression(self, x: Mapping[str, Any], th: Mapping[str, Any], u: Mapping[str, Any]) -> Any:
        """Ligand released onto Gamma_i (nM/min). Zero unless the cells make the ligand."""
        return 0.0

    def field_coefficients(self, th: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(D um^2/min, lambda 1/min) of the ligand PDE."""
        raise NotImplementedError(f"{self.name} has no ligand field")

    def basal_source(self, th: Mapping[str, Tensor]) -> Tensor | None:
        """Constant source rate (nM/min) on source region 0, or None."""
        return None

    @abstractmethod
    def initial_state(self, th: Mapping[str, Tensor], n_cells: int) -> Tensor:
        """(B, N, S) resting state of unstimulated cells (float64 or theta's dtype)."""

    # ------------------------------------------------------------------ torch helpers
    def nu(self, dtype: torch.dtype, device) -> Tensor:
        key = (dtype, str(device))
        if key not in self._nu_cache:
            self._nu_cache[key] = self._nu64.to(dtype=dtype, device=device)
        return self._nu_cache[key]

    def _kinetics_tables(self, dtype: torch.dtype, device) -> tuple[Tensor, Tensor]:
        """:meth:`_table_of`'s ``aug`` and ``w`` on ``device`` (``w`` in ``dtype``), cached."""
        key = ("kinetics", dtype, str(device))
        if key not in self._nu_cache:
            self._nu_cache[key] = (self._aug.to(device), self._w64.to(dtype=dtype, device=device))
        return self._nu_cache[key]

    def _symbols(self) -> tuple[dict, dict, dict]:
        """SymPy symbols for the species, parameters and inhibitor doses (the rate and membrane laws
        are plain arithmetic, so they evaluate on symbols too)."""
        import sympy as sp

        xs = {s: sp.Symbol(f"x_{s}") for s in self.species}
        th = {n: sp.Symbol(f"theta_{n}", positive=True) for n in self.params.names}
        u = {c.name: sp.Symbol(f"u_{c.name}") for c in self.inhibitors}
        return xs, th, u

    def rate_dependence(self) -> Tensor:
        """(R, S) bool: which species each rate law reads, found symbolically, so a learned
        regulation of reaction r can be restricted to the species its rate law does not already
        contain."""
        key = ("dependence", self.name)  # keyed by name: with_mechanisms' worlds share the cache dict
        if key not in self._nu_cache:
            import sympy as sp

            xs, th, u = self._symbols()
            rates = self.rate_expressions(xs, sp.Symbol("ell"), th, u)
            free = [sp.sympify(r).free_symbols for r in rates]
            dep = torch.tensor([[xs[s] in f for s in self.species] for f in free], dtype=torch.bool)
            self._nu_cache[key] = dep
        return self._nu_cache[key]

    def uptake_dependence(self) -> Tensor:
        """(S,) bool: which species the membrane uptake law reads, found symbolically as in
        :meth:`rate_dependence` (all False without a field): a learned uptake factor gated at zero
        regulators keeps these and zeroes the others."""
        key = ("uptake_dependence", self.name)
        if key not in self._nu_cache:
            import sympy as sp

            xs, th, u = self._symbols()
            free = sp.sympify(self.uptake_expression(xs, th, u)).free_symbols
            self._nu_cache[key] = torch.tensor([xs[s] in free for s in self.species], dtype=torch.bool)
        return self._nu_cache[key]

    def split(self, x: Tensor) -> dict[str, Tensor]:
        """(..., S) -> {species: (...)}."""
        return dict(zip(self.species, x.unbind(-1), strict=True))

    def inhibitor_dict(self, u_inh: Tensor | None, batch: int, like: Tensor) -> dict[str, Tensor]:
        """(B, n_inh) -> {control name: (B, 1)}; zeros when no input is given."""
        if u_inh is None:
            u_inh = like.new_zeros(batch, len(self.inhibitors))
        return dict(zip((c.name for c in self.inhibitors), u_inh.split(1, dim=1), strict=False))

    @staticmethod
    def _stack_rates(rates: list[Any], like: Tensor) -> Tensor:
        """(R, *like.shape) stack of the fluxes, each broadcast to ``like`` (numbers included)."""
        ts = [r if torch.is_tensor(r) else like.new_tensor(float(r)) for r in rates]
        return torch.stack(torch.broadcast_tensors(like, *ts)[1:])

    def fluxes(
        self, x: Tensor, ell: Tensor | None, th: Mapping[str, Tensor], u: Mapping[str, Tensor]
    ) -> Tensor:
        """(B, N, R) reaction fluxes."""
        xs = self.split(x)
        v = self._stack_rates(self.rate_expressions(xs, ell, th, u), xs[self.species[0]])
        return v.movedim(0, -1)

    def kinetics(
        self, x: Tensor, ell: Tensor | None, th: Mapping[str, Tensor], u: Mapping[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """Production (B, N, S) and destruction coefficients (B, N, S) in a few batched ops.

        The rate laws are evaluated once, on 1 + C copies of the state stacked in front (copy 0
        as given, copy 1 + j with its j-th consumed species set to one, see
        :meth:`destruction_coefficients`), and one matmul with a precomputed stoichiometry table
        assembles both outputs: no Python loop over species or reactions, no host sync. Under
        ``torch.compile`` the table's nonzero rows are unrolled into pointwise terms instead (the
        same sums: one fused kernel, where a matmul would be an external call).
        """
        aug, w = self._kinetics_tables(x.dtype, x.device)
        xa = torch.where(aug, 1.0, x)  # (1 + C, B, N, S)
        xs = self.split(xa)
        rates = self.rate_expressions(xs, ell, th, u)
        if is_tracing():
            # compiled: the table's nonzero rows unrolled into pointwise terms (flux x row), which
            # inductor fuses with the rate laws into one loop writing (B, N, 2 S) directly; a stack
            # and a matmul there were a buffer and an external call per stage, per-column sums a
            # stack of aliases (MAPK-v0: 33 kernel calls, ~140 buffers per step; docs/benchmarks.md)
            out = torch.zeros(*x.shape[:-1], w.shape[1], dtype=x.dtype, device=x.device)
            for r, k, i in self._table_rows:
                v = rates[r]
                v = torch.broadcast_to(v, xa.shape[:-1])[k, ..., None] if torch.is_tensor(v) else v
                out = out + v * w[i]
        else:
            v = self._stack_rates(rates, xs[self.species[0]])
            out = (v.reshape(w.shape[0], -1).t() @ w).reshape(*x.shape[:-1], -1)  # (B, N, 2 S)
        prod, dest = out.split(x.shape[-1], dim=-1)
        return prod, dest

    def drift(
        self, x: Tensor, ell: Tensor | None, th: Mapping[str, Tensor], u: Mapping[str, Tensor]
    ) -> Tensor:
        """(B, N, S) right-hand side dx/dt = v @ nu."""
        return self.fluxes(x, ell, th, u) @ self.nu(x.dtype, x.device)

    def uptake(self, x: Tensor, th: Mapping[str, Tensor], u: Mapping[str, Tensor]) -> Tensor:
        """(B, N) field sink coefficient per cell."""
        v = self.uptake_expression(self.split(x), th, u)
        return v.expand(x.shape[:-1]) if torch.is_tensor(v) else x.new_full(x.shape[:-1], float(v))

    def emission(self, x: Tensor, th: Mapping[str, Tensor], u: Mapping[str, Tensor]) -> Tensor:
        """(B, N) ligand release per membrane pixel."""
        v = self.emission_expression(self.split(x), th, u)
        return v.expand(x.shape[:-1]) if torch.is_tensor(v) else x.new_full(x.shape[:-1], float(v))

    def membrane_terms(
        self, x: Tensor, th: Mapping[str, Tensor], u: Mapping[str, Tensor]
    ) -> tuple[Tensor, Tensor | None]:
        """(B, N) field sink coefficient and (B, N) ligand release per cell from one split of ``x``;
        the release is None where the pathway's cells emit nothing (a constant zero)."""
        xs, shape = self.split(x), x.shape[:-1]
        up = self.uptake_expression(xs, th, u)
        em = self.emission_expression(xs, th, u)
        up = up.expand(shape) if torch.is_tensor(up) else x.new_full(shape, float(up))
        if not torch.is_tensor(em):
            em = None if float(em) == 0.0 else x.new_full(shape, float(em))
        return up, None if em is None else em.expand(shape)

    def destruction_coefficients(
        self, x: Tensor, ell: Tensor | None, th: Mapping[str, Tensor], u: Mapping[str, Tensor]
    ) -> Tensor:
        """(B, N, S) first-order loss coefficient of every species: the sum over reactions consuming
        species s of |nu_rs| v_r / x_s, computed without dividing by x_s (the consuming fluxes are
        evaluated at x_s = 1). Exact because every consuming flux is linear in the species it
        consumes (mass action; a test checks this for each pathway), and well conditioned at
        x_s = 0, where a ratio's derivative would be infinite.
        """
        return self.kinetics(x, ell, th, u)[1]

    def loss_rates(
        self, x: Tensor, ell: Tensor | None, th: Mapping[str, Tensor], u: Mapping[str, Tensor]
    ) -> Tensor:
        """(B, N, S) first-order loss coefficients (:meth:`destruction_coefficients`); the simulator
        chooses its substep from the fastest of them."""
        return self.destruction_coefficients(x, ell, th, u)

    # ------------------------------------------------------------------ description
    def control_specs(self, source_names: Sequence[str]) -> tuple[ControlSpec, ...]:
        """All control channels: one ligand pulse per source region, then the inhibitors."""
        out = []
        if self.has_field and self.ligand_pulse is not None:
            lp = self.ligand_pulse
            out += [
                ControlSpec(
                    f"ligand_{s}", lp.unit, lp.low, lp.high, f"{lp.description} over source region '{s}'"
                )
                for s in source_names
            ]
        return tuple(out) + tuple(self.inhibitors)

    def phenotype_index(self) -> list[int]:
        return [self.species_index[s] for s in self.phenotype]

    def describe(self) -> dict:
        return dict(
            name=self.name,
            species=self.species,
            reactions=self.reactions,
            params=self.params.table(),
            phenotype=self.phenotype,
            inhibitors=[c.__dict__ for c in self.inhibitors],
        )
