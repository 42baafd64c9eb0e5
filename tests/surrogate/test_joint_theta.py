"""Algorithm 1's joint phase: after the skeleton calibration theta trains with the networks, and
the anti-absorption penalty measures the part of the correction theta could produce instead."""

import numpy as np
import torch

from pbhno_gym.discovery import get_design
from pbhno_gym.discovery.design import make_dataset
from pbhno_gym.surrogate.losses import absorbed_part
from pbhno_gym.surrogate.method import ABLATIONS, DEFAULTS, _with_noise
from pbhno_gym.surrogate.model import PBHNO, PBHNOConfig
from pbhno_gym.surrogate.train import TrainConfig, Trainer


def test_absorbed_part_is_the_projection_onto_the_sensitivities():
    g = torch.Generator().manual_seed(0)
    G = torch.randn(40, 3, 2, generator=g, dtype=torch.float64)
    inside = G @ torch.tensor([0.7, -0.2], dtype=torch.float64)
    assert torch.isclose(absorbed_part(inside, G), inside.pow(2).mean(), rtol=1e-4)
    Gf = G.reshape(-1, 2)
    r = torch.randn(120, generator=g, dtype=torch.float64)
    orth = r - Gf @ torch.linalg.lstsq(Gf, r[:, None]).solution[:, 0]
    assert float(absorbed_part(orth.reshape(40, 3), G)) < 1e-10


def test_theta_trains_with_the_networks_after_calibration(tmp_path):
    """The discovery method's defaults let theta move (lr_theta > 0, penalty on); a few joint
    epochs from the skeleton's start give theta a gradient and change it (fails if it is held)."""
    assert DEFAULTS["lr_theta"] > 0 and DEFAULTS["loss"]["orth"] > 0
    assert ABLATIONS["pbhno_held"][3] == {"lr_theta": 0.0}
    torch.set_num_threads(1)
    d = get_design("mapk_feedback", n_times=10, noise=0.02)
    ds = _with_noise(make_dataset(d, 0))
    cfg = PBHNOConfig(
        env_spec=ds.meta["spec"],
        free_params=list(d.free),
        hidden=16,
        solver="rk4",
        adjoint=False,
        substeps=4,
        correction_cap=4.0,
        design=ds.meta["design"],
    )
    torch.manual_seed(0)
    model = PBHNO(cfg)
    start = model.log_theta_free.detach().clone()
    w = dict(DEFAULTS["loss"])
    from pbhno_gym.surrogate.losses import LossWeights

    tc = TrainConfig(
        epochs=3,
        batch_size=4,
        lr=1e-2,
        lr_theta=DEFAULTS["lr_theta"],
        val_frac=0.34,
        sens_every=0,
        weights=LossWeights(**w),
        tensorboard=False,
    )
    trainer = Trainer(model, ds, tc, tmp_path)
    logs = trainer.train_epoch()
    assert "orth" in logs and np.isfinite(logs["orth"])
    assert model.log_theta_free.grad is not None and float(model.log_theta_free.grad.abs().sum()) > 0
    moved = (model.log_theta_free.detach() - start).abs()
    assert float(moved.max()) > 0.5 * DEFAULTS["lr_theta"]  # Adam's first step is ~lr per entry
