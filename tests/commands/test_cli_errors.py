"""Careless command lines: exit status 2 and one line naming the option (no traceback), in process."""

from __future__ import annotations

import numpy as np
import pytest

from pbhno_gym.cli import main
from pbhno_gym.data import collect_episodes, load_dataset

MAPK = ["--env", "pbhno/MAPK-v0"]


def _tsv(path, rows: list[str]) -> str:
    path.write_text("observableId\tsimulationConditionId\ttime\tmeasurement\n" + "\n".join(rows) + "\n")
    return str(path)


def _err(capsys, argv: list[str]) -> str:
    """A run-time user error: main returns 2."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    return err


def _run(capsys, argv: list[str]) -> str:
    """A parse-time error: argparse exits with 2."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    return err


def _one_line(err: str, *needles: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["collect", *MAPK, "--out", "x.npz", "--episodes", "0"], ["--episodes", ">= 1"]),
        (["collect", *MAPK, "--out", "x.npz", "--num-envs", "-2"], ["--num-envs"]),
        (["collect", *MAPK, "--out", "x.npz", "--seed", "-1"], ["--seed"]),
        (["collect", *MAPK, "--out", "x.npz", "--overrides", "{bad"], ["--overrides", "invalid JSON"]),
        (["collect", *MAPK, "--out", "x.npz", "--theta", '{"k5": -1}'], ["--theta", "'k5'", "positive"]),
        (["collect", *MAPK, "--out", "x.npz", "--theta", "[1]"], ["--theta", "JSON object"]),
        (["plan", *MAPK, "--episodes", "0"], ["--episodes"]),
        (["plan", *MAPK, "--overrides", "nope"], ["--overrides", "invalid JSON"]),
        (["plan", *MAPK, "--threads", "0"], ["--threads"]),
        (["fit", "--data", "d.npz", "--out", "r", "--epochs", "-3"], ["--epochs", ">= 1"]),
        (["fit", "--data", "d.npz", "--out", "r", "--lr", "0"], ["--lr"]),
        (["fit", "--data", "d.npz", "--out", "r", "--lr-theta", "nan"], ["--lr-theta"]),
        (["fit", "--data", "d.npz", "--out", "r", "--model-config", "{width: 3}"], ["--model-config"]),
        (["fit", "--data", "d.npz", "--out", "r", "--weights", "1"], ["--weights"]),
        (["fit", "--data", "d.npz", "--out", "r", "--ensemble", "0"], ["--ensemble"]),
        (["compare", "--budget", "0"], ["--budget"]),
        (["compare", "--eval-episodes", "x"], ["--eval-episodes"]),
        (["identify", "--pathway", "mapk", "--seed", "-4"], ["--seed"]),
        (["reproduce", "table1", "--seeds", "0"], ["--seeds"]),
        (["reproduce", "table1", "--settings", "{"], ["--settings"]),
        (["demo", "--seed", "-1"], ["--seed"]),
        (["zoo", "--algo", "dqn"], ["--algo"]),
    ],
)
def test_parse_errors_are_one_line(capsys, argv, needles):
    _one_line(_run(capsys, argv), f"pbhno {argv[0]}:", *needles)


def test_runtime_user_errors_are_one_line(capsys, tmp_path):
    out = str(tmp_path / "x.npz")
    cases = [
        (["collect", "--env", "pbhno/Nope-v0", "--out", out], ["no spec for 'pbhno/Nope-v0'"]),
        (["collect", *MAPK, "--out", out, "--theta", '{"nope": 1}'], ["--theta", "unknown parameter 'nope'"]),
        (["collect", *MAPK, "--out", out, "--overrides", '{"target": {"tolerance": -1}}'], ["tolerance"]),
        (["collect", *MAPK, "--out", out, "--overrides", '{"layout": {"ny": -8}}'], ["spec.layout.ny"]),
        (["fit", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "r")], ["missing.npz"]),
        (["fit", "--out", str(tmp_path / "r")], ["give --data"]),
    ]
    for argv, needles in cases:
        _one_line(_err(capsys, argv), f"pbhno {argv[0]}:", *needles)


def test_malformed_toml_names_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[default\nhorizon = 3\n")
    _one_line(_err(capsys, ["plan", *MAPK, "--config", str(bad)]), "pbhno plan:", "bad.toml", "TOML")
    _one_line(_err(capsys, ["compare", "--config", str(bad)]), "pbhno compare:", "bad.toml", "TOML")
    _one_line(_err(capsys, ["collect", "--env", str(bad), "--out", "x.npz"]), "bad.toml", "TOML")


def test_measurement_tables_refuse_far_times_and_impossible_fractions(capsys, tmp_path):
    run = ["fit", *MAPK, "--out", str(tmp_path / "r")]
    far = _tsv(tmp_path / "far.tsv", ["Z_cell0\tc1\t0\t0.1", "Z_cell0\tc1\t10000000\t0.3"])
    _one_line(_err(capsys, [*run, "--measurements", far]), "far.tsv", "'time'", "horizon [0, 60] min")
    for value in ("-0.7", "25"):
        frac = _tsv(tmp_path / "frac.tsv", ["Z_cell0\tc1\t0\t0.1", f"Z_cell0\tc1\t5\t{value}"])
        _one_line(_err(capsys, [*run, "--measurements", frac]), "frac.tsv", "'measurement'", "fraction")


def test_debug_shows_the_traceback(capsys):
    for argv in (
        ["--debug", "collect", "--env", "pbhno/Nope-v0", "--out", "x.npz"],
        ["collect", "--env", "pbhno/Nope-v0", "--out", "x.npz", "--debug"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and "SpecError" in err
        assert err.strip().splitlines()[-1].startswith("pbhno collect: no spec for 'pbhno/Nope-v0'")


def test_collect_theta_applies_the_parameters(capsys, tmp_path):
    kw = dict(n_episodes=2, num_envs=2, seed=3, progress=False, horizon=8)
    base = collect_episodes("pbhno/MAPK-v0", **kw)
    moved = collect_episodes("pbhno/MAPK-v0", true_parameters={"k5": 3.0}, **kw)
    assert np.array_equal(base["actions"], moved["actions"])
    assert not np.allclose(base["x"], moved["x"])
    k5 = base.meta["param_names"].index("k5")
    assert np.allclose(np.exp(moved["log_theta"][:, k5]), 3.0)
    assert moved.meta["true_parameters"] == {"k5": 3.0} and base.meta["true_parameters"] == {}
    out = tmp_path / "d.npz"
    argv = ["collect", *MAPK, "--episodes", "1", "--out", str(out), "--theta", '{"k5": 3.0}']
    assert main([*argv, "--overrides", '{"horizon": 8}']) == 0
    ds = load_dataset(out)
    assert ds.meta["true_parameters"] == {"k5": 3.0}
    assert np.allclose(np.exp(ds["log_theta"][:, k5]), 3.0)
    assert ds.meta["spec"]["parameters"] == {}  # the spec (the prior) keeps its nominal values
