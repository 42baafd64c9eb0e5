"""The learning-curves comparison on a tiny configuration (two hidden worlds, two training
seeds): well-formed per-episode records, every agent through the one evaluation function,
resume, pages that recompute from the records, the CLI and config checks."""

import csv
import json
import shutil

import pytest

from pbhno_gym.cli import main
from pbhno_gym.evaluation import episodes
from pbhno_gym.experiments.compare import run_comparison
from pbhno_gym.experiments.compare_config import CompareConfig, load_config, preset
from pbhno_gym.experiments.report import RECORD_FIELDS, read_rows, write_report

_PPO = {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2}
_MPC = {"horizon": 5, "iterations": 4, "warm_iterations": 2}
TINY = {
    "name": "tiny",
    "agents": ["zero", "mpc_nominal", "mpc_surrogate", "mpc_oracle", "ppo", "ppo_dr"],
    "agent_options": {
        "ppo": _PPO,
        "ppo_dr": _PPO,
        "mpc_surrogate": {
            "episodes": [1, 2],
            "epochs": 1,
            "train": {"calibrate_nfev": 2},
            "model": {"hidden": 8, "substeps": 2},
            "mpc": {**_MPC, "estimation": {"window": 2, "iterations": 2}},
        },
        "mpc_nominal": {**_MPC, "estimation": {"window": 2, "iterations": 2}},
        "mpc_oracle": _MPC,
    },
    "envs": [
        {
            "id": "pbhno/MAPK-Unknown-v0",
            "overrides": {"horizon": 12},
            "world_seeds": [0, 1],
            "train_seeds": 2,
            "budget": 256,
            "eval_episodes": 2,
            "curve": [128],
        }
    ],
}
LEARNERS = {"mpc_surrogate", "ppo", "ppo_dr"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny comparison, with a spy on the evaluation function."""
    calls = []
    original = episodes.evaluate_agent

    def spy(agent, env, seeds, **kw):
        calls.append((agent.name, tuple(seeds), tuple(kw.get("world_seeds") or ()), env.world_seed))
        return original(agent, env, seeds, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(episodes, "evaluate_agent", spy)
    out = tmp_path_factory.mktemp("tiny")
    res = run_comparison(
        CompareConfig.from_dict(TINY),
        out / "run",
        docs_dir=out / "docs" / "results" / "compare",
        docs_page=out / "docs" / "results.md",
        progress=False,
    )
    mp.undo()
    return res, calls, out


def test_records_cover_every_world_seed_and_curve_point(tiny_run):
    res, _, _ = tiny_run
    with open(res.files["records"]) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == RECORD_FIELDS
    test_seeds = {str(s) for s in episodes.heldout_seeds(2, "test")}
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["agent"], r["world_seed"], r["train_seed"], int(r["env_samples"])), []).append(r)
    for key, rs in groups.items():  # the same test episodes at every point
        assert {r["episode_seed"] for r in rs} == test_seeds, key
    points = {a: sorted({k[3] for k in groups if k[0] == a}) for a in TINY["agents"]}
    assert points["ppo"] == points["ppo_dr"] == [128, 256]
    assert points["mpc_surrogate"] == [12, 24]  # refitted on 1 and 2 episodes of 12 steps
    for a in ("zero", "mpc_nominal", "mpc_oracle"):
        assert points[a] == [0]
    for a in TINY["agents"]:
        units = {(k[1], k[2]) for k in groups if k[0] == a}
        if a in LEARNERS:  # trained in each world with each seed
            assert units == {(w, s) for w in ("0", "1") for s in ("0", "1")}, a
        else:
            assert units == {("0", ""), ("1", "")}, a
    assert res.skipped == []


def test_every_agent_goes_through_the_one_evaluation_function(tiny_run):
    res, calls, _ = tiny_run
    seeds = tuple(episodes.heldout_seeds(2, "test"))
    # non-learning agents: one batch over both worlds; learners: their own world per evaluation
    batched = [c for c in calls if c[1] == seeds * 2]
    assert sorted(c[0] for c in batched) == ["mpc_nominal", "mpc_oracle", "zero"]
    assert all(c[2] == (0, 0, 1, 1) for c in batched)
    per_world = [c for c in calls if c[1] == seeds]
    assert all(c[2] == (c[3], c[3]) for c in per_world)
    # 2 worlds x 2 seeds x 2 points for each learner
    assert sorted({c[0] for c in per_world}) == sorted(LEARNERS)
    assert len(per_world) == 3 * 8 and len(calls) == len(batched) + len(per_world)


def test_domain_randomized_agent_trains_outside_the_world(tiny_run):
    res, _, _ = tiny_run
    rep = json.loads((res.out_dir / "mapk-unknown-v0" / "ppo_dr" / "w0-s0" / "train_report.json").read_text())
    env = rep["fingerprint"]["env"]
    assert env["randomize_parameters"] is True and env["world_seed"] is None
    rep = json.loads((res.out_dir / "mapk-unknown-v0" / "ppo" / "w1-s0" / "train_report.json").read_text())
    assert rep["fingerprint"]["env"]["world_seed"] == 1


def test_rerun_resumes_from_finished_runs(tiny_run, monkeypatch, tmp_path):
    res, _, _ = tiny_run
    run_dir = shutil.copytree(res.out_dir, tmp_path / "run")  # leave the shared run untouched

    def fail(*a, **k):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(episodes, "evaluate_agent", fail)
    again = run_comparison(CompareConfig.from_dict(TINY), run_dir, progress=False)
    assert again.records == res.records
    monkeypatch.undo()
    cfg = CompareConfig.from_dict(TINY).select(agents=["zero"])  # changed settings: recomputed
    cfg.envs[0].eval_episodes = 3
    changed = run_comparison(cfg, run_dir, progress=False)
    assert len(changed.records) == 3 * 2


def test_pages_recompute_from_committed_records(tiny_run, tmp_path, capsys):
    res, _, out = tiny_run
    docs = out / "docs"
    page = (docs / "results.md").read_text()
    setting = docs / "results" / "compare" / "tiny"
    for f in ("records.csv", "runs.csv", "config.json", "provenance.json", "learning_curves.png"):
        assert (setting / f).is_file(), f
    assert "results/compare/tiny/learning_curves.png" in page and "· git " in page
    assert "the claim " in page and "| mpc_oracle (true model) |" in page
    # regenerating from the copied records alone gives the same text
    copy = shutil.copytree(setting, tmp_path / "compare" / "tiny")
    (copy / "results.md").unlink()
    write_report(copy)
    strip = lambda s: s.replace(str(setting), "X").replace(str(copy), "X")  # noqa: E731
    assert strip((copy / "results.md").read_text()) == strip((setting / "results.md").read_text())
    rc = main(["compare", "--report", str(copy), "--docs", str(tmp_path / "results.md")])
    assert rc == 0 and "oracle's success" in capsys.readouterr().out
    assert (tmp_path / "results.md").read_text().count("## Setting `tiny`") == 1
    assert len(read_rows(copy / "records.csv")) == len(res.records)


def test_reproducible_with_fixed_seed_via_cli(tiny_run, tmp_path):
    res, _, _ = tiny_run
    cfg = dict(TINY, agents=["zero", "ppo", "mpc_oracle"])
    cfg_path = tmp_path / "tiny.json"
    cfg_path.write_text(json.dumps(cfg))
    rc = main(
        ["compare", "--config", str(cfg_path), "--out", str(tmp_path / "run2"), "--no-docs", "--no-progress"]
    )
    assert rc == 0
    again = read_rows(tmp_path / "run2" / "records.csv")
    base = [r for r in read_rows(res.files["records"]) if r["agent"] in cfg["agents"]]
    order = lambda r: (r["agent"], r["world_seed"], r["train_seed"], r["env_samples"], r["episode_seed"])  # noqa: E731
    assert sorted(again, key=order) == sorted(base, key=order)
    assert load_config(tmp_path / "run2" / "config.json").to_dict() == CompareConfig.from_dict(cfg).to_dict()


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="unknown agent 'ppo2'"):
        CompareConfig.from_dict({**TINY, "agents": ["ppo2"]}).validate()
    env = TINY["envs"][0]
    for field, value, match in (
        ("budget", 0, r"envs\[0\].budget"),
        ("train_seeds", 0, r"envs\[0\].train_seeds"),
        ("world_seeds", [1, 1], r"envs\[0\].world_seeds"),
        ("curve", [0], r"envs\[0\].curve"),
        ("budgets", {"ppo": -1}, r"envs\[0\].budgets"),
    ):
        with pytest.raises(ValueError, match=match):
            CompareConfig.from_dict({**TINY, "envs": [dict(env, **{field: value})]}).validate()
    with pytest.raises(ValueError, match="unknown field"):
        CompareConfig.from_dict({**TINY, "envs": [dict(env, horizon=3)]})
    with pytest.raises(ValueError, match="randomizes"):
        CompareConfig.from_dict(
            {**TINY, "envs": [dict(env, overrides={"world_seed": None, "randomize_parameters": True})]}
        ).validate()
    for name in ("quick", "standard", "full"):
        assert preset(name).validate().envs


def test_curve_marks_are_log_spaced_and_end_at_the_budget():
    cfg = CompareConfig.from_dict({**TINY, "envs": [dict(TINY["envs"][0], curve=[], curve_points=5)]})
    m = cfg.envs[0].marks("ppo")
    assert m[-1] == 256 and m == sorted(m) and len(m) == 5
    assert m[0] == 3  # budget / 100, rounded
    cfg.envs[0].budgets = {"ppo": 1000}
    assert cfg.envs[0].marks("ppo")[-1] == 1000 and cfg.envs[0].marks("ppo_dr")[-1] == 256


def test_missing_optional_dependency_skips_the_agent(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import -> ImportError
    monkeypatch.delitem(sys.modules, "pbhno_gym.agents.sb3", raising=False)
    cfg = CompareConfig.from_dict(TINY).select(agents=["zero", "ppo"])
    res = run_comparison(cfg, tmp_path / "run", progress=False)
    assert {r["agent"] for r in res.records} == {"zero"}
    assert "pbhno-gym[rl]" in res.skipped[0]["reason"]


def test_curve_points_are_not_evaluated_twice_on_resume(tmp_path):
    from pbhno_gym.experiments.curves import CurveEvaluator

    calls = []
    path = tmp_path / "curve.json"
    ev = CurveEvaluator(lambda a: calls.append(a) or {"success_rate": 0.5}, [10, 20], path)
    ev("agent", 10)
    resumed = CurveEvaluator(lambda a: calls.append(a) or {"success_rate": 0.9}, [10, 20], path)
    assert resumed("agent", 10)["success_rate"] == 0.5 and len(calls) == 1  # re-reached: kept
    resumed("agent", 20)
    assert [p["env_samples"] for p in resumed.points] == [10, 20] and len(calls) == 2


def test_agent_train_seeds_override_the_env_default():
    env = dict(TINY["envs"][0], agent_train_seeds={"mpc_surrogate": 1})
    cfg = CompareConfig.from_dict({**TINY, "envs": [env]}).validate()
    assert cfg.envs[0].seeds_for("mpc_surrogate") == 1 and cfg.envs[0].seeds_for("ppo") == 2
    with pytest.raises(ValueError, match=r"envs\[0\].agent_train_seeds"):
        CompareConfig.from_dict({**TINY, "envs": [dict(env, agent_train_seeds={"ppo": 0})]}).validate()


def test_two_workers_give_the_records_of_a_serial_run(tmp_path):
    """``workers=2`` runs the units in spawned processes; every run has its own seeds, so the
    records (and their order) must equal a serial run's, to the bit."""
    small = {**TINY, "agents": ["zero", "ppo"]}
    small["envs"] = [{**TINY["envs"][0], "train_seeds": 1}]
    serial = run_comparison(CompareConfig.from_dict(small), tmp_path / "serial", progress=False)
    pooled = run_comparison(
        CompareConfig.from_dict(small), tmp_path / "pooled", progress=False, workers=2, threads=1
    )
    assert len(serial.records) == len(pooled.records) > 0
    assert pooled.records == serial.records
    assert [r["agent"] for r in pooled.runs] == [r["agent"] for r in serial.runs]
    with pytest.raises(ValueError, match="workers"):
        run_comparison(CompareConfig.from_dict(small), tmp_path / "bad", progress=False, workers=0)
