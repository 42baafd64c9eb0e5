"""The comparison runner on a tiny configuration: a well-formed table and figures, every agent
through the one evaluation function, reproducible results, resume, the CLI and config checks."""

import csv
import json
import shutil

import pytest

from pbhno_gym.agents import available_agents
from pbhno_gym.cli import main
from pbhno_gym.evaluation import episodes
from pbhno_gym.experiments.compare import run_comparison
from pbhno_gym.experiments.compare_config import CompareConfig, load_config, preset
from pbhno_gym.experiments.report import COLUMNS

TINY = {
    "name": "tiny",
    "agents": ["zero", "constant", "random", "ppo", "casadi_nmpc", "mpc_surrogate", "mpc_oracle"],
    "agent_options": {
        "ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2},
        "mpc_surrogate": {
            "episodes": 3,
            "epochs": 2,
            "model": {"hidden": 16, "substeps": 2},
            "mpc": {"horizon": 5, "iterations": 4, "warm_iterations": 2, "estimation": {"window": 2}},
        },
        "mpc_oracle": {"horizon": 5, "iterations": 4, "warm_iterations": 2},
    },
    "envs": [
        {
            "id": "pbhno/MAPK-v0",
            "overrides": {"horizon": 20},
            "budget": 256,
            "eval_episodes": 4,
            "curve_points": 2,
            "curve_episodes": 2,
        }
    ],
}
TIMING = {"train_wall_s", "latency_ms", "call_ms", "loaded"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny comparison, with a spy on the evaluation function."""
    calls = []
    original = episodes.evaluate_agent

    def spy(agent, env, seeds, **kw):
        calls.append((agent.name, type(agent).__name__, tuple(seeds)))
        return original(agent, env, seeds, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(episodes, "evaluate_agent", spy)
    out = tmp_path_factory.mktemp("tiny")
    res = run_comparison(
        CompareConfig.from_dict(TINY), out / "run", docs_path=out / "docs" / "results.md", progress=False
    )
    mp.undo()
    return res, calls, out


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_table_is_well_formed(tiny_run):
    res, _, out = tiny_run
    rows = _read_csv(res.files["csv"])
    assert list(rows[0].keys()) == COLUMNS
    expected = [a for a in TINY["agents"] if a in available_agents()]
    assert [r["agent"] for r in rows] == expected
    for r in rows:
        lo, rate, hi = float(r["success_lo"]), float(r["success_rate"]), float(r["success_hi"])
        assert 0.0 <= lo <= rate <= hi <= 1.0
        assert float(r["final_error_lo"]) <= float(r["final_error"]) <= float(r["final_error_hi"])
        assert int(r["episodes"]) == 4 and r["device"]
        learns = r["agent"] in ("ppo", "mpc_surrogate")
        assert int(r["env_samples"]) == (int(r["env_samples"]) if learns else 0)
    assert int(next(r for r in rows if r["agent"] == "ppo")["env_samples"]) >= 256
    assert int(next(r for r in rows if r["agent"] == "mpc_surrogate")["env_samples"]) == 3 * 20  # <= budget
    assert float(next(r for r in rows if r["agent"] == "casadi_nmpc")["success_rate"]) == 1.0
    md = res.files["md"].read_text()
    assert "| casadi_nmpc (true model) |" in md and "| mpc_oracle (true model) |" in md
    assert "mpc_surrogate success" in md  # the sample-efficiency claim is checked, whatever it finds
    assert res.skipped == []
    for key in ("learning_curves", "trajectories_mapk-v0"):
        assert res.files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    docs = (out / "docs" / "results.md").read_text()
    assert (
        "results/learning_curves.png" in docs and (out / "docs" / "results" / "learning_curves.png").is_file()
    )
    cfg = json.loads((res.out_dir / "config.json").read_text())
    assert cfg["config"]["envs"][0]["budget"] == 256 and cfg["provenance"]["torch"]


def test_every_agent_goes_through_the_one_evaluation_function(tiny_run):
    res, calls, _ = tiny_run
    test_seeds = tuple(episodes.heldout_seeds(4, "test"))
    evaluated = {name for name, _, seeds in calls if seeds == test_seeds}
    assert evaluated == {r["agent"] for r in res.rows}
    curve_calls = [c for c in calls if c[2] == tuple(episodes.heldout_seeds(2, "validation"))]
    # two learning-curve points for PPO, one after the surrogate fit: the same function
    assert sorted(c[0] for c in curve_calls) == ["mpc_surrogate", "ppo", "ppo"]
    curve = json.loads((res.out_dir / "mapk-v0" / "ppo" / "curve.json").read_text())
    assert [p["env_samples"] for p in curve] == [128, 256]


def test_rerun_resumes_from_finished_rows(tiny_run, monkeypatch, tmp_path):
    res, _, _ = tiny_run
    run_dir = shutil.copytree(res.out_dir, tmp_path / "run")  # leave the shared run untouched

    def fail(*a, **k):
        raise AssertionError("a finished row was recomputed")

    monkeypatch.setattr(episodes, "evaluate_agent", fail)
    again = run_comparison(CompareConfig.from_dict(TINY), run_dir, progress=False)
    assert again.rows == res.rows
    # changed settings are not served from the cache
    monkeypatch.undo()
    cfg = CompareConfig.from_dict(TINY).select(agents=["zero"])
    cfg.envs[0].eval_episodes = 3
    changed = run_comparison(cfg, run_dir, progress=False)
    assert [r["episodes"] for r in changed.rows] == [3]


def test_reproducible_with_fixed_seed_via_cli(tiny_run, tmp_path, capsys):
    res, _, _ = tiny_run
    cfg_path = tmp_path / "tiny.json"
    cfg_path.write_text(json.dumps(TINY))
    rc = main(
        ["compare", "--config", str(cfg_path), "--out", str(tmp_path / "run2"), "--no-docs", "--no-progress"]
    )
    assert rc == 0 and "casadi_nmpc" in capsys.readouterr().out
    a, b = _read_csv(res.files["csv"]), _read_csv(tmp_path / "run2" / "results.csv")
    strip = [{k: v for k, v in r.items() if k not in TIMING} for r in a]
    assert strip == [{k: v for k, v in r.items() if k not in TIMING} for r in b]
    # the run directory's config.json reproduces the run
    assert load_config(tmp_path / "run2" / "config.json").to_dict() == CompareConfig.from_dict(TINY).to_dict()


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="unknown agent 'ppo2'"):
        CompareConfig.from_dict({**TINY, "agents": ["ppo2"]}).validate()
    bad_env = dict(TINY["envs"][0], budget=0)
    with pytest.raises(ValueError, match=r"envs\[0\].budget"):
        CompareConfig.from_dict({**TINY, "envs": [bad_env]}).validate()
    with pytest.raises(ValueError, match="unknown field"):
        CompareConfig.from_dict({**TINY, "envs": [dict(TINY["envs"][0], horizon=3)]})
    with pytest.raises(ValueError, match="layout"):
        CompareConfig.from_dict(
            {**TINY, "envs": [dict(TINY["envs"][0], overrides={"layout": {"nz": 2}})]}
        ).validate()
    for name in ("quick", "full"):
        assert preset(name).validate().envs


def test_missing_optional_dependency_skips_the_agent(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "casadi", None)  # import casadi -> ImportError
    monkeypatch.delitem(sys.modules, "pbhno_gym.agents.casadi_nmpc", raising=False)
    cfg = CompareConfig.from_dict(TINY).select(agents=["zero", "casadi_nmpc"])
    res = run_comparison(cfg, tmp_path / "run", progress=False)
    assert [r["agent"] for r in res.rows] == ["zero"]
    assert "pbhno-gym[control]" in res.skipped[0]["reason"]
