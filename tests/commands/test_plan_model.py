"""``pbhno plan --model``: fit a tiny PB-HNO through ``surrogate.fit``, then plan through it."""

import json

import pytest
import torch

from pbhno_gym.cli import build_parser
from pbhno_gym.data import collect_episodes
from pbhno_gym.surrogate import PBHNO, TrainConfig, fit, load

TINY_MPC = """
[default]
horizon = 2
iterations = 2
warm_iterations = 1

[default.estimation]
window = 2
iterations = 2
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 1-epoch PB-HNO of a short-horizon MAPK env, saved by ``fit``."""
    torch.manual_seed(0)
    ds = collect_episodes("pbhno/MAPK-v0", 4, num_envs=4, seed=1, progress=False, horizon=4)
    out = tmp_path_factory.mktemp("fit")
    mcfg = dict(width=8, modes=6, n_layers=2, hidden=16, solver="rk4", adjoint=False, substeps=4)
    tcfg = TrainConfig(epochs=1, batch_size=4, sens_every=0, tensorboard=False, calibrate_nfev=0)
    res = fit(ds, out, {**mcfg, "free_params": ["k5"]}, tcfg, progress=False)
    assert res.model_path == out / "model.pt" and res.model_path.exists()
    assert res.report_paths is not None and res.report_paths[1].exists()
    return res.model_path


def _plan(argv):
    args = build_parser().parse_args(["plan", *argv])
    return args.func(args)


def test_load_gives_the_saved_model(tiny_model):
    m = load(tiny_model)
    assert isinstance(m, PBHNO) and m.spec.id == "pbhno/MAPK-v0" and m.spec.horizon == 4


def test_plan_through_saved_model_reports_results(tiny_model, tmp_path, capsys):
    (tmp_path / "mpc.toml").write_text(TINY_MPC)
    out = tmp_path / "res.json"
    argv = ["--model", str(tiny_model), "--episodes", "2", "--config", str(tmp_path / "mpc.toml")]
    assert _plan([*argv, "--overrides", '{"horizon": 2}', "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pbhno/MAPK-v0" in text and "PB-HNO" in text and "success rate" in text
    res = json.loads(out.read_text())
    assert len(res["seeds"]) == 2 and res["model"] == str(tiny_model) and len(res["returns"]) == 2


def test_plan_refuses_an_env_other_than_the_models(tiny_model):
    with pytest.raises(SystemExit, match="--model.*pbhno/MAPK-v0.*pbhno/Wnt-v1"):
        _plan(["--model", str(tiny_model), "--env", "pbhno/Wnt-v1", "--episodes", "1"])
