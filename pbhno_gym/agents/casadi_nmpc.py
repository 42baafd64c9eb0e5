"""Nonlinear MPC with CasADi/IPOPT on the true ODE model: the control engineer's reference.

For ODE-only environments (``pbhno/MAPK-v0``). The prediction model is the pathway itself: its
``rate_expressions`` are plain arithmetic, so they evaluate on CasADi ``SX`` symbols, and the
drift is ``v @ nu`` as in the simulator; it is integrated with RK4 (``substeps`` per control
interval) at the environment's nominal parameters (the true ones unless the env randomises
them). Each decision solves, by single shooting with exact derivatives,

    min_u  sum_{k=1..T} Q mean_i (p_i(x_k) - p*_{k,i})^2 + R mean_j (u_{k-1,j} / u_max_j)^2
    s.t.   u_low <= u <= u_high,   sum_k u_{k,j} dt <= dose left_j   (budgeted channels),

the environment's own stage cost over the target preview in the observation. The agent reads
observations only: its state estimate is the model driven by the doses it applied, pulled
towards every fresh measurement with gain ``observer_gain`` (a constant-gain observer). The
IPOPT problem is built once in ``train`` (0 environment samples) and warm-started with the
shifted previous plan.
"""

from __future__ import annotations

import time

import casadi as ca
import numpy as np
import torch

from ..envs.factory import build
from ..envs.spec import EnvSpec, load_spec
from .base import Agent, TrainReport
from .config import load_agent_config

__all__ = ["CasadiNMPCAgent", "casadi_drift"]


def casadi_drift(pathway, theta: dict[str, float]) -> ca.Function:
    """``f(x (S,), u (n_u,)) -> dx/dt (S,)`` of one cell of an ODE-only pathway, from its
    ``rate_expressions`` and stoichiometry (no equation is re-typed)."""
    if pathway.has_field:
        raise ValueError(
            f"casadi_drift: pathway {pathway.name!r} has a ligand field (ODE-only pathways only)"
        )
    S, n_u = len(pathway.species), len(pathway.inhibitors)
    x = ca.SX.sym("x", S)
    u = ca.SX.sym("u", n_u)
    xd = {s: x[i] for i, s in enumerate(pathway.species)}
    ud = {c.name: u[j] for j, c in enumerate(pathway.inhibitors)}
    rates = pathway.rate_expressions(xd, None, theta, ud)
    nu = pathway.nu(torch.float64, "cpu").numpy()
    dx = [sum(rates[r] * float(nu[r, s]) for r in range(len(rates)) if nu[r, s] != 0) for s in range(S)]
    return ca.Function("drift", [x, u], [ca.vertcat(*[ca.SX(0) if isinstance(d, int) else d for d in dx])])


class CasadiNMPCAgent(Agent):
    """Nonlinear MPC (CasADi + IPOPT) through the true ODE model; settings in ``agents/casadi_nmpc.toml``."""

    name = "casadi_nmpc"
    uses_true_model = True

    def __init__(self, **overrides) -> None:
        self.overrides = overrides
        self.solver = None
        self.n_solves = 0
        self.n_failures = 0

    def supports(self, spec: EnvSpec) -> str | None:
        if spec.layout.kind != "none":
            return "CasADi NMPC needs an ODE-only environment (no ligand field)"
        return None

    # ------------------------------------------------------------------ problem construction
    def train(self, env, budget, seed, run_dir, device="cpu", evaluate=None, progress=True) -> TrainReport:
        t0 = time.perf_counter()
        spec = env if isinstance(env, EnvSpec) else load_spec(env)
        why = self.supports(spec)
        if why:
            raise ValueError(f"{self.name} cannot control {spec.id}: {why}")
        cfg = load_agent_config("casadi_nmpc", spec, self.overrides)
        self.cfg = cfg
        T, K = int(cfg["horizon"]), int(cfg["substeps"])
        if T < 1 or K < 1:
            raise ValueError(f"agents/casadi_nmpc.toml: horizon and substeps must be >= 1, got {T}, {K}")
        parts = build(spec, dtype=torch.float64)
        sim, pw, om = parts.sim, parts.pathway, parts.obs_model
        lt = parts.prior.log_values
        theta = {k: float(v) for k, v in sim.params.unpack(lt).items()}
        self.S, self.N, self.n_u = len(pw.species), sim.n_cells, sim.n_controls
        self.T, self.dt = T, float(spec.control_interval)
        self.low = sim.control_low.numpy()
        self.high = sim.control_high.numpy()
        self.budget = parts.budget.numpy()
        self.x_init = sim.initial_state(lt, 1).x[0].numpy().T.copy()  # (S, N)
        self.upper = pw.upper_bound
        self.layout = om.layout
        self.preview = spec.target.preview
        # measured channels: channel c = cell c // n_obs, species species_idx[c % n_obs]
        sp = om.species_idx.numpy()
        self.ch_species = np.tile(sp, self.N)
        self.ch_cell = np.repeat(np.arange(self.N), len(sp))
        self.sp_low, self.sp_scale = om.species_low.numpy(), om.species_scale.numpy()
        self.gain = float(cfg["observer_gain"])
        # one control step of the model for N independent cells, RK4
        f = casadi_drift(pw, theta).map(self.N)
        X, U = ca.SX.sym("X", self.S, self.N), ca.SX.sym("U", self.n_u)
        Ur = ca.repmat(U, 1, self.N)
        h, Xk = self.dt / K, X
        for _ in range(K):
            k1 = f(Xk, Ur)
            k2 = f(Xk + h / 2 * k1, Ur)
            k3 = f(Xk + h / 2 * k2, Ur)
            k4 = f(Xk + h * k3, Ur)
            Xk = Xk + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        self.F = ca.Function("F", [X, U], [Xk])
        # the NLP, multiple shooting: z = [w (T n_u) in [0, 1], X_1..X_T (S N each)],
        # u_k = low + w_k (high - low), equality constraints X_{k+1} = F(X_k, u_k)
        pi = pw.phenotype_index()[0]
        plow, pscale = float(self.sp_low[pi]), float(self.sp_scale[pi])
        SN, nw = self.S * self.N, T * self.n_u
        w = ca.SX.sym("w", nw)
        Xs = ca.SX.sym("X", SN, T)
        x0 = ca.SX.sym("x0", self.S, self.N)
        ref = ca.SX.sym("ref", self.N, T)
        rw = spec.reward
        span = ca.DM(self.high - self.low)
        umax = ca.DM(np.maximum(self.high, 1e-12))
        J, Xk, used, dyn = 0, x0, 0, []
        for k in range(T):
            uk = ca.DM(self.low) + w[k * self.n_u : (k + 1) * self.n_u] * span
            Xn = ca.reshape(Xs[:, k], self.S, self.N)
            dyn.append(ca.vec(self.F(Xk, uk) - Xn))
            p = (Xn[pi, :].T - plow) / pscale
            J = J + rw.Q * ca.sumsqr(p - ref[:, k]) / self.N + rw.R * ca.sumsqr(uk / umax) / self.n_u
            used = used + uk * self.dt
            Xk = Xn
        self.budgeted = np.flatnonzero(np.isfinite(self.budget))
        g = ca.vertcat(*dyn, *[used[j] for j in self.budgeted])
        self.n_dyn = T * SN
        opts = {
            "print_time": False,
            "ipopt.print_level": 0,
            "ipopt.sb": "yes",
            "ipopt.max_iter": int(cfg["max_iter"]),
            "ipopt.tol": float(cfg["tol"]),
        }
        nlp = {"x": ca.vertcat(w, ca.vec(Xs)), "p": ca.vertcat(ca.vec(x0), ca.vec(ref)), "f": J, "g": g}
        self.solver = ca.nlpsol("nmpc", "ipopt", nlp, opts)
        self.lbx = np.concatenate([np.zeros(nw), np.full(T * SN, -np.inf)])
        self.ubx = np.concatenate([np.ones(nw), np.full(T * SN, np.inf)])
        return TrainReport(0, time.perf_counter() - t0, device="cpu (IPOPT)", extra={"settings": dict(cfg)})

    # ------------------------------------------------------------------ acting
    def _observe(self, x: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Pull the measured species of the estimate ``x`` (S, N) towards fresh measurements."""
        vals, fresh = obs[self.layout["values"]], obs[self.layout["fresh"]] > 0.5
        s, c = self.ch_species[fresh], self.ch_cell[fresh]
        pred = (x[s, c] - self.sp_low[s]) / self.sp_scale[s]
        x = x.copy()
        x[s, c] += self.gain * (vals[fresh] - pred) * self.sp_scale[s]
        x = np.maximum(x, 0.0)
        return np.minimum(x, self.upper) if self.upper is not None else x

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if self.solver is None:
            raise RuntimeError(f"{self.name}: call train() before predict()")
        obs = np.atleast_2d(np.asarray(obs, dtype=np.float64))
        B = obs.shape[0]
        starts = (
            np.ones(B, bool) if episode_start is None or state is None else np.asarray(episode_start, bool)
        )
        if state is None:
            state = {
                "x": np.repeat(self.x_init[None], B, 0),
                "u": np.zeros((B, self.n_u)),
                "z": np.zeros((B, len(self.lbx))),
            }
        xs, us, zs = state["x"].copy(), state["u"].copy(), state["z"].copy()
        actions = np.zeros((B, self.n_u), dtype=np.float32)
        P = self.preview
        for b in range(B):
            o = obs[b]
            if starts[b]:
                x = self.x_init.copy()
            else:
                x = np.asarray(self.F(xs[b], us[b])).reshape(self.S, self.N)
            x = self._observe(x, o)
            if starts[b]:  # cold start: no dose, the state held
                zs[b] = np.concatenate([np.zeros(self.T * self.n_u), np.tile(x.ravel(order="F"), self.T)])
            prev = o[self.layout["target"]].reshape(P, self.N)
            ref = prev[np.minimum(np.arange(1, self.T + 1), P - 1)].T  # (N, T): targets at t+1..t+T
            left = o[self.layout["dose_left"]] * np.where(np.isfinite(self.budget), self.budget, 0.0)
            sol = self.solver(
                x0=zs[b],
                p=np.concatenate([x.ravel(order="F"), ref.ravel(order="F")]),
                lbx=self.lbx,
                ubx=self.ubx,
                lbg=np.concatenate([np.zeros(self.n_dyn), np.full(len(self.budgeted), -np.inf)]),
                ubg=np.concatenate([np.zeros(self.n_dyn), left[self.budgeted]]),
            )
            self.n_solves += 1
            if not self.solver.stats()["success"]:
                self.n_failures += 1
            z = np.asarray(sol["x"]).ravel()
            nw, SN = self.T * self.n_u, self.S * self.N
            wb = np.clip(z[:nw], 0.0, 1.0)
            u = self.low + wb[: self.n_u] * (self.high - self.low)
            cap = np.where(np.isfinite(self.budget), left / self.dt, np.inf)
            u = np.minimum(u, np.maximum(cap, self.low))
            actions[b] = u
            xs[b], us[b] = x, u
            Xp = z[nw:]  # warm start: the plan shifted by one step
            zs[b] = np.concatenate([wb[self.n_u :], wb[-self.n_u :], Xp[SN:], Xp[-SN:]])
        return actions, {"x": xs, "u": us, "z": zs}
