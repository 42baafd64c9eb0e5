"""The task-design and unknown-world verdicts of ``scripts/bench_worlds.py`` are computed from the
records and can fail."""

import csv
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_worlds.py"


def load():
    spec = importlib.util.spec_from_file_location("bench_worlds", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write(path, rows):
    mod = load()
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, mod.FIELDS)
        w.writeheader()
        for task, world, agent, cls, succ in rows:
            w.writerow(
                dict(
                    task=task,
                    world_seed=world,
                    agent=agent,
                    seed=0,
                    target_class=cls,
                    success=succ,
                    final_error=0.1,
                    energy=1,
                    failed=0,
                    group_seconds=1,
                    **{"return": -1},
                )
            )


def records(zero_a, oracle_b, nominal):
    """40 episodes per (agent, class): ``zero_a`` zero-action successes in class a, ``oracle_b``
    oracle successes in class b, ``nominal`` nominal-MPC successes overall."""
    rows = []
    for cls in ("a", "b"):
        for i in range(40):
            rows.append(("T", "0", "zero", cls, int(cls == "a" and i < zero_a)))
            rows.append(("T", "0", "oracle_mpc", cls, int(cls == "a" or i < oracle_b)))
            rows.append(("T", "0", "nominal_mpc", cls, int(i < nominal // 2)))
    return rows


def test_verdicts_hold_and_fail_from_the_records(tmp_path):
    mod = load()
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    write(good, records(zero_a=2, oracle_b=38, nominal=20))  # 5 %, 95 %, 25 % vs 96 %
    write(bad, records(zero_a=3, oracle_b=35, nominal=76))  # 7.5 %, 87.5 %, 95 % vs 94 %
    g, b = mod.summarize(good), mod.summarize(bad)
    assert "holds for every task and class" in g and "FAILS" not in g
    assert "gap learning has to close holds" in g
    assert "T, a: zero 0.075: FAILS" in b and "T, b: oracle_mpc 0.875: FAILS" in b
    assert "does not hold (intervals overlap)" in b


def test_run_in_batches_on_the_named_device_resumes_without_duplicates(tmp_path):
    """``--batch`` is the episode batch and ``--device`` reaches envs and agents (the batch was once
    passed where the device goes); a rerun skips the (task, agent) groups already written."""
    import argparse

    mod = load()
    out = tmp_path / "r.csv"
    a = argparse.Namespace(
        tasks=["pbhno/MAPK-Unknown-v0"],
        worlds="0,1",
        agents=["zero"],
        episodes=3,
        batch=2,
        device="cpu",
        out=str(out),
    )
    mod.run(a)
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 6 and {r["world_seed"] for r in rows} == {"0", "1"}
    assert all(r["agent"] == "zero" and r["failed"] == "0" for r in rows)
    mod.run(a)
    assert len(list(csv.DictReader(out.read_text().splitlines()))) == 6
