"""The MPC-vs-RL comparison: train (or load) every agent on every env under the same sample
budget, evaluate all of them on the same held-out episodes, write tables and figures.

``run_comparison(config, out_dir)`` writes into ``out_dir``:

* ``config.json``: the resolved config plus provenance (command, versions, git commit, machine);
* ``<env>/<agent>/``: the agent's files (model, checkpoints, TensorBoard logs), ``curve.json``
  (learning-curve points), ``eval.json`` (+ ``eval_traj.npz``: per-episode test results),
  ``key.json`` (the settings the row depends on) and ``row.json`` (its table row). A rerun with
  the same settings reuses finished rows and resumes interrupted ones from their checkpoints;
  a row whose settings changed starts afresh;
* ``results.csv``, ``results.md``, ``learning_curves.png``, ``trajectories_<env>.png``;

and, if ``docs_path`` is given, regenerates ``docs/results.md`` with the figures copied next to it
(``docs/results/``). Every number goes through :func:`pbhno_gym.evaluation.evaluate_agent`.
"""

from __future__ import annotations

import datetime
import json
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..agents import AgentUnavailable, TrainReport, agent_entries, make_agent
from ..envs.spec import load_spec
from ..evaluation import episodes as eval_episodes
from ..evaluation.episodes import EvalResult, heldout_seeds
from ..utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from .compare_config import CompareConfig, EnvRun
from .curves import CurveEvaluator, milestones
from .figures import plot_learning_curves, plot_trajectories
from .report import markdown_table, results_markdown, write_csv

__all__ = ["run_comparison", "ComparisonResult", "slug"]


def slug(text: str) -> str:
    """A file-name-safe form of an env label (``pbhno/Wnt-v1 (32x32 grid)`` -> ``wnt-v1_32x32_grid``)."""
    s = text.split("/", 1)[-1].lower()
    return re.sub(r"[^a-z0-9.-]+", "_", s).strip("_")


@dataclass
class ComparisonResult:
    rows: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def _provenance(command: str | None) -> dict[str, Any]:
    def version(mod: str) -> str:
        try:
            return __import__(mod).__version__
        except ImportError:
            return "not installed"

    try:
        git = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        git = ""
    cpu = platform.processor() or platform.machine()
    return {
        "command": command or "python -c 'run_comparison(...)'",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.system()} {cpu}, {torch.get_num_threads()} torch threads"
        + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "stable_baselines3": version("stable_baselines3"),
        "git": git or "unknown",
    }


def _row_key(cfg: CompareConfig, env: EnvRun, agent: str) -> dict[str, Any]:
    """Everything a row depends on; a cached row is reused only if this matches."""
    return json.loads(
        json.dumps(
            {
                "env": load_spec(env.id, env.overrides).to_dict(),
                "agent": agent,
                "options": cfg.options_for(agent, env),
                "budget": env.budget,
                "seed": cfg.seed,
                "eval_episodes": env.eval_episodes,
                "curve": [env.curve_points, env.curve_episodes],
                "record": cfg.record,
                "device": cfg.device,
            },
            sort_keys=True,
            default=str,
        )
    )


def _make_row(env: EnvRun, name: str, kind: str, agent, rep: TrainReport, res: EvalResult) -> dict[str, Any]:
    s = res.summary()
    return {
        "env": env.label,
        "env_id": env.id,
        "agent": name,
        "kind": kind,
        **{k: s[k] for k in ("success_rate", "success_lo", "success_hi", "final_error", "final_error_lo")},
        **{k: s[k] for k in ("final_error_hi", "energy", "energy_lo", "energy_hi", "return", "episodes")},
        "env_samples": int(rep.env_samples),
        "env_episodes": rep.env_episodes,
        "train_wall_s": float(rep.wall_time_s),
        "latency_ms": s["latency_ms"],
        "call_ms": s["call_ms"],
        "eval_batch": s["eval_batch"],
        "device": rep.device,
        "uses_true_model": bool(getattr(agent, "uses_true_model", False)),
        "loaded": bool(rep.loaded),
    }


def _run_one(
    cfg: CompareConfig, env: EnvRun, name: str, adir: Path, progress: bool
) -> tuple[dict[str, Any], EvalResult, list[dict[str, Any]]]:
    """Train/load one agent on one env, evaluate it on the test seeds; returns (row, result, curve)."""
    spec = load_spec(env.id, env.overrides)
    entry = agent_entries()[name]
    agent = make_agent(name, **cfg.options_for(name, env))
    val_seeds = heldout_seeds(env.curve_episodes, "validation")

    def evaluate_now(a) -> dict[str, Any]:
        return eval_episodes.evaluate_agent(a, spec, val_seeds, device=cfg.device).summary()

    marks = milestones(env.budget, env.curve_points) if agent.learns else []
    curve = CurveEvaluator(evaluate_now, marks, adir / "curve.json")
    rep = agent.train(spec, env.budget, cfg.seed, adir, device=cfg.device, evaluate=curve, progress=progress)
    res = eval_episodes.evaluate_agent(
        agent,
        spec,
        heldout_seeds(env.eval_episodes, "test"),
        device=cfg.device,
        record=cfg.record,
        progress=progress,
        desc=f"evaluate {name} {env.label}",
    )
    res.save(adir / "eval.json")
    return _make_row(env, name, entry.kind, agent, rep, res), res, curve.points


def run_comparison(
    config: CompareConfig,
    out_dir: str | Path,
    docs_path: str | Path | None = None,
    progress: bool = True,
    retrain: bool = False,
    command: str | None = None,
) -> ComparisonResult:
    """Run (or resume) a comparison; see the module docstring for what it writes."""
    cfg = config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prov = _provenance(command)
    atomic_write_json(out / "config.json", {"config": cfg.to_dict(), "provenance": prov})
    rows, skipped = [], []
    curves: dict[tuple[str, str], list[dict[str, Any]]] = {}
    results: dict[str, dict[str, EvalResult]] = {}
    entries = agent_entries()
    pairs = [(e, a) for e in cfg.envs for a in cfg.agents]
    bar = tqdm(pairs, desc="compare", disable=not progress)
    for env, name in bar:
        bar.set_postfix_str(f"{env.label} / {name}")
        if entries[name].factory is None:
            skipped.append({"env": env.label, "agent": name, "reason": entries[name].description})
            continue
        if name in env.skip_agents:
            skipped.append({"env": env.label, "agent": name, "reason": env.skip_agents[name]})
            continue
        try:
            why = make_agent(name, **cfg.options_for(name, env)).supports(load_spec(env.id, env.overrides))
        except AgentUnavailable as e:
            why = str(e)
        if why:
            skipped.append({"env": env.label, "agent": name, "reason": why})
            continue
        adir = out / slug(env.label) / name
        key = _row_key(cfg, env, name)
        key_path, cached = adir / "key.json", adir / "row.json"
        stale = adir.exists() and (not key_path.exists() or json.loads(key_path.read_text()) != key)
        if retrain or stale:  # other settings (or a forced rerun): start this row afresh
            shutil.rmtree(adir, ignore_errors=True)
        if cached.exists():  # finished with these settings: reuse
            saved = json.loads(cached.read_text())
            row, curve = saved["row"], saved["curve"]
            res = EvalResult.load(adir / "eval.json")
        else:  # new, or interrupted: agents resume from their checkpoints in adir
            atomic_write_json(key_path, key)
            t0 = time.perf_counter()
            row, res, curve = _run_one(cfg, env, name, adir, progress)
            atomic_write_json(cached, {"row": row, "curve": curve, "seconds": time.perf_counter() - t0})
        rows.append(row)
        curves[(env.label, name)] = curve
        results.setdefault(env.label, {})[name] = res
    bar.close()
    files = _write_outputs(cfg, out, rows, skipped, curves, results, prov, docs_path)
    return ComparisonResult(rows, skipped, out, files)


def _write_outputs(cfg, out, rows, skipped, curves, results, prov, docs_path) -> dict[str, Path]:
    files: dict[str, Path] = {"csv": write_csv(rows, out / "results.csv")}
    figs = []
    if rows:
        figs.append(plot_learning_curves(rows, curves, out / "learning_curves.png"))
        for env_label, res in results.items():
            if cfg.record > 0:
                figs.append(plot_trajectories(env_label, res, out / f"trajectories_{slug(env_label)}.png"))
    for f in figs:
        files[f.stem] = f
    rel = [f.name for f in figs]
    text = results_markdown(rows, cfg.to_dict(), prov, rel, skipped)
    files["md"] = atomic_write_text(out / "results.md", text)
    if docs_path:
        docs_path = Path(docs_path)
        fig_dir = docs_path.parent / "results"
        fig_dir.mkdir(parents=True, exist_ok=True)
        for f in figs:
            atomic_write_bytes(fig_dir / f.name, f.read_bytes())
        docs_text = results_markdown(rows, cfg.to_dict(), prov, [f"results/{f.name}" for f in figs], skipped)
        files["docs"] = atomic_write_text(docs_path, docs_text)
    return files


def print_table(rows: list[dict[str, Any]]) -> str:
    """The markdown tables, for the terminal."""
    return markdown_table(rows)
