"""The FNO baseline's disk cache holds plain data (weights_only loading) and round-trips its networks."""

import numpy as np
import pytest
import torch

from pbhno_gym.discovery.methods import fno_plain as f
from pbhno_gym.utils.io import CheckpointError, atomic_torch_save, safe_torch_load


def test_fno_cache_round_trips_as_plain_data_and_refuses_pickles(tmp_path):
    torch.manual_seed(0)
    enc, fc = f._Encoder(5, 3, 8, 4, 2).eval(), f._Forecaster(6, 2, 8, 4, 2).eval()
    blob = dict(
        device="cpu",
        encoder=enc,
        forecaster=fc,
        u_scale=np.array([2.0, 10.0]),
        history={"encoder": {"train": [1.0], "val": [1.0], "best_val": np.float64(1.0)}},
        n_train=4,
    )
    atomic_torch_save(f._to_plain(blob), tmp_path / "c.pt")
    back = f._from_plain(safe_torch_load(tmp_path / "c.pt"))
    x = torch.randn(2, 3, 5, 10)
    assert torch.equal(enc(x)[0], back["encoder"](x)[0]) and not back["forecaster"].training
    np.testing.assert_array_equal(back["u_scale"], blob["u_scale"])
    torch.save(blob, tmp_path / "old.pt")  # the old cache format pickled the modules themselves
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        safe_torch_load(tmp_path / "old.pt")
