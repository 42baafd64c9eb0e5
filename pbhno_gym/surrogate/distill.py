"""Mechanism distillation: from PB-HNO's learned flux modulation to a named regulation, refitted.

The hybrid's networks say *where* the skeleton is wrong, not in a form a biologist can read, and
their trade-off with the rate constants is a flat direction of the fit: on ``mapk_feedback`` the
hybrid's parameter error stays ~8x the correct model's however long it trains
(docs/discovery.md). This step turns the learned correction into a mechanism and lets the
mechanistic likelihood decide, in the spirit of universal differential equations followed by
symbolic regression (Rackauckas et al., 2020):

1. **Read the learned factors.** With the modulation form, reaction ``r``'s flux is multiplied
   by ``m_r = exp(g_r)``; along the fitted model's rollouts of the training experiments
   (:func:`learned_modulation`) we collect ``g_r``, the skeleton fluxes ``v_r`` and the states.
2. **Propose regulations** (:func:`regulation_candidates`). For every reaction ``r`` and every
   species ``s`` its rate law does not read (``Pathway.rate_dependence``), both effects and Hill
   exponents 1 and 2, the factor ``1 / (1 + (s/K)^n)`` (repression) or ``1 + (s/K)^n``
   (activation) is fitted to ``g_r`` over a log grid of ``K``, weighted by the squared size of
   the flux's contribution to the normalised rates ``(|v_r| ||nu_r / x_scale||)^2`` (a factor
   where the flux is zero is not constrained by data). A candidate's *gain* is the weighted sum
   of squares of ``g_r`` it explains; the ``top`` candidates by gain (summed over members) go on.
   With a learned uptake factor (``learn_uptake``, a field pathway) the same is done for ligand
   sinks ``k s`` added to the uptake (:func:`uptake_candidates`), ``top`` more candidates.
3. **Refit and select** (:func:`distill`). Each candidate structure, the skeleton plus
   ``regulation:<reaction>:<species>:<effect>:<n>`` (:mod:`pbhno_gym.physics.pathways.mechanisms`),
   is fitted by MAP (the design's prior on theta, ``log K ~ N(log scale_s, 1.5^2)`` with the
   species' typical level ``scale_s``) from PB-HNO's estimate and the grid's ``K``; the best
   candidate replaces the hybrid if its negative log posterior beats the skeleton MAP's by more
   than BIC's ``0.5 log(n_data)`` for the one extra parameter. Its estimate and Laplace intervals
   (``K`` marginalised) are reported; otherwise the hybrid's own result stands.

Only regulations of one reaction by one species and sinks linear in one species are proposed,
and only where the networks act through the skeleton's reactions (``correction_form=
"modulation"``) or its uptake (``learn_uptake``); a learned field block (the FNO) is not
distilled. Measured in docs/discovery.md ("Mechanism distillation").
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..data.format import Dataset
from ..discovery.optimize import laplace_cov, multistart
from ..discovery.predictors import MechanisticPredictor
from ..discovery.prior import Prior
from ..discovery.problem import SimulatorProblem
from ..discovery.result import FitResult
from ..physics.pathways.mechanisms import REGULATION_EFFECTS, get_mechanism, regulation_name, uptake_name

__all__ = [
    "Candidate",
    "learned_modulation",
    "regulation_candidates",
    "learned_uptake",
    "uptake_candidates",
    "distill",
]


@dataclass(frozen=True)
class Candidate:
    """A mechanism proposed from the learned factors: its name, the grid's best value ``K`` of its
    parameter, the weighted sum of squares of the log factor it explains (``gain``), the fraction
    of it (``r2``) and the typical size of the parameter (``scale``, the centre of its prior in
    the refit). Uptake candidates have ``reaction="uptake"``, ``effect="sink"``, ``n=1``."""

    name: str
    reaction: str
    species: str
    effect: str
    n: int
    K: float
    gain: float
    r2: float
    scale: float


@torch.no_grad()
def _along_rollouts(model, dataset: Dataset, terms) -> dict[str, np.ndarray]:
    """``terms(x, ell, u_t, theta, inh)`` -> dict of tensors whose leading dims are the state's
    (``x.shape[:-1]``: experiments, and cells where the pathway has them), evaluated at the start
    of every control interval of ``model``'s rollouts of ``dataset``'s experiments, flattened to
    one row per (control step, experiment, cell), float64 numpy."""
    u = torch.as_tensor(dataset["actions"], dtype=model.dtype, device=model.device)
    states, _ = model.rollout(model.initial_state(u.shape[0]), u)
    th = model.sim.params.unpack(model.log_theta)
    rows: dict[str, list[torch.Tensor]] = {}
    lead = 0
    for t in range(u.shape[1]):  # one batched evaluation per control step (T ~ 20)
        z, ut = states[t], u[:, t]
        _, inh = model.sim.split_controls(ut)
        x = z.x.clamp_min(0)
        lead = x.dim() - 1
        ell = model.averaging(z.L) if z.L is not None else None
        for k, v in terms(x, ell, ut, th, inh).items():
            rows.setdefault(k, []).append(v)
    out = {}
    for k, v in rows.items():
        a = torch.stack(v)  # (T, *lead, ...)
        out[k] = a.reshape(-1, *a.shape[1 + lead :]).double().cpu().numpy()
    return out


def learned_modulation(model, dataset: Dataset) -> dict[str, np.ndarray]:
    """Log factors ``g`` (M, R), skeleton fluxes ``v`` (M, R) and states ``x`` (M, S) of a
    trained modulation-form PB-HNO along its rollouts of ``dataset``'s experiments, one row per
    (experiment, control step, cell), each at the start of its control interval."""
    cells = model.cells
    if cells.net is None or cells.form != "modulation":
        raise ValueError(
            "learned_modulation: the model needs a learned modulation (correction_form='modulation')"
        )

    def terms(x, ell, ut, th, inh):
        g = cells.mod_cap * torch.tanh(cells._net(x, ell, ut[:, model.sim.n_sources :]))
        return {"g": g, "v": model.pathway.fluxes(x, ell, th, inh), "x": x}

    return {**_along_rollouts(model, dataset, terms), "x_scale": cells.x_scale.double().cpu().numpy()}


def regulation_candidates(
    model, dataset: Dataset, exponents: Sequence[int] = (1, 2), n_grid: int = 49
) -> list[Candidate]:
    """Every one-species regulation of every reaction, fitted to the learned factors (module
    docstring, step 2), best first by gain."""
    pw = model.pathway
    d = learned_modulation(model, dataset)
    g, v, x, xs = d["g"], d["v"], d["x"], d["x_scale"]
    nu = pw.nu(torch.float64, "cpu").numpy()  # (R, S)
    w = (np.abs(v) * np.linalg.norm(nu / xs, axis=1)) ** 2  # (M, R) squared normalised flux
    w = w / max(float(w.sum()), 1e-300)
    sst = (w * g**2).sum(0)  # (R,) what "no regulation" leaves unexplained
    lacks = ~pw.rate_dependence().numpy()  # (R, S)
    out: list[Candidate] = []
    for s, sp in enumerate(pw.species):
        rows = np.nonzero(lacks[:, s])[0]
        if rows.size == 0:
            continue
        Ks = xs[s] * np.logspace(-1.5, 1.5, n_grid)  # 0.03x to 30x the species' typical level
        for n in exponents:
            h = np.log1p((x[None, :, s] / Ks[:, None]) ** n)  # (G, M), >= 0
            for effect in REGULATION_EFFECTS:
                sign = -1.0 if effect == "repress" else 1.0
                # (G, R) weighted SSE of g_r - sign h over the grid, for the reactions lacking s
                sse = (w[None, :, rows] * (g[None, :, rows] - sign * h[:, :, None]) ** 2).sum(1)
                best = sse.argmin(0)
                for j, r in enumerate(rows):
                    e = float(sse[best[j], j])
                    gain = float(sst[r] - e)
                    out.append(
                        Candidate(
                            regulation_name(pw.reactions[r], sp, effect, n),
                            pw.reactions[r],
                            sp,
                            effect,
                            int(n),
                            float(Ks[best[j]]),
                            gain,
                            gain / float(sst[r]) if sst[r] > 0 else 0.0,
                            float(xs[s]),
                        )
                    )
    return sorted(out, key=lambda c: -c.gain)


def learned_uptake(model, dataset: Dataset) -> dict[str, np.ndarray]:
    """Log uptake factors ``g`` (M,), the skeleton's uptake coefficients ``upt`` (M,), membrane
    ligand ``ell`` (M,) and states ``x`` (M, S) of a trained PB-HNO with a learned uptake factor
    (``learn_uptake``) along its rollouts of ``dataset``'s experiments (rows as
    :func:`learned_modulation`)."""
    if model.cells.uptake_net is None:
        raise ValueError("learned_uptake: the model has no learned uptake factor (learn_uptake=True)")

    def terms(x, ell, ut, th, inh):
        upt, _ = model.pathway.membrane_terms(x, th, inh)
        return {"g": torch.log(model.cells.uptake_factor(x)), "upt": upt, "ell": ell, "x": x}

    return _along_rollouts(model, dataset, terms)


def uptake_candidates(model, dataset: Dataset, n_grid: int = 49) -> list[Candidate]:
    """Every ligand sink ``k s`` by a species ``s`` the uptake law does not read, fitted to the
    learned log uptake factor as ``log(1 + k s / upt) + c`` (``c``: the factor's gate at the
    rest state, where a sink with ``s_rest > 0`` is partly absorbed by the skeleton's uptake),
    weighted by the squared uptake flux ``(upt ell)^2``; best first by gain."""
    pw = model.pathway
    d = learned_uptake(model, dataset)
    g, upt, x = d["g"], d["upt"], d["x"]
    w = (upt * d["ell"]) ** 2
    w = w / max(float(w.sum()), 1e-300)
    gc = g - (w * g).sum()
    sst = float((w * gc**2).sum())
    reads = pw.uptake_dependence().numpy()
    xs = model.cells.x_scale.double().cpu().numpy()
    base = float(np.median(upt[upt > 0])) if (upt > 0).any() else 1.0
    out = []
    for s, sp in enumerate(pw.species):
        if reads[s]:
            continue
        scale = base / max(float(xs[s]), 1e-12)  # a sink the size of the uptake at the typical level
        ks = scale * np.logspace(-2.0, 2.0, n_grid)
        h = np.log1p(ks[:, None] * x[None, :, s] / np.maximum(upt, 1e-30)[None])  # (G, M)
        hc = h - (w[None] * h).sum(1, keepdims=True)
        sse = (w[None] * (gc[None] - hc) ** 2).sum(1)
        j = int(sse.argmin())
        gain = sst - float(sse[j])
        out.append(
            Candidate(
                uptake_name(sp),
                "uptake",
                sp,
                "sink",
                1,
                float(ks[j]),
                gain,
                gain / sst if sst > 0 else 0.0,
                scale,
            )
        )
    return sorted(out, key=lambda c: -c.gain)


def _pooled(per: list[list[Candidate]]) -> list[Candidate]:
    """Candidates ranked by their gain summed over ensemble members (K and scale: the
    gain-weighted geometric means of the members')."""
    by: dict[str, list[Candidate]] = {}
    for cs in per:
        for c in cs:
            by.setdefault(c.name, []).append(c)
    pooled = []
    for cs in by.values():
        gain = sum(c.gain for c in cs)
        wts = np.array([max(c.gain, 1e-12) for c in cs])
        K = float(np.exp(np.average(np.log([c.K for c in cs]), weights=wts)))
        scale = float(np.exp(np.average(np.log([c.scale for c in cs]), weights=wts)))
        r2 = float(np.mean([c.r2 for c in cs]))
        c = cs[0]
        pooled.append(Candidate(c.name, c.reaction, c.species, c.effect, c.n, K, gain, r2, scale))
    return sorted(pooled, key=lambda c: -c.gain)


def distill(
    hybrid: FitResult,
    models: Sequence,
    dataset: Dataset,
    free: Sequence[str],
    prior: Prior,
    *,
    top: int = 4,
    exponents: Sequence[int] = (1, 2),
    k_prior_sd: float = 1.5,
    max_nfev: int = 30,
    skeleton_start: np.ndarray | None = None,
) -> FitResult:
    """The hybrid's result replaced by the best distilled regulation's MAP where the data select
    it (module docstring, step 3); ``hybrid`` itself (with the candidates in ``meta``) otherwise.

    ``dataset`` must carry its design (``meta['design']``): candidates are fitted through the
    design's float64 simulator of the skeleton plus the candidate (never the hidden mechanisms).
    """
    if top < 1:
        raise ValueError(f"distill: top must be >= 1, got {top}")
    if "design" not in dataset.meta:
        raise ValueError("distill: dataset has no meta['design'] (make it with discovery.make_dataset)")
    t0 = time.perf_counter()
    free = tuple(free)
    cells = models[0].cells
    cands: list[Candidate] = []
    if cells.net is not None and cells.form == "modulation":
        cands += _pooled([regulation_candidates(m, dataset, exponents) for m in models])[:top]
    if cells.uptake_net is not None:
        cands += _pooled([uptake_candidates(m, dataset) for m in models])[:top]
    if not cands:
        raise ValueError("distill: the models learn neither a flux modulation nor an uptake factor")
    pathway = models[0].pathway.name
    est = np.asarray(hybrid.log_theta, dtype=np.float64)
    fd = {"jac_mode": "fd"}
    skel = SimulatorProblem(dataset, free, prior, skeleton=True, **fd)
    starts = [est, prior.mean] + ([np.asarray(skeleton_start)] if skeleton_start is not None else [])
    skel_cost = min(r["cost"] for r in multistart(skel, np.array(starts), True, max_nfev))
    table, fits = [], []
    for c in cands:
        (k_spec,) = get_mechanism(pathway, c.name).params
        names = free + (k_spec.name,)
        kp = Prior(
            names,
            np.r_[prior.mean, math.log(c.scale)],
            np.r_[prior.sd, k_prior_sd],
        )
        prob = SimulatorProblem(dataset, names, kp, mechanisms=(c.name,), **fd)
        lk = math.log(c.K)
        runs = multistart(prob, np.array([np.r_[est, lk], np.r_[prior.mean, lk]]), True, max_nfev)
        best = min(runs, key=lambda r: r["cost"])
        fits.append((c, prob, best))
        table.append({**asdict(c), "cost": float(best["cost"]), "K_fit": float(math.exp(best["x"][-1]))})
    threshold = 0.5 * math.log(skel.n_data)  # BIC: one extra parameter
    meta = dict(hybrid.meta)
    meta.update(
        candidates=table,
        skeleton_cost=float(skel_cost),
        bic_threshold=threshold,
        distill_wall_s=time.perf_counter() - t0,
    )
    c, prob, best = min(fits, key=lambda f: f[2]["cost"])
    if not (skel_cost - best["cost"] > threshold and np.isfinite(best["x"]).all()):
        meta["mechanism"] = None
        return dataclasses.replace(hybrid, meta=meta, wall_s=hybrid.wall_s + meta["distill_wall_s"])
    cov = laplace_cov(prob, best["x"], True)
    p = len(free)
    meta.update(
        mechanism=c.name,
        model=f"{pathway}+{c.name}",
        K=float(math.exp(best["x"][-1])),
        K_sd_log=float(math.sqrt(max(cov[p, p], 0.0))),
        cost=float(best["cost"]),
    )
    x = np.clip(best["x"][:p], prior.lower, prior.upper)
    out = FitResult(
        hybrid.method,
        free,
        x,
        cov=cov[:p, :p],
        success=bool(best["status"] > 0),
        wall_s=hybrid.wall_s + meta["distill_wall_s"],
        meta=meta,
    )
    out.predictor = MechanisticPredictor(prob.names, best["x"], mechanisms=(c.name,))
    return out
