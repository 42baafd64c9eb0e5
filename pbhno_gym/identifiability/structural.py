"""Structural (a priori) local identifiability: the observability-rank test with SymPy.

Parameters become constant states (``theta' = 0``); the extended system ``z = (x, theta)`` is
locally observable from the outputs ``y = h(x, theta)`` iff the observability matrix
``O = d(y, L_f y, L_f^2 y, ...)/dz`` has full rank n (Hermann & Krener 1977). A parameter is
locally structurally identifiable iff its column is independent of the others (every null
vector of ``O`` has a zero in its entry); the null vectors themselves are the directions along
which the outputs do not change, reported in log coordinates (``d log z``) so a product
``k1 * k2`` shows up as ``k1: 1, k2: -1``.

Two engines compute ``O`` at a random point:

* ``"taylor"`` (default): exact Taylor coefficients of the outputs and their gradients in
  Z/PZ (:mod:`.modp`, Sedoglavic 2002). Polynomial cost: a 5-species Notch cell with its 15
  kinetic parameters (20 unknowns) takes about a second.
* ``"lie"``: symbolic Lie derivatives (SymPy), then the rank at the random point. Expressions
  grow ~4.5x per order, so this handles about 8-10 unknowns; used to cross-check the first.

Both are probabilistic only in the choice of the point (and prime): a wrong answer needs an
unlucky point on a proper algebraic subset, probability ~deg/P. Inputs (controls, the membrane
ligand) are generic known functions: random Taylor coefficients (``"taylor"``) or derivative
symbols (``"lie"``).

The models are the pathways' own reaction networks: :func:`pathway_ode` evaluates
``Pathway.rate_expressions`` on SymPy symbols. A field pathway is reduced to one cell with the
membrane ligand ``ell`` as a known input (or a given constant); field parameters (D, lambda,
kappa_b) do not enter a reduced model and are reported as such.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import sympy as sp

from .modp import PRIME, Series, nullspace_mod, rank_mod, rational_reconstruct, to_mod

__all__ = ["ODEModel", "StructuralResult", "observability_test", "pathway_ode"]


@dataclass
class ODEModel:
    """``x' = f(x, theta, u)``, ``y = h(x, theta)`` with SymPy expressions.

    Attributes:
        states: state symbols (their initial values are unknown unless in ``known_initial``).
        params: unknown parameter symbols.
        inputs: known input symbols (generic functions of time).
        rhs: one expression per state.
        outputs: measured expressions.
        known_initial: states whose initial value is known (excluded from the unknowns).
    """

    states: list[sp.Symbol]
    params: list[sp.Symbol]
    rhs: list[sp.Expr]
    outputs: list[sp.Expr]
    inputs: list[sp.Symbol] = field(default_factory=list)
    known_initial: list[sp.Symbol] = field(default_factory=list)
    name: str = "model"

    def __post_init__(self) -> None:
        if len(self.rhs) != len(self.states):
            raise ValueError(f"ODEModel.rhs: {len(self.rhs)} expressions for {len(self.states)} states")
        if not self.outputs:
            raise ValueError("ODEModel.outputs: give at least one measured expression")
        self.rhs = [sp.sympify(e) for e in self.rhs]
        self.outputs = [sp.sympify(e) for e in self.outputs]
        allowed = set(self.states) | set(self.params) | set(self.inputs)
        for e in self.rhs + self.outputs:
            extra = e.free_symbols - allowed
            if extra:
                raise ValueError(
                    f"ODEModel: symbols {sorted(map(str, extra))} are neither states, parameters nor inputs"
                )

    @property
    def unknowns(self) -> list[sp.Symbol]:
        return [s for s in self.states if s not in self.known_initial] + list(self.params)


@dataclass
class StructuralResult:
    """Outcome of :func:`observability_test`.

    Attributes:
        identifiable: parameter name -> locally structurally identifiable.
        observable: state name -> initial value locally observable.
        null_directions: basis of the unobservable directions in log coordinates, each
            {unknown: coefficient} (rational numbers as strings) - empty when full rank.
        rank, n_unknowns, orders: rank of O, its column count, Taylor/Lie orders used.
    """

    model: str
    method: str
    identifiable: dict[str, bool]
    observable: dict[str, bool]
    null_directions: list[dict[str, str]]
    rank: int
    n_unknowns: int
    orders: int
    wall_s: float
    not_in_model: list[str] = field(default_factory=list)

    @property
    def full_rank(self) -> bool:
        return self.rank == self.n_unknowns

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def table(self) -> str:
        """Markdown summary: one row per parameter, then the null directions."""
        lines = [
            f"Structural identifiability of `{self.model}` ({self.method}): rank {self.rank} of "
            f"{self.n_unknowns} unknowns, {self.orders} orders, {self.wall_s:.2f} s.",
            "",
            "| parameter | locally identifiable |",
            "|---|---|",
        ]
        lines += [f"| `{k}` | {'yes' if v else '**no**'} |" for k, v in self.identifiable.items()]
        lines += [f"| `{k}` | not in the reduced model |" for k in self.not_in_model]
        if self.observable:
            unobs = [k for k, v in self.observable.items() if not v]
            lines += ["", f"Unobservable initial states: {', '.join(unobs) if unobs else 'none'}."]
        if self.null_directions:
            lines += [
                "",
                "Null directions (outputs unchanged along each; log: d log z, natural: d z; "
                "~ = coefficient depends on the point):",
            ]
            for d in self.null_directions:
                coords = d.get("coords", "log")
                lines.append(f"- ({coords}) " + ", ".join(f"{k}: {v}" for k, v in d.items() if k != "coords"))
        return "\n".join(lines)


# ---------------------------------------------------------------------------- engines
def _eval_series(expr: sp.Expr, env: dict, K: int, n: int, cache: dict) -> Series:
    """Evaluate a SymPy expression tree on :class:`Series` values."""
    if expr in cache:
        return cache[expr]
    if expr.is_Symbol:
        v = env[expr]
    elif expr.is_Number:
        v = Series.constant(to_mod(sp.Rational(expr) if expr.is_Float else expr), K, n)
    elif expr.is_Add:
        args = [_eval_series(a, env, K, n, cache) for a in expr.args]
        v = args[0]
        for a in args[1:]:
            v = v + a
    elif expr.is_Mul:
        args = [_eval_series(a, env, K, n, cache) for a in expr.args]
        v = args[0]
        for a in args[1:]:
            v = v * a
    elif expr.is_Pow and expr.exp.is_Integer:
        v = _eval_series(expr.base, env, K, n, cache) ** int(expr.exp)
    else:
        raise ValueError(f"observability_test: unsupported expression {expr} (rational functions only)")
    cache[expr] = v
    return v


def _taylor_matrix(model: ODEModel, point: dict, rng: np.random.Generator, K: int) -> np.ndarray:
    """Rows: gradients of the Taylor coefficients y_0..y_K of every output w.r.t. the unknowns."""
    unk = model.unknowns
    n = len(unk)
    col = {s: i for i, s in enumerate(unk)}
    env: dict = {}
    states = []
    for s in model.states:
        a = np.zeros((K + 1, 1 + n), dtype=np.int64)
        a[0, 0] = point[s]
        if s in col:
            a[0, 1 + col[s]] = 1
        env[s] = Series(a)
        states.append(env[s])
    for s in model.params:
        a = np.zeros((K + 1, 1 + n), dtype=np.int64)
        a[0, 0] = point[s]
        a[0, 1 + col[s]] = 1
        env[s] = Series(a)
    for s in model.inputs:  # a generic known input: random Taylor coefficients, no sensitivity
        a = np.zeros((K + 1, 1 + n), dtype=np.int64)
        a[:, 0] = rng.integers(1, PRIME, K + 1)
        env[s] = Series(a)
    # Picard: after evaluating f with states exact to order k, coefficient k+1 of x is f_k/(k+1)
    for k in range(K):
        cache: dict = {}
        f = [_eval_series(e, env, K, n, cache) for e in model.rhs]
        for s, fs in zip(model.states, f, strict=True):
            env[s].a[k + 1] = fs.integrate_coefficient(k)
    cache = {}
    rows = [_eval_series(h, env, K, n, cache).a[:, 1:] for h in model.outputs]
    return np.concatenate(rows, 0)


def _lie_matrix(model: ODEModel, point: dict, rng: np.random.Generator, K: int) -> np.ndarray:
    """Symbolic Lie derivatives of the outputs, Jacobian evaluated at the point (mod P)."""
    unk = model.unknowns
    z = list(model.states) + list(model.params)
    f = list(model.rhs) + [sp.Integer(0)] * len(model.params)
    derivs = {u: [u] + [sp.Symbol(f"{u}__d{m}") for m in range(1, K + 2)] for u in model.inputs}
    subs = {s: sp.Rational(point[s]) for s in z}
    for ds in derivs.values():
        for d in ds:
            subs[d] = sp.Rational(int(rng.integers(1, 10**6)))
    rows = []
    L = list(model.outputs)
    for _ in range(K + 1):
        for Lj in L:
            rows.append([to_mod(sp.diff(Lj, s).subs(subs)) for s in unk])
        nxt = []
        for Lj in L:
            d = sum((sp.diff(Lj, zi) * fi for zi, fi in zip(z, f, strict=True)), sp.Integer(0))
            for ds in derivs.values():
                d += sum((sp.diff(Lj, ds[m]) * ds[m + 1] for m in range(K + 1)), sp.Integer(0))
            nxt.append(d)
        L = nxt
    return np.array(rows, dtype=np.int64)


def _describe(v1: np.ndarray, v2: np.ndarray, unk: list, coords: str) -> dict[str, str]:
    """A null vector as {unknown: coefficient}: entries equal at both points (constants) as
    small rationals, point-dependent ones as "~"; normalised so the last non-zero entry is 1."""
    out = {"coords": coords}
    nz1, nz2 = np.nonzero(v1)[0], np.nonzero(v2)[0]
    if len(nz1) == 0:
        return out
    v1 = (v1 * pow(int(v1[nz1[-1]]), PRIME - 2, PRIME)) % PRIME
    if len(nz2):
        v2 = (v2 * pow(int(v2[nz2[-1]]), PRIME - 2, PRIME)) % PRIME
    for j in nz1:
        q = rational_reconstruct(int(v1[j]))
        const = v1[j] == v2[j] and q is not None and abs(q.numerator) <= 10**4 and q.denominator <= 10**4
        out[str(unk[j])] = str(q) if const else "~"
    return out


def observability_test(
    model: ODEModel,
    method: str = "taylor",
    seed: int = 0,
    orders: int | None = None,
    not_in_model: Sequence[str] = (),
) -> StructuralResult:
    """Local structural identifiability/observability of ``model`` (see the module docstring).

    Args:
        method: "taylor" (mod-p Taylor series, fast) or "lie" (symbolic Lie derivatives).
        seed: chooses the random point (and input); rerun with another seed to double-check.
        orders: derivative orders (default: the number of unknowns, always sufficient).
    Null directions are reported in log coordinates (``coords: log``) or, when more of their
    coefficients are constant that way, in natural coordinates; "~" marks a coefficient that
    depends on the point (found by comparing the null spaces at two random points).
    """
    if method not in ("taylor", "lie"):
        raise ValueError(f"observability_test: method must be 'taylor' or 'lie', got {method!r}")
    t0 = time.perf_counter()
    unk = model.unknowns
    n = len(unk)
    K = n if orders is None else int(orders)
    z = list(model.states) + list(model.params)

    def at_point(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if method == "taylor":
            point = {s: int(v) for s, v in zip(z, rng.integers(2, PRIME, len(z)), strict=True)}
            O = _taylor_matrix(model, point, rng, K)
        else:
            point = {s: int(v) for s, v in zip(z, rng.integers(2, 10**6, len(z)), strict=True)}
            O = _lie_matrix(model, point, rng, K)
        return O, np.array([to_mod(point[s]) for s in unk], dtype=np.int64)

    O, scale = at_point(np.random.default_rng(seed))
    r = rank_mod(O)
    N = nullspace_mod(O)
    dirs = []
    if len(N):
        O2, scale2 = at_point(np.random.default_rng(seed + 7919))
        cand = [
            (
                "log",
                nullspace_mod((O * scale[None, :]) % PRIME),
                nullspace_mod((O2 * scale2[None, :]) % PRIME),
            ),
            ("natural", N, nullspace_mod(O2)),
        ]
        for i in range(len(N)):
            best = None
            for coords, a, b in cand:
                if a.shape != b.shape:
                    continue
                d = _describe(a[i], b[i], unk, coords)
                n_const = sum(v != "~" for k, v in d.items() if k != "coords")
                if best is None or n_const > best[0]:
                    best = (n_const, d)
            dirs.append(best[1] if best else {"coords": "?", "note": "null space changed between points"})
    zero_in_all = (N == 0).all(0) if len(N) else np.ones(n, bool)
    ident = {str(s): bool(zero_in_all[unk.index(s)]) for s in model.params}
    obs = {str(s): bool(zero_in_all[unk.index(s)]) for s in model.states if s in unk}
    return StructuralResult(
        model.name, method, ident, obs, dirs, int(r), n, K, time.perf_counter() - t0, list(not_in_model)
    )


# ---------------------------------------------------------------------------- pathways
def _rational(v: float) -> sp.Rational:
    return sp.Rational(Fraction(v).limit_denominator(10**9))


def pathway_ode(
    pathway,
    observed: Sequence[str],
    free: Sequence[str] | None = None,
    ell: str | float = "input",
    controls: str | Mapping[str, float] = "input",
    values: Mapping[str, float] | None = None,
    known_initial: Sequence[str] = (),
    exchange: Sequence[Sequence[float]] | None = None,
) -> tuple[ODEModel, list[str]]:
    """A pathway's one-cell kinetics as an :class:`ODEModel` (from ``rate_expressions``).

    Args:
        observed: measured species (outputs ``y = x_s``).
        free: unknown parameters (default: all that appear in the reduced model); the others
            are fixed at ``values`` or the pathway's nominal values.
        ell: "input" (membrane ligand a known input), or a number (a given constant).
        controls: "input" (inhibitor doses are known inputs) or {name: constant dose}.
        known_initial: species whose initial value is known.
        exchange: N x N matrix W for an N-cell model with a quasi-steady linear field: the
            membrane ligand of cell i is ``ell_i = sum_j W_ij emission_j`` (e.g. Notch's shed
            Delta ``sigma D_j``; W from the layout's steady Green's function). Species are then
            named ``<species>_<cell>`` and ``observed`` applies to every cell.
    Returns:
        The model and the names of free parameters that do not appear in it (field parameters).
    """
    params = pathway.params
    free = list(params.names if free is None else free)
    unknown = [n for n in free if n not in params]
    if unknown:
        raise ValueError(f"free parameter(s) {unknown} are not parameters of {pathway.name}")
    bad = [s for s in observed if s not in pathway.species]
    if bad:
        raise ValueError(f"observed species {bad} are not species of {pathway.name} ({pathway.species})")
    vals = {s.name: s.nominal for s in params.specs}
    vals.update(values or {})
    th = {n: (sp.Symbol(n, positive=True) if n in free else _rational(vals[n])) for n in params.names}
    n_cells = 1 if exchange is None else len(exchange)
    cells = [
        {s: sp.Symbol(s if exchange is None else f"{s}_{i}", positive=True) for s in pathway.species}
        for i in range(n_cells)
    ]
    inputs = []
    u = {}
    for c in pathway.inhibitors:
        if controls == "input":
            u[c.name] = sp.Symbol(c.name, nonnegative=True)
            inputs.append(u[c.name])
        else:
            u[c.name] = _rational(float(dict(controls).get(c.name, 0.0)))
    if exchange is not None:
        if not pathway.has_field:
            raise ValueError(f"exchange: {pathway.name} has no ligand field")
        emis = [sp.sympify(pathway.emission_expression(x, th, u)) for x in cells]
        ells = [
            sum((_rational(float(w)) * e for w, e in zip(row, emis, strict=True)), sp.Integer(0))
            for row in exchange
        ]
    elif ell == "input":
        ells = [sp.Symbol("ell", positive=True)]
        inputs.insert(0, ells[0])
    else:
        ells = [_rational(float(ell))]
    nu = pathway._nu64.numpy()
    states, rhs, outputs = [], [], []
    for x, e in zip(cells, ells, strict=True):
        rates = [sp.sympify(r) for r in pathway.rate_expressions(x, e if pathway.has_field else None, th, u)]
        for j, s in enumerate(pathway.species):
            terms = [int(nu[r, j]) * rates[r] for r in range(len(rates)) if nu[r, j] != 0]
            rhs.append(sp.together(sp.expand(sum(terms, sp.Integer(0)))))
            states.append(x[s])
        outputs += [x[s] for s in observed]
    used = set().union(*(e.free_symbols for e in rhs))
    present = [n for n in free if th[n] in used]
    missing = [n for n in free if th[n] not in used]
    model = ODEModel(
        states=states,
        params=[th[n] for n in present],
        rhs=rhs,
        outputs=outputs,
        inputs=[i for i in inputs if i in used],
        known_initial=[x[s] for x in cells for s in known_initial],
        name=f"{pathway.name}[y={','.join(observed)}; "
        + (
            f"{n_cells} cells, quasi-steady exchange"
            if exchange is not None
            else f"ell={'input' if ell == 'input' else ell}"
        )
        + "]",
    )
    return model, missing
