"""The MPC-vs-RL comparison: learning curves from zero samples in unknown worlds.

For every env of the config, every agent is run in every hidden world (``EnvRun.world_seeds``):

* learning agents (RL, MPC through the fitted PB-HNO) train in each world separately, with
  ``train_seeds`` seeds each, and are evaluated at the curve's env-sample counts (RL) or after
  each fit on a growing dataset (``mpc_surrogate``);
* agents that do not learn (references, nominal/adaptive/oracle MPC) are one point at 0 samples,
  evaluated on all worlds in one batch.

Every evaluation runs the same held-out test episodes in each world through
:func:`pbhno_gym.evaluation.evaluate_agent`, and every episode becomes one row of
``records.csv`` (env, agent, world, training seed, env samples, episode, success, final error,
energy, return). Tables, curves and the claim (env samples to reach 80 % / 90 % of the oracle's
success, with bootstrap intervals over worlds and training seeds) are computed from the records
(:mod:`.report`), so a committed records file regenerates them: ``pbhno compare --report <dir>``.

``run_comparison(config, out_dir)`` writes into ``out_dir``: ``config.json`` (resolved config),
``provenance.json``, per run ``<env>/<agent>/w<world>-s<seed>/`` (the agent's files, ``curve.json``
with its points and per-episode results, ``key.json``, ``done.json``), and ``records.csv``,
``runs.csv``, ``results.md``, ``learning_curves.png``. A rerun with the same settings reuses
finished runs and resumes interrupted ones from their checkpoints and curve points. With
``docs_dir`` the records, config, provenance and figure are copied to ``docs_dir/<setting>/``.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import platform
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..agents import AgentUnavailable, agent_entries, make_agent
from ..envs.spec import load_spec
from ..evaluation import episodes as eval_episodes
from ..evaluation.episodes import EvalResult, heldout_seeds
from ..utils.io import atomic_write_json
from ..utils.provenance import git_state
from .compare_config import CompareConfig, EnvRun
from .curves import CurveEvaluator
from .report import RECORD_FIELDS, RUN_FIELDS, write_report, write_results_page, write_rows

__all__ = ["run_comparison", "ComparisonResult", "slug", "provenance"]


def slug(text: str) -> str:
    """A file-name-safe form of an env label (``pbhno/Wnt-v1 (32x32 grid)`` -> ``wnt-v1_32x32_grid``)."""
    import re

    s = text.split("/", 1)[-1].lower()
    return re.sub(r"[^a-z0-9.-]+", "_", s).strip("_")


@dataclass
class ComparisonResult:
    records: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def provenance(command: str | None) -> dict[str, Any]:
    """Git hash with a dirty flag, the full command, package versions and the machine."""
    from importlib import metadata

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    import os

    cpu = platform.processor() or platform.machine()
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return {
        "command": command or "python -c 'run_comparison(...)'",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.system()} {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
        f"threads{gpu}",
        "git": git_state(),
        "python": sys.version.split()[0],
        "packages": {
            d: version(d)
            for d in (
                "pbhno-gym",
                "torch",
                "numpy",
                "gymnasium",
                "stable-baselines3",
                "sb3-contrib",
                "skrl",
                "torchrl",
                "rsl-rl-lib",
                "casadi",
            )
        },
    }


def _run_key(cfg: CompareConfig, env: EnvRun, agent: str, world: int | None, seed: int) -> dict[str, Any]:
    """Everything a run depends on; a finished run is reused only if this matches."""
    return json.loads(
        json.dumps(
            {
                "env": load_spec(env.id, env.overrides).to_dict(),
                "agent": agent,
                "options": cfg.options_for(agent, env),
                "budget": env.budget_for(agent),
                "marks": env.marks(agent),
                "world": world,
                "worlds": env.world_seeds,
                "seed": seed,
                "eval_episodes": env.eval_episodes,
                "device": cfg.device,
            },
            sort_keys=True,
            default=str,
        )
    )


def episode_rows(res: EvalResult, worlds: list[int | None]) -> list[dict[str, Any]]:
    """One dict per episode of an evaluation (``worlds``: the world of each episode)."""
    return [
        {
            "world_seed": "" if worlds[i] is None else int(worlds[i]),
            "episode_seed": int(res.seeds[i]),
            "target_class": str(res.target_class[i]) if len(res.target_class) else "",
            "success": int(res.success[i]),
            "final_error": float(res.final_error[i]),
            "energy": float(res.energy[i]),
            "return": float(res.returns[i]),
            "failed": int(res.failed[i]),
        }
        for i in range(res.n)
    ]


def _evaluate(agent, spec, env: EnvRun, worlds: list[int | None], device: str, progress: bool, desc: str):
    """Evaluate ``agent`` on the test episodes of every world in ``worlds`` (one batch)."""
    seeds = heldout_seeds(env.eval_episodes, "test")
    all_seeds = seeds * len(worlds)
    ws = None if worlds == [None] else [w for w in worlds for _ in seeds]
    res = eval_episodes.evaluate_agent(
        agent, spec, all_seeds, device=device, world_seeds=ws, progress=progress, desc=desc
    )
    return res, [w for w in worlds for _ in seeds]


def _run_one(
    cfg: CompareConfig, env: EnvRun, name: str, world: int | None, seed: int, rdir: Path, progress: bool
) -> dict[str, Any]:
    """Train one agent in one world (or, for agents that do not learn, build it once) and
    evaluate it along its curve; returns ``{"points": [...], "run": {...}}``."""
    overrides = dict(env.overrides)
    worlds = [world] if world is not None else (list(env.world_seeds) or [None])
    if worlds[0] is not None:
        overrides["world_seed"] = worlds[0]
    spec = load_spec(env.id, overrides)
    agent = make_agent(name, **cfg.options_for(name, env))
    desc = f"evaluate {name} {env.label}"

    def evaluate_now(a) -> dict[str, Any]:
        res, ws = _evaluate(a, spec, env, worlds, cfg.device, False, desc)
        return {**res.summary(), "episodes": episode_rows(res, ws)}

    marks = env.marks(name) if agent.learns else []
    curve = CurveEvaluator(evaluate_now, marks, rdir / "curve.json")
    budget = env.budget_for(name) if agent.learns else 0
    rep = agent.train(spec, budget, seed, rdir, device=cfg.device, evaluate=curve, progress=progress)
    n = int(rep.env_samples)
    if not curve.points or curve.points[-1]["env_samples"] != n:  # the trained agent, at its samples
        curve(agent, n)
    last = curve.points[-1]
    run = {
        "env_samples": n,
        "env_episodes": rep.env_episodes,
        "train_wall_s": float(rep.wall_time_s),
        "latency_ms": last.get("latency_ms"),
        "device": rep.device,
        "loaded": bool(rep.loaded),
    }
    return {"points": curve.points, "run": run}


@dataclass
class _Unit:
    """One run of the plan: an agent in one world with one training seed (or, for agents that
    do not learn, once over all worlds)."""

    env: EnvRun
    name: str
    learns: bool
    uses_true_model: int
    world: int | None
    seed: int
    rdir: Path
    key: dict[str, Any]


def _execute(cfg: CompareConfig, u: _Unit, git: str, progress: bool, threads: int | None = None) -> None:
    """Run one unit and write its ``done.json`` (in this process or a pool worker)."""
    if threads:
        torch.set_num_threads(threads)
    u.rdir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(u.rdir / "key.json", u.key)
    t0 = time.perf_counter()
    result = _run_one(cfg, u.env, u.name, u.world, u.seed, u.rdir, progress)
    result["seconds"] = time.perf_counter() - t0
    result["run"]["git"] = git  # the code this run's records come from
    atomic_write_json(u.rdir / "done.json", result)


def run_comparison(
    config: CompareConfig,
    out_dir: str | Path,
    docs_dir: str | Path | None = None,
    docs_page: str | Path | None = None,
    progress: bool = True,
    retrain: bool = False,
    command: str | None = None,
    workers: int = 1,
    threads: int | None = None,
) -> ComparisonResult:
    """Run (or resume) a comparison; see the module docstring for what it writes.

    ``workers > 1`` runs the unfinished runs in that many spawned processes (``threads`` torch
    threads each), longest first (learners before one-point agents). Every run has its own seeds
    and directory, so the records are those of a serial run, in the same order; agents
    registered at run time (not on import of :mod:`pbhno_gym`) need ``workers = 1``.
    """
    cfg = config.validate()
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"run_comparison: workers must be an integer >= 1, got {workers!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance(command)
    atomic_write_json(out / "config.json", {"config": cfg.to_dict(), "provenance": prov})
    atomic_write_json(out / "provenance.json", prov)
    entries = agent_entries()
    plan, skipped = [], []
    for env in cfg.envs:
        for name in cfg.agents:
            probe, why = _probe(cfg, env, name, entries)
            if why:
                skipped.append({"env": env.label, "agent": name, "reason": why})
                continue
            learns = bool(probe.learns)
            true_model = int(bool(getattr(probe, "uses_true_model", False)))
            worlds: list[int | None] = list(env.world_seeds) or [None]
            units = (
                [(w, cfg.seed + k) for w in worlds for k in range(env.seeds_for(name))]
                if learns
                else [(None, cfg.seed)]
            )
            for world, seed in units:
                tag = "all" if world is None else f"w{world}"
                rdir = out / slug(env.label) / name / f"{tag}-s{seed}"
                key = _run_key(cfg, env, name, world, seed)
                key_path = rdir / "key.json"
                stale = rdir.exists() and (not key_path.exists() or json.loads(key_path.read_text()) != key)
                if retrain or stale:  # other settings (or a forced rerun): start this run afresh
                    shutil.rmtree(rdir, ignore_errors=True)
                plan.append(_Unit(env, name, learns, true_model, world, seed, rdir, key))
    # new or interrupted runs; agents resume from their checkpoints and curve points
    pending = [u for u in plan if not (u.rdir / "done.json").exists()]
    bar = tqdm(total=len(pending), desc="compare", disable=not progress)
    if workers == 1 or len(pending) <= 1:
        for u in pending:
            bar.set_postfix_str(f"{u.env.label} / {u.name}")
            _execute(cfg, u, prov["git"], progress)
            bar.update()
    else:
        ctx = multiprocessing.get_context("spawn")
        order = sorted(pending, key=lambda u: not u.learns)  # learners are the long runs
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_execute, cfg, u, prov["git"], False, threads): u for u in order}
            for f in as_completed(futures):
                f.result()  # a failed run raises here; finished runs stay on disk and are reused
                bar.set_postfix_str(f"{futures[f].env.label} / {futures[f].name}")
                bar.update()
    bar.close()
    records, runs = [], []
    for u in plan:
        result = json.loads((u.rdir / "done.json").read_text())
        base = {
            "env": u.env.label,
            "env_id": u.env.id,
            "agent": u.name,
            "kind": entries[u.name].kind,
            "train_seed": u.seed if u.learns else "",
        }
        for p in result["points"]:
            records += [{**base, "env_samples": p["env_samples"], **ep} for ep in p["episodes"]]
        runs.append({**base, "world_seed": "" if u.world is None else u.world, **result["run"]})
        runs[-1]["run_seconds"] = result.get("seconds")
        runs[-1]["uses_true_model"] = u.uses_true_model
    files = _write_outputs(cfg, out, records, runs, skipped, prov, docs_dir, docs_page)
    return ComparisonResult(records, runs, skipped, out, files)


def _probe(cfg: CompareConfig, env: EnvRun, name: str, entries) -> tuple[Any, str | None]:
    """(an untrained instance of the agent, None), or (None, why it is skipped on this env)."""
    if entries[name].factory is None:
        return None, entries[name].description
    if name in env.skip_agents:
        return None, env.skip_agents[name]
    try:
        agent = make_agent(name, **cfg.options_for(name, env))
        why = agent.supports(load_spec(env.id, env.overrides))
    except AgentUnavailable as e:
        return None, str(e)
    return (None, why) if why else (agent, None)


def _write_outputs(cfg, out, records, runs, skipped, prov, docs_dir, docs_page) -> dict[str, Path]:
    files = {
        "records": write_rows(records, RECORD_FIELDS, out / "records.csv"),
        "runs": write_rows(runs, RUN_FIELDS, out / "runs.csv"),
    }
    atomic_write_json(out / "skipped.json", skipped)
    files.update(write_report(out, cfg.to_dict(), prov, skipped))
    if docs_dir:
        dest = Path(docs_dir) / cfg.name
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("records.csv", "runs.csv", "skipped.json", "provenance.json", "config.json"):
            shutil.copyfile(out / name, dest / name)
        files.update({f"docs_{k}": v for k, v in write_report(dest, cfg.to_dict(), prov, skipped).items()})
        if docs_page:
            files["docs_page"] = write_results_page(Path(docs_page), Path(docs_dir))
    return files
