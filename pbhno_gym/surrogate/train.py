"""Algorithm 1: train PB-HNO from episodes, with checkpoints that resume exactly.

Per epoch: shuffle the training episodes (a seeded generator), and for every minibatch roll the
model out from estimated initial states, compute the eq. (7) objective, clip gradients, take an
Adam step (cosine-decayed learning rate). Every ``sens_every`` epochs the Appendix-B sensitivity
weights are refreshed from finite-difference sensitivities. Validation episodes keep their own
initial-state offsets, fitted on validation data only (the model is frozen for that), and the
validation measurement loss drives early stopping; the best model is kept, the untrained one
included (so the learned parts stay at zero when no epoch improves on held-out episodes: on the
Notch design, ten epochs on two noisy trajectories took the forecast error under unseen controls
from 1.6%, the skeleton's, to 6.6%).

Theta by Gauss-Newton (optional, :mod:`.calibrate`): with ``calibrate_nfev`` the freshly built
model, which is the mechanistic skeleton (learned parts start at zero / at the physical
operators), is fitted for theta alone (on every episode, validation ones included: theta is shared
and only the networks are early-stopped) by multistart least squares before the first epoch, so
training starts from the skeleton's MAP rather than the prior mean; with ``polish_nfev`` theta is
re-solved at the end with the trained networks frozen (its MAP given them). Adam alone moves
each log-parameter by about its learning rate per step, which on sparse designs wanders instead
of converging.

Unknown initial states are estimated: each episode's cells start at ``x_start(theta) * exp(delta_e)``
with a learned offset ``delta_e`` under the spec's cell-variability prior (sd ``init_noise``).

A checkpoint (written atomically at every epoch) holds the model config and weights, the offsets,
optimiser and scheduler states, sensitivity weights, history, best state and every RNG state, so
``resume=True`` continues exactly where an interrupted run stopped.
"""

from __future__ import annotations

import csv
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.format import Dataset
from ..utils.io import atomic_torch_save, atomic_write_text
from .data import EpisodeTensors, check_compatible, dataset_fingerprint
from .fisher import sensitivities, sensitivity_weights
from .losses import LossWeights, objective
from .model import PBHNO, CheckpointError, read_checkpoint

__all__ = ["TrainConfig", "Trainer", "read_log", "stage"]


def stage(msg: str, progress: bool = True) -> None:
    """One stage line on stderr (``pbhno fit: ...``), so that a long command is never silent."""
    if progress:
        tqdm.write(f"pbhno fit: {msg}", file=sys.stderr)
        sys.stderr.flush()


@dataclass
class TrainConfig:
    """Training settings (defaults after Table II)."""

    epochs: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    lr_theta: float = 2e-2  # log-parameters move on an O(1) scale
    lr_init: float = 5e-2  # initial-state offsets
    grad_clip: float = 1.0
    val_frac: float = 0.2
    patience: int = 30
    val_steps: int = 2  # offset updates per epoch for validation episodes
    sens_every: int = 10  # epochs between sensitivity-weight refreshes (0: never)
    sens_alpha: float = 1.0
    sens_episodes: int = 8
    weights: LossWeights = field(default_factory=LossWeights)
    seed: int = 0
    log_every: int = 1
    tensorboard: bool = True
    calibrate_nfev: int = 0  # Gauss-Newton evaluations for theta via the skeleton, before training (0: off)
    calibrate_starts: int = 1  # starts of that calibration: the current theta, then prior draws
    polish_nfev: int = 0  # Gauss-Newton evaluations for theta given the trained networks (0: off)
    # "adam" (minibatches, the lr's above) | "lbfgs" (full batch of the training episodes, strong-Wolfe
    # line search, `lbfgs_iters` iterations per epoch; lr and lr_theta are not step sizes there,
    # lr_theta = 0 still holds theta)
    optimizer: str = "adam"
    lbfgs_iters: int = 5
    # alternating Algorithm 1: after every epoch theta is re-solved by Gauss-Newton with the networks
    # frozen (this many evaluations; theta then leaves the gradient optimizer). 0: theta moves with
    # the optimizer at lr_theta
    alternate_nfev: int = 0


def _numpy_rng_state() -> dict[str, Any]:
    """numpy's legacy global RNG state as plain values (third-party code may draw from it)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _set_numpy_rng_state(st: dict[str, Any]) -> None:
    keys = st["keys"].numpy().astype(np.uint32)
    np.random.set_state((st["name"], keys, st["pos"], st["has_gauss"], st["cached_gaussian"]))  # noqa: NPY002


class Trainer:
    """Trains one PB-HNO model on one dataset, writing into ``run_dir``."""

    def __init__(self, model: PBHNO, dataset: Dataset, config: TrainConfig, run_dir: str | Path) -> None:
        check_compatible(model, dataset)
        self.model, self.ds, self.cfg = model, dataset, config
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = dataset_fingerprint(dataset)
        dev, dt = model.device, model.dtype
        self.data = EpisodeTensors.from_dataset(dataset, dev, dt)
        E = self.data.n_episodes
        perm = torch.randperm(E, generator=torch.Generator().manual_seed(config.seed))
        n_val = int(round(config.val_frac * E)) if E > 1 else 0
        self.val_idx, self.train_idx = perm[:n_val].to(dev), perm[n_val:].to(dev)
        if len(self.train_idx) == 0:
            raise ValueError("TrainConfig.val_frac leaves no training episodes")
        N, S = model.n_cells, len(model.pathway.species)
        self.delta = torch.zeros(E, N, S, dtype=dt, device=dev, requires_grad=True)
        self.n_obs_train = float(self.data.index(self.train_idx).n_obs)
        self.sens_w = torch.ones_like(self.data.y)
        self.init_sd = float(model.spec.init_noise)
        groups = [
            {
                "params": [
                    p for n, p in model.named_parameters() if n != "log_theta_free" and p.requires_grad
                ],
                "lr": config.lr,
            },
            # alternating: theta by Gauss-Newton between epochs, not by the gradient optimizer
            {"params": [model.log_theta_free], "lr": 0.0 if config.alternate_nfev else config.lr_theta},
            {"params": [self.delta], "lr": config.lr_init},
        ]
        if config.optimizer == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam(groups)
            T = max(config.epochs, 1)
            self.sched: Any = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=T)
        elif config.optimizer == "lbfgs":
            if config.lbfgs_iters < 1:
                raise ValueError(f"TrainConfig.lbfgs_iters must be >= 1, got {config.lbfgs_iters}")
            free = [p for g in groups if g["lr"] > 0 for p in g["params"]]  # lr 0 holds a group
            self.opt = torch.optim.LBFGS(
                free, lr=1.0, max_iter=config.lbfgs_iters, history_size=20, line_search_fn="strong_wolfe"
            )
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda _: 1.0)
        else:
            raise ValueError(f"TrainConfig.optimizer must be 'adam' or 'lbfgs', got {config.optimizer!r}")
        self.val_opt = torch.optim.Adam([self.delta], lr=config.lr_init)
        self.gen = torch.Generator().manual_seed(config.seed + 1)
        self.epoch, self.best_val, self.bad_epochs = 0, math.inf, 0
        self.skipped = 0  # optimizer steps skipped for a non-finite loss or gradient
        self.calibration: dict[str, dict] = {}  # "calibrate" / "polish": see surrogate.calibrate
        self.best_state: dict[str, Any] | None = None
        self.history: list[dict[str, float]] = []
        self._tb = None
        self.progress = False  # set by fit(): stage lines and bars on stderr

    # ------------------------------------------------------------------ checkpoints
    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def state(self) -> dict[str, Any]:
        return {
            "format": "pbhno-train",
            "version": 1,
            "model": {"config": asdict(self.model.config), "state_dict": self.model.state_dict()},
            "train_config": asdict(self.cfg),
            "fingerprint": self.fingerprint,
            "delta": self.delta.detach().cpu(),
            "sens_w": self.sens_w.cpu(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "val_opt": self.val_opt.state_dict(),
            "epoch": self.epoch,
            "best_val": self.best_val,
            "bad_epochs": self.bad_epochs,
            "skipped": self.skipped,
            "calibration": self.calibration,
            "best_state": self.best_state,
            "history": self.history,
            "rng": {
                "torch": torch.get_rng_state(),
                "gen": self.gen.get_state(),
                "numpy": _numpy_rng_state(),
                "python": random.getstate(),
            },
            "split": {"train": self.train_idx.cpu(), "val": self.val_idx.cpu()},
        }

    def save_checkpoint(self) -> Path:
        return atomic_torch_save(self.state(), self.ckpt_path)

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path or self.ckpt_path)
        ck = read_checkpoint(path)
        if ck.get("format") != "pbhno-train":
            raise CheckpointError(f"{path}: a saved model, not a training checkpoint (cannot resume from it)")
        if ck["fingerprint"] != self.fingerprint:
            raise CheckpointError(
                f"{path}: trained on a different dataset (fingerprint {ck['fingerprint']} "
                f"!= {self.fingerprint})"
            )
        if ck["model"]["config"]["env_spec"] != asdict(self.model.config)["env_spec"]:
            raise CheckpointError(f"{path}: written for another environment spec")
        try:
            self.model.load_state_dict(ck["model"]["state_dict"])
        except RuntimeError as e:
            raise CheckpointError(f"{path}: model state does not match ({e})") from None
        with torch.no_grad():
            self.delta.copy_(ck["delta"].to(self.delta))
        self.sens_w = ck["sens_w"].to(self.sens_w)
        self.opt.load_state_dict(ck["opt"])
        self.sched.load_state_dict(ck["sched"])
        self.val_opt.load_state_dict(ck["val_opt"])
        self.epoch, self.best_val, self.bad_epochs = ck["epoch"], ck["best_val"], ck["bad_epochs"]
        self.best_state, self.history = ck["best_state"], ck["history"]
        self.skipped = int(ck.get("skipped", 0))
        self.calibration = dict(ck.get("calibration", {}))
        torch.set_rng_state(ck["rng"]["torch"])
        self.gen.set_state(ck["rng"]["gen"])
        _set_numpy_rng_state(ck["rng"]["numpy"])
        random.setstate(ck["rng"]["python"])

    # ------------------------------------------------------------------ loop
    def _batches(self) -> list[torch.Tensor]:
        perm = self.train_idx[
            torch.randperm(len(self.train_idx), generator=self.gen).to(self.train_idx.device)
        ]
        return list(torch.split(perm, self.cfg.batch_size))

    def _refresh_sensitivity(self) -> None:
        idx = self.train_idx[: self.cfg.sens_episodes]
        J = sensitivities(self.model, self.data.index(idx), self.delta.detach()[idx])
        w = sensitivity_weights(J, self.data.var[idx], self.data.mask[idx], self.cfg.sens_alpha)
        # episodes without fresh sensitivities get the mean weight of each (time, channel)
        self.sens_w = w.mean(0, keepdim=True).expand_as(self.sens_w).clone()
        self.sens_w[idx] = w

    def train_epoch(self) -> dict[str, float]:
        cfg, model = self.cfg, self.model
        model.train()
        if cfg.sens_every and cfg.weights.sens > 0 and self.epoch % cfg.sens_every == 0:
            stage(
                f"epoch {self.epoch + 1}: refreshing sensitivity weights (finite differences)", self.progress
            )
            self._refresh_sensitivity()
        if cfg.optimizer == "lbfgs":
            return self._after_epoch(self._lbfgs_epoch())
        sums: dict[str, float] = {}
        batches = self._batches()
        bar = tqdm(
            batches, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False, disable=not self.progress
        )
        for idx in bar:
            self.opt.zero_grad(set_to_none=True)
            loss, logs = objective(
                model,
                self.data.index(idx),
                self.delta[idx],
                len(self.train_idx),
                self.n_obs_train,
                cfg.weights,
                self.init_sd,
                self.sens_w[idx],
            )
            params = [p for g in self.opt.param_groups for p in g["params"]]
            if not torch.isfinite(loss):  # e.g. a stiff excursion of theta blew up the fixed-step solver
                self.skipped += 1
                self.opt.zero_grad(set_to_none=True)
                continue
            loss.backward()
            if not all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params):
                self.skipped += 1
                self.opt.zero_grad(set_to_none=True)
                continue
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            self.opt.step()
            model.project_theta_()
            for k, v in {"loss": float(loss.detach()), **logs}.items():
                sums[k] = sums.get(k, 0.0) + v / len(batches)
            bar.set_postfix(loss=f"{float(loss.detach()):.3g}")
        sums["skipped"] = float(self.skipped)
        self.sched.step()
        return self._after_epoch(sums)

    def _after_epoch(self, logs: dict[str, float]) -> dict[str, float]:
        """The alternating theta step: Gauss-Newton on theta given the networks just trained.

        Why (docs/discovery.md, "Model error"): on ``mapk_feedback`` theta moved by gradient steps
        jointly with the networks stayed within 0.05 of the skeleton MAP's biased k1, or (L-BFGS)
        kept half its bias; solving theta given the networks after each epoch took the log-MAE
        to a third of the skeleton MAP's on the same seed. The optimiser's curvature history
        belongs to the old theta and is dropped."""
        if self.cfg.alternate_nfev and self.cfg.lr_theta > 0:
            self._calibrate("alternate", self.cfg.alternate_nfev, 1)
            if self.cfg.optimizer == "lbfgs":
                self.opt.state.clear()
        return logs

    def _lbfgs_epoch(self) -> dict[str, float]:
        """One L-BFGS step (``lbfgs_iters`` iterations) on the whole training set.

        Why: one Adam step per epoch on a few episodes moves each log-parameter by about its
        learning rate, and 40 of them left the joint phase far from its optimum on
        ``mapk_feedback`` (docs/discovery.md, "Model error"); the deterministic full-batch loss
        is smooth, which is L-BFGS's case. A step that ends non-finite is undone and its
        curvature history dropped (counted in ``skipped``)."""
        cfg, model, idx = self.cfg, self.model, self.train_idx
        params = [p for g in self.opt.param_groups for p in g["params"]]
        before = [p.detach().clone() for p in params]

        def evaluate() -> tuple[torch.Tensor, dict[str, float]]:
            return objective(
                model,
                self.data.index(idx),
                self.delta[idx],
                len(idx),
                self.n_obs_train,
                cfg.weights,
                self.init_sd,
                self.sens_w[idx],
            )

        def closure() -> torch.Tensor:
            self.opt.zero_grad(set_to_none=True)
            loss, _ = evaluate()
            if not torch.isfinite(loss):
                return loss.detach()
            loss.backward()
            return loss

        self.opt.step(closure)
        # the log is the accepted point's: L-BFGS returns the loss at the start, and its last
        # closure call can be a line-search trial point (one extra forward pass per epoch)
        with torch.no_grad():
            loss, logs = evaluate()
        ok = bool(torch.isfinite(loss)) and all(bool(torch.isfinite(p).all()) for p in params)
        if not ok:
            with torch.no_grad():
                for p, b in zip(params, before, strict=True):
                    p.copy_(b)
            self.opt.state.clear()
            self.skipped += 1
            logs = {}
        model.project_theta_()
        self.sched.step()
        final = float(loss) if ok else math.nan
        return {"loss": final, "y": math.nan, **logs, "skipped": float(self.skipped)}

    def validate(self) -> float:
        """Fit the validation episodes' offsets (model frozen), return their measurement loss."""
        if len(self.val_idx) == 0:
            return float("nan")
        v = self.data.index(self.val_idx)
        n_obs = float(v.n_obs)
        if self.init_sd == 0:  # no cell-to-cell variability: no offsets to fit, one forward pass
            with torch.no_grad():
                _, logs = objective(
                    self.model,
                    v,
                    self.delta[self.val_idx],
                    len(self.val_idx),
                    n_obs,
                    LossWeights(pde=0, ode=0, op=0, sens=0, theta=0, init=0),
                    self.init_sd,
                )
            return logs["y"]
        frozen = [p for p in self.model.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            for _ in range(self.cfg.val_steps):
                self.val_opt.zero_grad(set_to_none=True)
                loss, logs = objective(
                    self.model,
                    v,
                    self.delta[self.val_idx],
                    len(self.val_idx),
                    n_obs,
                    LossWeights(pde=0, ode=0, op=0, sens=0, theta=0),
                    self.init_sd,
                )
                loss.backward()
                self.val_opt.step()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        return logs["y"]

    def fit(self, resume: bool = False, progress: bool = True) -> PBHNO:
        """Train until ``epochs`` or early stopping; returns the best model (also saved)."""
        cfg = self.cfg
        self.progress = progress
        if resume and self.ckpt_path.exists():
            stage(f"resuming from {self.ckpt_path}", progress)
            self.load_checkpoint()
            stage(f"resumed at epoch {self.epoch}/{cfg.epochs}", progress)
        elif resume:
            raise CheckpointError(f"{self.ckpt_path}: nothing to resume")
        self._open_logs()
        if cfg.calibrate_nfev and self.epoch == 0 and "calibrate" not in self.calibration:
            stage(
                f"theta calibration through the mechanistic skeleton: up to {cfg.calibrate_nfev} "
                f"Gauss-Newton evaluations x {cfg.calibrate_starts} start(s), each a batched rollout of "
                f"{self.data.n_episodes} episodes with finite-difference Jacobians",
                progress,
            )
            self._calibrate("calibrate", cfg.calibrate_nfev, cfg.calibrate_starts)
            info = self.calibration["calibrate"]
            stage(f"calibration done: objective {info['before']:.4g} -> {info['after']:.4g}", progress)
            self.save_checkpoint()
        if self.epoch == 0 and self.best_state is None and len(self.val_idx):
            # the untrained model is the first candidate: training must beat it on held-out episodes
            stage(f"validating the untrained model on {len(self.val_idx)} held-out episodes", progress)
            self.best_val = self.validate()
            self.best_state = self._snapshot()
            self.save_checkpoint()
        if not len(self.val_idx):
            stage(
                f"no held-out episode ({self.data.n_episodes} episode(s) at val_frac {cfg.val_frac:g}): "
                "validation and early stopping are skipped and the last epoch's model is kept",
                progress,
            )
        stage(
            f"training: epochs {self.epoch + 1}..{cfg.epochs} on {len(self.train_idx)} episodes "
            f"(batch {cfg.batch_size}, early stop after {cfg.patience} epochs without improvement)",
            progress,
        )
        bar = tqdm(
            total=cfg.epochs,
            initial=self.epoch,
            desc="fit PB-HNO",
            unit="epoch",
            disable=not progress,
            file=sys.stderr,
        )
        stopped = False
        while self.epoch < cfg.epochs and not stopped:
            t0 = time.perf_counter()
            logs = self.train_epoch()
            val = self.validate()
            self.epoch += 1
            improved = not math.isfinite(self.best_val) or (math.isfinite(val) and val < self.best_val - 1e-6)
            if not math.isfinite(val):
                improved = True
            if improved:
                self.best_val, self.bad_epochs = (val if math.isfinite(val) else logs["y"]), 0
                self.best_state = self._snapshot()
            else:
                self.bad_epochs += 1
            row = {
                "epoch": self.epoch,
                **({"val_y": val} if len(self.val_idx) else {}),  # no held-out episode: no column
                "lr": self.sched.get_last_lr()[0],
                "seconds": time.perf_counter() - t0,
                **logs,
                **{f"theta/{n}": v for n, v in self.model.theta_dict().items()},
            }
            self.history.append(row)
            self._log(row)
            stopped = self.bad_epochs >= cfg.patience
            self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(
                loss=f"{logs['loss']:.3g}", **({"val": f"{val:.3g}"} if len(self.val_idx) else {})
            )
        bar.close()
        if stopped:
            stage(f"early stop at epoch {self.epoch} (no improvement for {cfg.patience} epochs)", progress)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        if cfg.polish_nfev and "polish" not in self.calibration:
            stage(f"polishing theta given the trained networks ({cfg.polish_nfev} evaluations)", progress)
            self._calibrate("polish", cfg.polish_nfev, 1)
            self.best_state = self._snapshot()
            self.save_checkpoint()
        stage(f"writing {self.run_dir / 'model.pt'}", progress)
        self.model.save(
            self.run_dir / "model.pt",
            extra={
                "fingerprint": self.fingerprint,
                "epochs": self.epoch,
                "best_val": self.best_val,
                "calibration": self.calibration,
            },
        )
        self._close_logs()
        return self.model

    def _calibrate(self, stage: str, nfev: int, starts: int) -> None:
        """Theta by multistart least squares with everything else frozen (:mod:`.calibrate`)."""
        from .calibrate import calibrate_theta

        # theta is shared by every episode, validation ones included (only the networks are early-stopped)
        info = calibrate_theta(
            self.model, self.data, self.delta, nfev, starts, self.cfg.seed, progress=self.progress
        )
        self.calibration[stage] = info

    def _snapshot(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the model state (the best-so-far candidate)."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    # ------------------------------------------------------------------ logs
    def _open_logs(self) -> None:
        self._csv_rows = list(self.history)
        if self.cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=self.epoch + 1)
            except ImportError:  # tensorboard is an optional extra
                self._tb = None

    def _log(self, row: dict[str, float]) -> None:
        self._csv_rows.append(row)
        keys = list(dict.fromkeys(k for r in self._csv_rows for k in r))
        lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in self._csv_rows]
        atomic_write_text(self.run_dir / "log.csv", "\n".join(lines) + "\n")
        if self._tb is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, float) and math.isfinite(v):
                    self._tb.add_scalar(k, v, row["epoch"])

    def _close_logs(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_log(path: str | Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))
