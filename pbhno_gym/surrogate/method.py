"""PB-HNO and its ablations as parameter-discovery methods (the registry of
:mod:`pbhno_gym.discovery.registry`), so ``pbhno reproduce`` compares them with every baseline
on identical data.

A fit trains a small deep ensemble of PB-HNO models on the design's dataset (the model measures
the design's channels and starts from the design's initial state, ``PBHNOConfig.design``), with
the design's prior on the free parameters, and reports the pooled estimate with the
Laplace-plus-ensemble covariance of :func:`~pbhno_gym.surrogate.discovery.combine_members`.

Theta (Algorithm 1, :mod:`.calibrate` then :mod:`.train`): every member first fits theta through
the model's mechanistic skeleton by multistart Gauss-Newton (member 0 from the prior mean or
``start_log_theta``, the others from prior draws), then theta and the networks train together
on the eq. 7 loss (``lr_theta > 0``; the sensitivity weights act on both): by default jointly
with Adam; with ``optimizer="lbfgs", alternate_nfev=k`` alternating, the networks by full-batch
L-BFGS for an epoch and then theta by ``k`` Gauss-Newton evaluations given them (the setting
``scripts/misspec.py`` uses: under model error it removed far more of the skeleton's bias than
joint Adam, docs/discovery.md "Model error"; ablation ``pbhno_adam``). To keep the networks
from absorbing what the parameters explain, the loss penalises the part of the learned
correction that lies in the span of the skeleton's theta-sensitivities over the rollout
(``loss={"orth": 30}``, :func:`~.losses.absorbed_part`). Intervals are sandwich (robust)
covariances with blocks of 5 measured times (:func:`~.discovery.sandwich_covariance`) or, with
``intervals="marginal"`` (``scripts/misspec.py``), covariances with the networks and offsets
integrated out, so theta's trade-off with the correction counts
(:func:`~.discovery.marginal_covariance`: coverage 0.92 against the sandwich's 0.69 on 20
``mapk_feedback`` seeds); either is pooled over members with their spread.

The learned correction (:class:`~.reaction.CellDynamics`) is a modulation of the skeleton's
reaction fluxes, ``v_r -> v_r exp(3 tanh g_r(x, u))``, gated to vanish at the cells' rest state
(``correction_form="modulation"``, ``gate_rest=True``): the correction can only act through the
skeleton's reactions, and at rest (where, e.g., an ERK feedback is off and the first response
to a stimulus pins down k1) the kinetics are theta's alone. Ablation ``pbhno_additive``: the old
additive, ungated bounded rate.

Measured (docs/discovery.md, "Model error"): on Notch (seeds 0-2, no model error) joint Adam
with 3 trajectories moved theta off the skeleton MAP (0.03 -> 0.10), which is why theta used to
be held; on ``mapk_feedback`` (seeds 0-1, 40 epochs) the joint phase moved k1 by under 0.05 and
left the MAE at or slightly above the skeleton MAP's (0.093 -> 0.109, 0.196 -> 0.226), with and
without the penalty. With the gated modulation and 40 joint epochs (seeds 0-3, same run as
both MAPs) the log-MAE fell to about 0.6x the skeleton MAP's and the counterfactual error to
about a third (docs/discovery.md, "Model error", pilot). The networks are kept only as far as
they improve a held-out trajectory (the untrained model is the first candidate).

Ablations (paper section V): ``pbhno_no_physics`` (no PDE/ODE residual terms),
``pbhno_no_sens`` (no Appendix-B sensitivity weighting), ``pbhno_no_coupling`` (no coupling
regulariser), ``pbhno_no_pde`` (no learned field block: the mechanistic ETD transport only),
``pbhno_no_orth`` (no anti-absorption penalty), ``pbhno_held`` (theta held at the skeleton
calibration: no joint phase), ``pbhno_adam`` (joint Adam steps even where the settings ask for
the alternating L-BFGS/Gauss-Newton scheme). Extension ``pbhno_distill``: PB-HNO whose
learned factors are then distilled into a named mechanism and refitted by MAP where the data
select it (:mod:`.distill`). On ODE pathways (MAPK) there is no field, so ``pbhno_no_pde``
and ``pbhno_no_coupling`` are ``pbhno`` by construction.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.format import Dataset
from ..discovery.method import Method
from ..discovery.prior import Prior
from ..discovery.result import FitResult
from .discovery import combine_members, laplace_summary, marginal_covariance, sandwich_covariance
from .losses import LossWeights
from .model import PBHNO, PBHNOConfig
from .train import TrainConfig, Trainer

__all__ = ["fit_pbhno", "PBHNOPredictor", "ABLATIONS", "DEFAULTS"]

DEFAULTS: dict = dict(
    members=2,
    epochs=40,
    batch_size=4,
    lr=3e-3,
    lr_theta=0.05,  # after the skeleton calibration theta trains with the networks (Algorithm 1)
    calibrate_nfev=20,
    polish_nfev=0,  # re-solving theta given the trained networks moved it off the truth (module doc)
    val_frac=0.34,  # one of three trajectories held out: the learned parts must improve on it
    patience=15,
    sens_every=10,
    optimizer="adam",  # "adam" | "lbfgs" (full batch, lbfgs_iters iterations per epoch)
    lbfgs_iters=5,
    alternate_nfev=0,  # > 0: theta by Gauss-Newton given the networks after every epoch
    width=16,
    modes=8,
    n_layers=2,
    hidden=64,
    correction_cap=0.5,  # bound of the learned rate per control interval, fraction of x_scale
    correction_form="modulation",  # learned log-factors on the skeleton's fluxes | "additive" (a rate)
    gate_rest=True,  # the correction vanishes at the cells' rest state (theta owns the rest kinetics)
    modulation_cap=3.0,  # bound of |log factor| in the modulation form
    modulation_inputs="all",  # "regulators": each reaction's factor sees only species its rate law lacks
    substeps=None,  # None: RK4 steps of <= 1 min (Notch cis-inactivation ~2/min), >= the design's
    field_substeps=8,  # field + cells in 8 ETD-RK2 sub-intervals (Notch: 0.2% rms off the simulator)
    field_modes=None,  # None: the field on the grid; m: in its m x m lowest cosine modes (surrogate/modal.py)
    learn_uptake=False,  # a learned factor of each cell's state on its membrane uptake (a missing sink)
    uptake_gate="rest",  # where that factor is one: "rest" | "regulators" (species the uptake law lacks at 0)
    start_log_theta=None,  # member 0's starting free log theta (e.g. a skeleton MAP already at hand)
    # "sandwich" (robust to model error, blocks of `block` times) | "laplace" | "marginal" (the
    # networks and initial-state offsets marginalised: theta's trade-off with the correction counts)
    intervals="sandwich",
    block=5,
    loss={"orth": 30.0},  # LossWeights overrides, here the anti-absorption penalty (ablations' win)
    distill=False,  # afterwards: the learned factors distilled into a named mechanism (.distill)
    distill_top=4,  # candidates per family (regulations, ligand sinks) refitted by MAP
    device="cpu",
    run_dir=None,  # None: a temporary directory
)

#: settings a variant fixes (over the caller's): what makes it that variant
VARIANT_SETTINGS: dict[str, dict] = {"pbhno_distill": {"distill": True}}

#: name -> (description, PBHNOConfig overrides, LossWeights overrides, TrainConfig overrides)
ABLATIONS: dict[str, tuple[str, dict, dict, dict]] = {
    "pbhno": ("PB-HNO: cosine FNO + hybrid neural ODE, learned coupling, eq. 7", {}, {}, {}),
    "pbhno_no_physics": ("PB-HNO without the PDE/ODE physics residuals", {}, {"pde": 0.0, "ode": 0.0}, {}),
    "pbhno_no_sens": (
        "PB-HNO without sensitivity weighting (Appendix B)",
        {},
        {"sens": 0.0},
        {"sens_every": 0},
    ),
    "pbhno_no_coupling": ("PB-HNO without the coupling regulariser", {}, {"op": 0.0}, {}),
    "pbhno_no_orth": (
        "PB-HNO without the anti-absorption penalty (networks free along theta's sensitivities)",
        {},
        {"orth": 0.0},
        {},
    ),
    "pbhno_additive": (
        "PB-HNO with the additive, ungated correction (a bounded learned rate, the old form)",
        {"correction_form": "additive", "gate_rest": False},
        {},
        {},
    ),
    "pbhno_regulators": (
        "PB-HNO whose learned factor on each reaction sees only the species its rate law lacks",
        {"modulation_inputs": "regulators"},
        {},
        {},
    ),
    "pbhno_uptake_regulators": (
        "PB-HNO whose learned uptake factor is one where the species its uptake law lacks are zero",
        {"uptake_gate": "regulators"},
        {},
        {},
    ),
    "pbhno_held": (
        "PB-HNO with theta held at the skeleton calibration (lr_theta 0: no joint phase)",
        {},
        {},
        {"lr_theta": 0.0},
    ),
    "pbhno_adam": (
        "PB-HNO with theta and the networks by joint Adam steps (no L-BFGS, no alternating theta step)",
        {},
        {},
        {"optimizer": "adam", "alternate_nfev": 0},
    ),
    "pbhno_distill": (
        "PB-HNO whose learned flux (and uptake) factors are distilled into a named mechanism, refitted",
        {},
        {},
        {},
    ),
    "pbhno_no_pde": (
        "PB-HNO without the learned PDE block (mechanistic transport)",
        {"pde_block": "none"},
        {},
        {},
    ),
}


class PBHNOPredictor:
    """Forecasts of the ensemble mean under any controls, and its ligand field."""

    def __init__(self, models: list[PBHNO]) -> None:
        self.models = models

    def _rollouts(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray | None]:
        """Ensemble-mean measurements (E, T+1, C) and ligand fields (E, T+1, H, W) or None."""
        preds, fields = [], []
        for m in self.models:
            u = torch.as_tensor(dataset["actions"], dtype=m.dtype, device=m.device)
            with torch.no_grad():
                states, _ = m.rollout(m.initial_state(u.shape[0]), u)
            preds.append(torch.stack([m.measure(z) for z in states], 1).double().cpu().numpy())
            if states[0].L is not None:
                fields.append(torch.stack([z.L for z in states], 1).double().cpu().numpy())
        return np.mean(preds, 0), (np.mean(fields, 0) if fields else None)

    def forecast(self, dataset: Dataset) -> np.ndarray:
        return self._rollouts(dataset)[0]

    def field(self, dataset: Dataset) -> np.ndarray | None:
        return self._rollouts(dataset)[1]


def _with_noise(dataset: Dataset) -> Dataset:
    """The design's known per-channel noise sd as ``meas_sd`` (the likelihood every method uses)."""
    if "meas_sd" in dataset.arrays or "noise_sd" not in dataset.meta:
        return dataset
    sd = np.broadcast_to(np.asarray(dataset.meta["noise_sd"], np.float32), dataset["meas_values"].shape)
    arrays = dict(dataset.arrays)
    arrays["meas_sd"] = np.where(dataset["meas_mask"], sd, np.nan).astype(np.float32)
    return Dataset(arrays, dict(dataset.meta))


def fit_pbhno(
    dataset: Dataset,
    free: Sequence[str],
    prior: Prior,
    *,
    seed: int = 0,
    settings: dict | None = None,
    variant: str = "pbhno",
) -> FitResult:
    """Train a PB-HNO ensemble on one design dataset; pooled log theta with its covariance."""
    s = {**DEFAULTS, **(settings or {}), **VARIANT_SETTINGS.get(variant, {})}
    unknown = set(s) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{variant}: unknown setting(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    if s["intervals"] not in ("sandwich", "laplace", "marginal"):
        raise ValueError(
            f"{variant}: intervals must be 'sandwich', 'laplace' or 'marginal': {s['intervals']!r}"
        )
    if "design" not in dataset.meta:
        raise ValueError(f"{variant}: dataset has no meta['design'] (make it with discovery.make_dataset)")
    if s["distill"] and not int(s["distill_top"]) >= 1:
        raise ValueError(f"{variant}: distill_top must be >= 1, got {s['distill_top']!r}")
    _, mcfg_over, w_over, t_over = ABLATIONS[variant]
    t0 = time.perf_counter()
    ds = _with_noise(dataset)
    spec = ds.meta["spec"]
    dt = float(spec["control_interval"])
    substeps = s["substeps"] or max(int(spec.get("substeps", 8)), math.ceil(dt))
    tmp = None
    if s["run_dir"] is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"{variant}-")
        root = Path(tmp.name)
    else:
        root = Path(s["run_dir"]) / f"seed{seed}"
    train_kw = dict(
        epochs=int(s["epochs"]),
        batch_size=int(s["batch_size"]),
        lr=float(s["lr"]),
        lr_theta=float(s["lr_theta"]),
        val_frac=float(s["val_frac"]),  # theta is calibrated on all; the networks are early-stopped
        patience=int(s["patience"]),
        sens_every=int(s["sens_every"]),
        calibrate_nfev=int(s["calibrate_nfev"]),
        polish_nfev=int(s["polish_nfev"]),
        optimizer=str(s["optimizer"]),
        lbfgs_iters=int(s["lbfgs_iters"]),
        alternate_nfev=int(s["alternate_nfev"]),
        weights=dataclasses.replace(LossWeights(), **{**dict(s["loss"]), **w_over}),
        seed=int(seed),
        tensorboard=False,
    )
    tc = TrainConfig(**{**train_kw, **t_over})  # the ablation's overrides win
    models, summaries, losses, calibration, kept, discrepancy = [], [], [], [], [], []
    history: list[list[dict]] = []  # per member, the trainer's per-epoch rows (loss curves)
    try:
        for m in range(int(s["members"])):
            cfg_kw = dict(
                env_spec=spec,
                free_params=list(free),
                width=int(s["width"]),
                modes=int(s["modes"]),
                n_layers=int(s["n_layers"]),
                hidden=int(s["hidden"]),
                correction_cap=float(s["correction_cap"]),
                correction_form=str(s["correction_form"]),
                gate_rest=bool(s["gate_rest"]),
                modulation_cap=float(s["modulation_cap"]),
                modulation_inputs=str(s["modulation_inputs"]),
                solver="rk4",
                adjoint=False,
                substeps=substeps,
                field_substeps=int(s["field_substeps"]),
                field_modes=None if s["field_modes"] is None else int(s["field_modes"]),
                learn_uptake=bool(s["learn_uptake"]),
                uptake_gate=str(s["uptake_gate"]),
                design=ds.meta["design"],
            )
            cfg = PBHNOConfig(**{**cfg_kw, **mcfg_over})  # the ablation's overrides win
            torch.manual_seed(int(seed) * 1000 + m)
            model = PBHNO(cfg, device=s["device"])
            idx = model.free_index
            with torch.no_grad():  # the design's prior (same for every method), members start apart
                model.prior_mean[idx] = torch.as_tensor(prior.mean, dtype=model.dtype, device=model.device)
                model.prior_sigma[idx] = torch.as_tensor(prior.sd, dtype=model.dtype, device=model.device)
                start = model.prior_mean[idx].clone()
                if m == 0 and s["start_log_theta"] is not None:
                    start = torch.as_tensor(np.asarray(s["start_log_theta"]), dtype=model.dtype)
                if m > 0:
                    g = torch.Generator().manual_seed(int(seed) * 1000 + m)
                    z = torch.randn(len(idx), generator=g).clamp(-1.5, 1.5)
                    start = start + model.prior_sigma[idx] * z.to(start)
                model.log_theta_free.copy_(start)
            init = {n: p.detach().clone() for n, p in model.named_parameters()}  # the networks' prior mean
            mtc = dataclasses.replace(tc, seed=int(seed) * 1000 + m)
            trainer = Trainer(model, ds, mtc, root / f"member{m}")
            model = trainer.fit(resume=trainer.ckpt_path.exists(), progress=False)
            models.append(model)
            summ = laplace_summary(model, ds, trainer.delta)
            if s["intervals"] == "sandwich":
                summ["cov"] = sandwich_covariance(model, ds, trainer.delta, int(s["block"]))
            elif s["intervals"] == "marginal":
                summ["cov"], disc = marginal_covariance(model, ds, trainer.delta, init, trainer.init_sd)
                discrepancy.append(disc)
            summaries.append(summ)
            losses.append(float(trainer.best_val) if hasattr(trainer, "best_val") else float("nan"))
            calibration.append(trainer.calibration)
            kept.append(bool(_networks_kept(trainer)))
            history.append([dict(r) for r in trainer.history])
    finally:
        if tmp is not None:
            tmp.cleanup()
    pooled = combine_members(summaries)
    sd = pooled["sd_total"].numpy()
    est = np.clip(pooled["log_theta"].numpy(), prior.lower, prior.upper)
    res = FitResult(
        variant,
        tuple(free),
        est,
        cov=np.diag(sd**2),
        samples=pooled["members"].numpy() if len(models) > 1 else None,
        success=bool(np.isfinite(est).all()),
        wall_s=time.perf_counter() - t0,
        meta=dict(
            settings={k: v for k, v in s.items() if k != "run_dir"},
            sd_laplace=pooled["sd_laplace"].tolist(),
            sd_ensemble=pooled["sd_ensemble"].tolist(),
            best_val=losses,
            calibration=calibration,
            networks_kept=kept,
            discrepancy=discrepancy,  # intervals="marginal": per member, see marginal_covariance
            history=history,  # per member, per epoch: losses, held-out error, theta
        ),
    )
    res.predictor = PBHNOPredictor(models)
    if s["distill"]:
        from .distill import distill

        res = distill(
            res, models, ds, free, prior, top=int(s["distill_top"]), skeleton_start=s["start_log_theta"]
        )
    return res


def _networks_kept(trainer: Trainer) -> bool:
    """Whether held-out selection kept a trained epoch (False: the untrained candidate won)."""
    hist = [r for r in trainer.history if math.isfinite(r.get("val_y", float("nan")))]
    if not hist:
        return True  # no held-out episodes: the last epoch is kept
    best = min(hist, key=lambda r: r["val_y"])
    return bool(best["val_y"] <= trainer.best_val + 1e-9)


def _methods() -> tuple[Method, ...]:
    """PB-HNO and its ablations as discovery methods (registered by :mod:`pbhno_gym.discovery.registry`)."""
    out = []
    for name, (desc, _, _, _) in ABLATIONS.items():
        quick = dict(members=2, epochs=10)  # theta comes from the calibration; epochs train the networks
        full = dict(members=5, epochs=400, width=32, modes=16, n_layers=4, hidden=128, patience=60)

        def fit(dataset, free, prior, *, seed=0, settings=None, _v=name):
            return fit_pbhno(dataset, free, prior, seed=seed, settings=settings, variant=_v)

        out.append(
            Method(
                name,
                fit,
                desc,
                family="pbhno",
                quick=quick,
                full=full,
                provides=("forecast", "field", "intervals"),
                in_quick=name == "pbhno",  # the ablations cost 4 more PB-HNO fits per dataset
            )
        )
    return tuple(out)


#: the methods this module adds to :mod:`pbhno_gym.discovery.registry`
METHODS = _methods()
