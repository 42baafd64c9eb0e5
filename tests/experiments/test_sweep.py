"""Sweeps resume after a lost task record; experiments write their reports; the CLI runs."""

import json

import numpy as np
import pytest

from pbhno_gym.cli import main
from pbhno_gym.experiments.reproduce import EXPERIMENTS, reproduce
from pbhno_gym.experiments.sweep import Task, load_results, run_sweep

TASKS = [
    Task("mapk_smooth", 0, "nominal", tag="t"),
    Task("mapk_smooth", 1, "map", settings={"jac_mode": "fd"}, tag="t"),
]


def _sweep_resumes(tmp_path, **kw):
    out = tmp_path / "sweep"
    first = run_sweep(TASKS, out, progress=False, **kw)
    assert [r["status"] for r in first] == ["ok", "ok"]
    stamp = {r["id"]: r["wall_s"] for r in first}
    (out / "tasks" / f"{TASKS[1].id}.json").unlink()  # lose one finished task
    again = run_sweep(TASKS, out, progress=False, **kw)
    assert again[0]["wall_s"] == stamp[TASKS[0].id]  # the surviving record was not recomputed
    assert again[1]["wall_s"] != stamp[TASKS[1].id]  # the lost one was
    np.testing.assert_allclose(again[1]["fit"]["log_theta"], first[1]["fit"]["log_theta"], rtol=1e-8)
    assert [r["id"] for r in load_results(out)] == sorted(t.id for t in TASKS)
    return again


def test_two_task_sweep_resumes_in_process(tmp_path):
    recs = _sweep_resumes(tmp_path)
    assert recs[1]["metrics"]["mae"] < recs[0]["metrics"]["mae"]  # fitting beats the prior mean


@pytest.mark.slow
def test_two_task_sweep_resumes_on_local_ray(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'pbhno-gym[discovery]')")
    _sweep_resumes(tmp_path, executor="ray", ray_num_cpus=2)


def test_failed_and_not_applicable_tasks_are_recorded(tmp_path):
    recs = run_sweep(
        [
            Task("mapk_smooth", 0, "pinn_pde", tag="x"),
            Task("mapk_smooth", 0, "sbinn", settings={"bogus": 1}, tag="x"),
        ],
        tmp_path,
        progress=False,
    )
    assert recs[0]["status"] == "n/a" and "ligand" in recs[0]["message"]
    assert recs[1]["status"] == "failed" and "bogus" in recs[1]["message"]


def test_counterfactual_experiment_end_to_end(tmp_path):
    res = reproduce(
        "counterfactual",
        quick=True,
        methods=["nominal", "map"],
        seeds=1,
        design="mapk_smooth",
        method_settings={"map": {"jac_mode": "fd"}},
        results_dir=tmp_path / "res",
        runs_dir=tmp_path / "runs",
        progress=False,
    )
    out = tmp_path / "res" / "counterfactual" / "quick"
    assert res["n_failed"] == 0 and res["n_tasks"] == 2
    md = (out / "counterfactual.md").read_text()
    assert "| nominal |" in md and "| map |" in md and (out / "counterfactual.png").stat().st_size > 1000
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["seeds"] == [0] and cfg["design"]["name"] == "mapk_smooth"
    assert cfg["method_settings"]["map"]["jac_mode"] == "fd"
    rows = {
        line.split(",")[0]: line.split(",")
        for line in (out / "counterfactual.csv").read_text().splitlines()[1:]
    }
    assert float(rows["map"][2]) < float(rows["nominal"][2])  # fitted model forecasts better than the prior


def test_table_and_figure_reports_from_records(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for s in range(12):
        for m, scale in (("mle", 0.05), ("sbinn", 0.1)):
            err = rng.normal(0, scale, 5)
            recs.append(
                dict(
                    task=dict(method=m, seed=s),
                    status="ok",
                    wall_s=1.0,
                    noise=0.2,
                    metrics=dict(
                        err=err.tolist(),
                        ape=(100 * np.abs(np.expm1(err))).tolist(),
                        mae=float(np.abs(err).mean()),
                        mape=float(100 * np.abs(np.expm1(err)).mean()),
                        covered=[True] * 4 + [False],
                    ),
                )
            )
        recs.append(
            dict(task=dict(method="crlb", seed=s), status="ok", wall_s=1.0, noise=0.2, crlb_sd=[0.05] * 5)
        )
    recs.append(dict(task=dict(method="pinn_pde", seed=0), status="n/a", message="needs ligand", wall_s=0.0))
    cfg = dict(
        design="notch_sparse",
        seeds=list(range(12)),
        paper_seeds=list(range(10)),
        methods=["mle", "sbinn", "pinn_pde"],
        quick=True,
        free=["a", "b", "c", "d", "e"],
    )
    EXPERIMENTS["table1"].report(recs, cfg, tmp_path)
    md = (tmp_path / "table1.md").read_text()
    assert "| mle | 0.0" in md and "n/a: needs ligand" in md and "80%" in md and "0.098 (0.030)" in md
    assert "sqrt(2/pi) x CRLB = 0.040" in md
    EXPERIMENTS["fig1"].report(recs, dict(cfg, noises=[0.2]), tmp_path)
    assert (tmp_path / "fig1.png").stat().st_size > 1000 and "| crlb | 0.040 |" in (
        tmp_path / "fig1.md"
    ).read_text()


def test_cli_identify(tmp_path, capsys):
    assert main(["identify", "--pathway", "notch", "--observed", "N", "H", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "identify.md").read_text()
    assert "rank 19 of 21" in md and "delta_D: -1, sigma: 1" in md
    with pytest.raises(SystemExit):
        main(["reproduce", "table9"])
