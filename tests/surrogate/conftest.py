"""Shared small datasets for the surrogate tests (built once per session)."""

import pytest
import torch

from pbhno_gym.data import collect_episodes

TRUE_MAPK = {"k5": 1.6, "k6": 0.35}
SMALL_WNT = {
    "layout": {
        "ny": 24,
        "nx": 24,
        "length_x": 96.0,
        "rows": 2,
        "cols": 2,
        "cell_size": 16.0,
        "source_width": 16.0,
    },
    "observation": {"n_ligand_samples": 8},
    "target": {"choices": [1, 2]},
}


@pytest.fixture(scope="session")
def mapk_data():
    torch.manual_seed(0)
    return collect_episodes(
        "pbhno/MAPK-v0",
        12,
        num_envs=12,
        seed=1,
        progress=False,
        horizon=20,
        true_parameters=TRUE_MAPK,
        observation={"sample_prob": 0.8},
    )


@pytest.fixture(scope="session")
def wnt_data():
    return collect_episodes("pbhno/Wnt-v1", 4, num_envs=4, seed=2, progress=False, horizon=6, **SMALL_WNT)


def quick_config(spec: dict, **kw) -> dict:
    base = dict(
        env_spec=spec, width=8, modes=6, n_layers=2, hidden=32, solver="rk4", adjoint=False, substeps=4
    )
    base.update(kw)
    return base
