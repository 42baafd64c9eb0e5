"""``pbhno fit --method map``: the mechanistic MAP on the same measurement table as PB-HNO's fit."""

import json

import numpy as np

from pbhno_gym.cli import main
from tests.surrogate.test_offgrid import FREE, TRUTH, synthetic_table


def test_fit_method_map_reads_the_table_and_reports_intervals(tmp_path, capsys):
    mp, cp, spec = synthetic_table(tmp_path, 0)
    from pbhno_gym.envs import list_specs

    text = list_specs()["pbhno/MAPK-v0"].read_text()  # the table's spec: 16 steps, X, Y, Z measured
    text = text.replace('id = "pbhno/MAPK-v0"', 'id = "user/MAPK-table"').replace(
        "horizon = 60", "horizon = 16"
    )
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(text.replace('species = ["Z"]', 'species = ["X", "Y", "Z"]'))
    out = tmp_path / "run"
    argv = ["fit", "--measurements", str(mp), "--conditions", str(cp), "--env", str(spec_path)]
    rc = main([*argv, "--method", "map", "--free", ",".join(FREE), "--out", str(out), "--quiet"])
    assert rc == 0
    rep = json.loads((out / "theta.json").read_text())
    assert tuple(rep["names"]) == FREE and (out / "theta.md").exists()
    # the table identifies both parameters: the estimate moved off the prior mean toward the truth
    from pbhno_gym.envs import build

    nominal = build(spec).sim.params.log_theta(spec.parameters).double().numpy()
    idx = [build(spec).sim.params.names.index(n) for n in FREE]
    offset = np.asarray(rep["log_theta"]) - nominal[idx]
    assert np.allclose(offset, [TRUTH[n] for n in FREE], atol=0.15), offset
    assert "95% interval" in capsys.readouterr().out


def test_fit_method_map_refuses_env_rollouts(tmp_path, capsys):
    from pbhno_gym.data import collect_episodes

    path = tmp_path / "d.npz"
    collect_episodes("pbhno/MAPK-v0", 2, seed=0, out=path, progress=False, horizon=3)
    rc = main(["fit", "--data", str(path), "--method", "map", "--out", str(tmp_path / "r"), "--quiet"])
    assert rc != 0 and "env-rollout dataset" in capsys.readouterr().err
