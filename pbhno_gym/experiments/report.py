"""Tables, curves and the sample-efficiency claim, computed from per-episode records.

A comparison writes ``records.csv`` (one row per test episode per curve point) and ``runs.csv``
(one row per trained agent and world: samples, wall time, latency). Everything below is a
function of those files, so a committed records directory regenerates its page:
``pbhno compare --report docs/results/compare/quick``.

The claim: PB-HNO MPC (``mpc_surrogate``) reaches 80 % (90 %) of the oracle's success with at
least 10x fewer env samples than the best RL agent. For each agent, the env samples to reach
the threshold are read off its mean success curve (the first evaluated count at or above it).
Intervals: a two-stage bootstrap, worlds with replacement, then training seeds with replacement
within each world; the oracle's success (the threshold's base) is resampled with the same worlds.
The verdict is "holds" when the ratio's lower bound is >= 10, "does not hold" when PB-HNO MPC
never reaches the threshold or the ratio's upper bound is < 10, else "inconclusive".
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.io import atomic_write_text

__all__ = [
    "RECORD_FIELDS",
    "RUN_FIELDS",
    "write_rows",
    "read_rows",
    "curve_summary",
    "final_table",
    "samples_to_threshold",
    "claim_check",
    "still_rising",
    "write_report",
    "write_results_page",
]

#: what identifies a run: the env, the agent, its hidden world and training seed
KEY_FIELDS = ["env", "env_id", "agent", "kind", "world_seed", "train_seed"]
RECORD_FIELDS = KEY_FIELDS + [
    "env_samples",
    "episode_seed",
    "target_class",
    "success",
    "final_error",
    "energy",
    "return",
    "failed",
]
RUN_FIELDS = KEY_FIELDS + [
    "env_samples",
    "env_episodes",
    "train_wall_s",
    "latency_ms",
    "device",
    "loaded",
    "uses_true_model",
    "run_seconds",
    "git",
]
FRACTIONS = (0.8, 0.9)
MPC_LEARNER, ORACLE, FACTOR = "mpc_surrogate", "mpc_oracle", 10.0


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def write_rows(rows: list[dict[str, Any]], fields: list[str], path: str | Path) -> Path:
    """A CSV with exactly ``fields`` (atomic)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in fields})
    return atomic_write_text(path, buf.getvalue())


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a records/runs CSV with numbers parsed (empty cells stay "")."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row: dict[str, Any] = {}
            for k, v in r.items():
                if k in ("env_samples", "success", "failed", "episode_seed", "uses_true_model") and v != "":
                    row[k] = int(float(v))
                elif k in ("final_error", "energy", "return", "train_wall_s", "latency_ms") and v != "":
                    row[k] = float(v)
                else:
                    row[k] = v
            out.append(row)
    return out


# ----------------------------------------------------------------------------- aggregation
def _units(records: list[dict[str, Any]]) -> dict[tuple, dict[int, list[dict[str, Any]]]]:
    """(env, agent) -> {(world, train seed): {env_samples: [episode rows]}}."""
    out: dict[tuple, dict] = {}
    for r in records:
        u = out.setdefault((r["env"], r["agent"]), {}).setdefault(
            (str(r["world_seed"]), str(r["train_seed"])), {}
        )
        u.setdefault(int(r["env_samples"]), []).append(r)
    return out


def _grid(units: dict) -> list[int]:
    """Env-sample counts every unit of an agent was evaluated at (the curve's common grid)."""
    sets = [set(u) for u in units.values()]
    return sorted(set.intersection(*sets)) if sets else []


def _array(units: dict, key: str, grid: list[int]) -> tuple[list[str], np.ndarray]:
    """worlds, and the mean of ``key`` per (world, seed index, grid point); NaN where missing."""
    worlds = sorted({w for w, _ in units})
    seeds = {w: sorted(s for ww, s in units if ww == w) for w in worlds}
    m = max(len(v) for v in seeds.values())
    a = np.full((len(worlds), m, len(grid)), np.nan)
    for i, w in enumerate(worlds):
        for j, s in enumerate(seeds[w]):
            for k, n in enumerate(grid):
                a[i, j, k] = np.mean([float(r[key]) for r in units[(w, s)][n]])
    return worlds, a


def _boot_index(n_worlds: int, n_seeds: int, n_boot: int, rng: np.random.Generator):
    """Two-stage resampling indices: worlds (B, W), then seeds within each (B, W, S)."""
    wi = rng.integers(0, n_worlds, size=(n_boot, n_worlds))
    si = rng.integers(0, n_seeds, size=(n_boot, n_worlds, n_seeds))
    return wi, si


def _resampled_means(a: np.ndarray, wi: np.ndarray, si: np.ndarray) -> np.ndarray:
    """(B, grid) means of ``a`` (W, S, G) over resampled worlds and seeds (NaN-aware)."""
    sel = a[wi[:, :, None], si]  # (B, W, S, G)
    return np.nanmean(sel.reshape(sel.shape[0], -1, sel.shape[-1]), axis=1)


def _order_stat(values: np.ndarray, q: float) -> float:
    """The ``q`` quantile as an order statistic (no interpolation: values may be inf)."""
    v = np.sort(values)
    return float(v[min(max(int(np.ceil(q * len(v))) - 1, 0), len(v) - 1)])


def curve_summary(records: list[dict[str, Any]], n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """One row per (env, agent, env samples): means over worlds, seeds and episodes, with
    two-stage bootstrap 95 % intervals (worlds, then training seeds)."""
    rows = []
    for (env, agent), units in _units(records).items():
        grid = _grid(units)
        if not grid:
            continue
        kind = next(r["kind"] for r in records if r["env"] == env and r["agent"] == agent)
        rng = np.random.default_rng(seed)
        out: dict[str, Any] = {}
        for key in ("success", "final_error", "energy", "return"):
            worlds, a = _array(units, key, grid)
            wi, si = _boot_index(a.shape[0], a.shape[1], n_boot, rng)
            boot = _resampled_means(a, wi, si)
            mean = np.nanmean(a.reshape(-1, len(grid)), axis=0)
            out[key] = (mean, np.nanpercentile(boot, 2.5, axis=0), np.nanpercentile(boot, 97.5, axis=0))
        for k, n in enumerate(grid):
            eps = sum(len(u[n]) for u in units.values())
            row = {"env": env, "agent": agent, "kind": kind, "env_samples": n, "episodes": eps}
            row["worlds"], row["units"] = len(worlds), len(units)
            for key, (m, lo, hi) in out.items():
                row[key], row[key + "_lo"], row[key + "_hi"] = float(m[k]), float(lo[k]), float(hi[k])
            rows.append(row)
    return rows


def final_table(curves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each agent's last curve point (its full budget)."""
    last: dict[tuple, dict[str, Any]] = {}
    for r in curves:
        k = (r["env"], r["agent"])
        if k not in last or r["env_samples"] > last[k]["env_samples"]:
            last[k] = r
    return list(last.values())


def samples_to_threshold(
    records: list[dict[str, Any]],
    env: str,
    fractions: tuple[float, ...] = FRACTIONS,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[float, dict[str, float]]]:
    """agent -> fraction -> {"point", "lo", "hi", "max"}: env samples at which the agent's mean
    success first reaches ``fraction`` x the oracle's success (inf: not within its curve; "max"
    is the curve's last count). Bootstrap over worlds, then training seeds; the oracle is
    resampled with the same worlds. Empty without an oracle in ``env``."""
    units = {a: u for (e, a), u in _units(records).items() if e == env}
    if ORACLE not in units:
        return {}
    ow, oa = _array(units[ORACLE], "success", _grid(units[ORACLE]))
    oracle_by_world = dict(zip(ow, oa[:, 0, 0], strict=True))
    out: dict[str, dict[float, dict[str, float]]] = {}
    for agent, u in units.items():
        if agent == ORACLE:
            continue
        grid = _grid(u)
        worlds, a = _array(u, "success", grid)
        if any(w not in oracle_by_world for w in worlds):
            continue  # the oracle ran elsewhere: no common base
        base = np.array([oracle_by_world[w] for w in worlds])
        rng = np.random.default_rng(seed)
        wi, si = _boot_index(a.shape[0], a.shape[1], n_boot, rng)
        curves = np.concatenate(
            [np.nanmean(a.reshape(-1, len(grid)), axis=0)[None], _resampled_means(a, wi, si)]
        )
        bases = np.concatenate([[base.mean()], base[wi].mean(axis=1)])
        g = np.asarray(grid, dtype=float)
        out[agent] = {}
        for f in fractions:
            hit = curves >= f * bases[:, None] - 1e-12
            first = np.where(hit.any(axis=1), g[np.argmax(hit, axis=1)], np.inf)
            lo, hi = _order_stat(first[1:], 0.025), _order_stat(first[1:], 0.975)
            out[agent][f] = {"point": float(first[0]), "lo": float(lo), "hi": float(hi), "max": float(g[-1])}
    return out


def still_rising(
    records: list[dict[str, Any]], env: str, key: str = "return", n_boot: int = 1000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """agent -> {"from", "to", "gain", "lo", "hi"}: the change in mean ``key`` over each learning
    agent's last curve segment (from the latest point at or below half its last count, so a
    rollout's overshoot of the budget is not a segment), paired within (world, seed) units, with
    a two-stage bootstrap 95 % interval. An agent whose interval lies above 0 was still improving
    when its budget ran out: its curve has not reached its plateau, and its last point understates
    what it would reach with more samples (a samples-to-threshold "not reached" stays a valid lower
    bound)."""
    out: dict[str, dict[str, float]] = {}
    for (e, agent), units in _units(records).items():
        grid = [n for n in _grid(units) if n > 0]
        if e != env or len(grid) < 2:
            continue
        start = max((n for n in grid if n <= grid[-1] / 2), default=grid[-2])
        _, a = _array(units, key, [start, grid[-1]])
        d = a[..., 1] - a[..., 0]  # (worlds, seeds)
        rng = np.random.default_rng(seed)
        wi, si = _boot_index(d.shape[0], d.shape[1], n_boot, rng)
        boot = _resampled_means(d[..., None], wi, si)[:, 0]
        out[agent] = {
            "from": float(start),
            "to": float(grid[-1]),
            "gain": float(np.nanmean(d)),
            "lo": float(np.nanpercentile(boot, 2.5)),
            "hi": float(np.nanpercentile(boot, 97.5)),
        }
    return out


def plateau_lines(records: list[dict[str, Any]]) -> list[str]:
    """Per env, which learning agents were still improving (return) at the end of their budget."""
    lines = []
    for env in dict.fromkeys(r["env"] for r in records):
        rising = still_rising(records, env)
        if not rising:
            continue
        up = [a for a, r in rising.items() if r["lo"] > 0]
        flat = [a for a in rising if a not in up]
        parts = [
            f"{a} (return {r['gain']:+.3g} [{r['lo']:+.3g}, {r['hi']:+.3g}] from {r['from']:,.0f} to "
            f"{r['to']:,.0f} samples)"
            for a, r in rising.items()
            if a in up
        ]
        text = f"- {env}: still improving at the end of the budget: " + ("; ".join(parts) or "none")
        if flat:
            text += f". No evidence of improvement over the last segment: {', '.join(flat)}"
        lines.append(text + ".")
    return lines


def _n(v: float) -> str:
    return "not reached" if not math.isfinite(v) else f"{v:,.0f}"


def _at(v: float) -> str:
    return "not reached" if not math.isfinite(v) else f"at {v:,.0f} samples"


def claim_check(records: list[dict[str, Any]], n_boot: int = 1000) -> list[str]:
    """One verdict line per env and threshold fraction (see the module docstring)."""
    lines = []
    for env in dict.fromkeys(r["env"] for r in records):
        kinds = {r["agent"]: r["kind"] for r in records if r["env"] == env}
        st = samples_to_threshold(records, env, n_boot=n_boot)
        if not st:
            lines.append(f"- {env}: no oracle in this run, so there is no threshold: not tested.")
            continue
        if MPC_LEARNER not in st:
            lines.append(f"- {env}: {MPC_LEARNER} not in this run: the claim is not tested here.")
            continue
        rl = [a for a in st if kinds.get(a) == "rl"]
        if not rl:
            lines.append(f"- {env}: no RL agent in this run: the claim is not tested here.")
            continue
        for f in FRACTIONS:
            m = st[MPC_LEARNER][f]
            # the RL agent that got there first; if none did, the one trained longest (the strongest bound)
            best = min(rl, key=lambda a: (st[a][f]["point"], st[a][f]["hi"], -st[a][f]["max"]))
            b = st[best][f]
            head = (
                f"- {env}, {f:.0%} of the oracle's success: {MPC_LEARNER} {_at(m['point'])} "
                f"[{_n(m['lo'])}, {_n(m['hi'])}]; best RL agent {best} {_at(b['point'])} "
                f"[{_n(b['lo'])}, {_n(b['hi'])}] (of {b['max']:,.0f} trained)"
            )
            free = [a for a in st if st[a][f]["point"] == 0]  # reach it with no training samples
            note = " The nominal model (0 samples) already reaches it." if "mpc_nominal" in free else ""
            others = [a for a in free if a != "mpc_nominal"]
            if others:
                note += f" With 0 training samples, {', '.join(others)} reach(es) it too."
            if not math.isfinite(m["point"]):
                verdict = f"does not hold ({MPC_LEARNER} does not reach it within {m['max']:,.0f} samples)"
            else:
                # RL's lower bound is the smallest over every RL agent: one that did not get there
                # within its budget may still get there right after it (more than it was trained)
                low = {a: st[a][f]["lo"] if math.isfinite(st[a][f]["lo"]) else st[a][f]["max"] for a in rl}
                binding = min(rl, key=low.__getitem__)
                rl_lo = low[binding]
                ratio_lo = rl_lo / max(m["hi"], 1.0) if math.isfinite(m["hi"]) else 0.0
                ratio_hi = b["hi"] / max(m["lo"], 1.0)
                if ratio_lo >= FACTOR:
                    more = ">" if not math.isfinite(st[binding][f]["lo"]) else ">="
                    by = ""
                    if binding != best:
                        by = f"; the bound is {binding}'s " + (
                            f"interval end, {rl_lo:,.0f} samples"
                            if math.isfinite(st[binding][f]["lo"])
                            else f"{rl_lo:,.0f}, within which it did not get there"
                        )
                    verdict = f"holds ({more} {ratio_lo:.0f}x fewer samples at the interval ends{by})"
                elif ratio_hi < FACTOR:
                    verdict = f"does not hold (at most {ratio_hi:.1f}x fewer samples)"
                else:
                    if math.isfinite(m["hi"]):
                        hi_txt = "unbounded" if not math.isfinite(ratio_hi) else f"{ratio_hi:.0f}x"
                        why = f"ratio from {ratio_lo:.1f}x to {hi_txt}"
                    else:
                        why = f"{MPC_LEARNER}'s interval runs past its {m['max']:,.0f} samples"
                    verdict = f"is inconclusive ({why}: more worlds, seeds or budget needed)"
            lines.append(f"{head}: the claim {verdict}.{note}")
    return lines


# ----------------------------------------------------------------------------- markdown and figure
def _f(v: Any, nd: int = 3) -> str:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{nd}g}" if abs(v) < 1e4 else f"{v:,.0f}"


def _run_stats(runs: list[dict[str, Any]]) -> dict[tuple, dict[str, float]]:
    out: dict[tuple, dict[str, Any]] = {}
    for r in runs:
        d = out.setdefault((r["env"], r["agent"]), {"wall": [], "lat": [], "dev": r["device"], "true": 0})
        if r.get("train_wall_s", "") != "":
            d["wall"].append(float(r["train_wall_s"]))
        if r.get("latency_ms", "") != "":
            d["lat"].append(float(r["latency_ms"]))
        d["true"] = int(r.get("uses_true_model") or 0)
    return {
        k: {
            "wall": float(np.mean(v["wall"])) if v["wall"] else math.nan,
            "lat": float(np.median(v["lat"])) if v["lat"] else math.nan,
            "device": v["dev"],
            "true": v["true"],
        }
        for k, v in out.items()
    }


def markdown_tables(curves: list[dict[str, Any]], runs: list[dict[str, Any]], records) -> str:
    """Per env: each agent at its full budget, and the env samples to reach the thresholds."""
    stats = _run_stats(runs)
    out = []
    for env in dict.fromkeys(r["env"] for r in curves):
        st = samples_to_threshold(records, env)
        out.append(f"### {env}\n")
        out.append(
            "| agent | env samples | worlds x seeds | success [95% CI] | final error [95% CI] | energy "
            "| samples to 80% of oracle [CI] | to 90% [CI] | train wall (s) | latency (ms) |"
        )
        out.append("|---|---:|---:|---|---|---:|---|---|---:|---:|")
        for r in final_table([c for c in curves if c["env"] == env]):
            s = stats.get((env, r["agent"]), {})
            name = r["agent"] + (" (true model)" if s.get("true") else "")
            thr = []
            for f in FRACTIONS:
                t = st.get(r["agent"], {}).get(f)
                thr.append("-" if t is None else f"{_n(t['point'])} [{_n(t['lo'])}, {_n(t['hi'])}]")
            out.append(
                f"| {name} | {r['env_samples']:,} | {r['worlds']} x {r['units'] // max(r['worlds'], 1)} "
                f"| {r['success']:.2f} [{r['success_lo']:.2f}, {r['success_hi']:.2f}] "
                f"| {_f(r['final_error'])} [{_f(r['final_error_lo'])}, {_f(r['final_error_hi'])}] "
                f"| {_f(r['energy'])} | {thr[0]} | {thr[1]} | {_f(s.get('wall'))} | {_f(s.get('lat'))} |"
            )
        out.append("")
    return "\n".join(out)


def curve_markdown(curves: list[dict[str, Any]]) -> str:
    """Every curve point (the numbers behind the figure)."""
    out = [
        "| env | agent | env samples | episodes | success [95% CI] | final error | energy | return |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in curves:
        out.append(
            f"| {r['env']} | {r['agent']} | {r['env_samples']:,} | {r['episodes']} "
            f"| {r['success']:.2f} [{r['success_lo']:.2f}, {r['success_hi']:.2f}] | {_f(r['final_error'])} "
            f"| {_f(r['energy'])} | {_f(r['return'])} |"
        )
    return "\n".join(out)


def plot_curves(curves: list[dict[str, Any]], path: str | Path) -> Path:
    """Success (top row) and final phenotype error (bottom row, log y) against env samples
    (symmetric-log x: the 0-sample agents sit at 0), one column per env, bootstrap bands; dotted
    lines at 80 % and 90 % of the oracle's success and at the oracle's final error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..utils.io import atomic_savefig

    envs = list(dict.fromkeys(r["env"] for r in curves))
    agents = list(dict.fromkeys(r["agent"] for r in curves))
    palette = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("Dark2").colors)
    col = {a: palette[i % len(palette)] for i, a in enumerate(agents)}
    fig, axes = plt.subplots(2, len(envs), figsize=(6.5 * len(envs), 8.4), squeeze=False, sharex="col")
    panels = (("success", "success rate (test episodes)"), ("final_error", "final phenotype error (RMS)"))
    for j, env in enumerate(envs):
        rs = [r for r in curves if r["env"] == env]
        nz = [r["env_samples"] for r in rs if r["env_samples"] > 0]
        lin = max(min(nz) / 2, 1.0) if nz else 1.0
        for (key, label), ax in zip(panels, axes[:, j], strict=True):
            for a in dict.fromkeys(r["agent"] for r in rs):
                pts = sorted((r for r in rs if r["agent"] == a), key=lambda r: r["env_samples"])
                x = np.array([p["env_samples"] for p in pts], float)
                y = np.array([p[key] for p in pts])
                lo = np.array([p[key + "_lo"] for p in pts])
                hi = np.array([p[key + "_hi"] for p in pts])
                if len(pts) == 1:
                    err = [[max(y[0] - lo[0], 0.0)], [max(hi[0] - y[0], 0.0)]]
                    ax.errorbar(x, y, yerr=err, fmt="s", color=col[a], label=a, capsize=3)
                    if a == ORACLE:
                        for f in FRACTIONS if key == "success" else (1.0,):
                            ax.axhline(f * y[0], color=col[a], ls=":", lw=0.9)
                else:
                    ax.plot(x, y, "o-", color=col[a], label=a, ms=3)
                    ax.fill_between(x, lo, hi, color=col[a], alpha=0.15)
            ax.set_xscale("symlog", linthresh=lin)
            if key == "success":
                ax.set_ylim(-0.03, 1.03)
                ax.set_title(env, fontsize=9)
                ax.legend(fontsize=6, loc="best", ncol=2)
            else:
                ax.set_yscale("log")
                ax.set_xlabel("environment samples used to learn (0: no learning)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    out = atomic_savefig(fig, path)
    plt.close(fig)
    return out


def _settings_table(config: dict[str, Any]) -> str:
    lines = [
        "| env | id | spec overrides | worlds | training seeds | test episodes per world "
        "| budget (env samples) |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for e in config["envs"]:
        extra = (e.get("budgets") or {}).items()
        seeds = "".join(f"; {a} {n}" for a, n in (e.get("agent_train_seeds") or {}).items())
        budgets = f"{e['budget']:,}" + "".join(f"; {a} {b:,}" for a, b in extra)
        lines.append(
            f"| {e['label']} | `{e['id']}` | `{json.dumps(e['overrides'])}` "
            f"| {e.get('world_seeds') or 'own'} "
            f"| {e.get('train_seeds', 1)}{seeds} | {e['eval_episodes']} | {budgets} |"
        )
    return "\n".join(lines)


def report_markdown(
    dir_: Path, config: dict[str, Any], prov: dict[str, Any], skipped: list[dict[str, str]], fig: str
) -> str:
    """The page of one comparison setting, from the records in ``dir_``."""
    records = read_rows(dir_ / "records.csv")
    runs = read_rows(dir_ / "runs.csv") if (dir_ / "runs.csv").exists() else []
    curves = curve_summary(records)
    pk = ", ".join(f"{k} {v}" for k, v in sorted(prov.get("packages", {}).items()) if v != "not installed")
    skip = "\n".join(f"- {s['env']} / {s['agent']}: {s['reason']}" for s in skipped) or "- none"
    return f"""## Setting `{config["name"]}`

{config.get("description", "")}

Command: `{prov["command"]}` · git {prov["git"]} · date {prov["date"]} · machine: {prov["machine"]} ·
Python {prov.get("python", "?")} · {pk}. Records: `{dir_.as_posix()}/records.csv` ({len(records):,} test
episodes), regenerate this section with `pbhno compare --report {dir_.as_posix()}`.

{_settings_table(config)}

### Does MPC through the fitted PB-HNO reach the oracle's success with 10x fewer samples than RL?

{chr(10).join(claim_check(records))}

Did the learners reach their plateau? The change in mean return over each learning curve's last
segment (paired within world and seed, 95 % bootstrap interval; above 0: still improving):

{chr(10).join(plateau_lines(records)) or "- no learning curves"}

![learning curves]({fig})

{markdown_tables(curves, runs, records)}
<details><summary>Every curve point</summary>

{curve_markdown(curves)}

</details>

Agents not in the tables:

{skip}
"""


HOW_TO_READ = """How to read: every agent meets the same held-out test episodes in each hidden world
(`world_seed`: true parameters drawn from the prior, plus a mechanism the planning skeleton lacks;
docs/environments.md says what is hidden). *Success* is `info["is_success"]` at the end of an
episode; *final error* the RMS phenotype error over the success window; *energy* the sum over
steps of `sum_j (u_j/u_max_j)^2`; *env samples* the environment steps an agent consumed to learn:
0 for the references, the nominal-model MPC (the skeleton at the prior mean, the no-learning
baseline), the adaptive MPC (re-estimates parameters within each test episode) and the oracle (the
true world; an upper bound). MPC through PB-HNO is refitted on 1, 2, 4, ... collected episodes;
RL agents are evaluated along their training. Intervals are 95 % two-stage bootstrap intervals
(worlds, then training seeds within a world). RL hyperparameters are fixed in `agents/*.toml`
(their sources are stated there), not tuned on the test episodes."""


def write_report(
    dir_: str | Path,
    config: dict[str, Any] | None = None,
    prov: dict[str, Any] | None = None,
    skipped: list[dict[str, str]] | None = None,
) -> dict[str, Path]:
    """``results.md`` and ``learning_curves.png`` of one setting's directory, from its records
    (config, provenance and skipped agents read from the directory when not given)."""
    d = Path(dir_)
    if config is None:
        config = json.loads((d / "config.json").read_text())["config"]
    if prov is None:
        prov = json.loads((d / "provenance.json").read_text())
    if skipped is None:
        skipped = json.loads((d / "skipped.json").read_text()) if (d / "skipped.json").exists() else []
    records = read_rows(d / "records.csv")
    fig = plot_curves(curve_summary(records), d / "learning_curves.png") if records else None
    text = report_markdown(d, config, prov, skipped, fig.name if fig else "")
    md = atomic_write_text(d / "results.md", "# Results: MPC versus RL\n\n" + HOW_TO_READ + "\n\n" + text)
    return {"md": md, **({"figure": fig} if fig else {})}


def write_results_page(page: Path, docs_dir: Path) -> Path:
    """``docs/results.md``: one section per setting directory under ``docs_dir`` (quick first),
    each recomputed from its committed records."""
    sections = []
    dirs = sorted(
        (p for p in docs_dir.iterdir() if (p / "records.csv").exists()), key=lambda p: p.name != "quick"
    )
    for d in dirs:
        config = json.loads((d / "config.json").read_text())["config"]
        prov = json.loads((d / "provenance.json").read_text())
        skipped = json.loads((d / "skipped.json").read_text()) if (d / "skipped.json").exists() else []
        fig = Path(os.path.relpath(d / "learning_curves.png", page.parent)).as_posix()
        text = report_markdown(d, config, prov, skipped, fig)
        sections.append(text)
    head = (
        "# Results: MPC versus RL\n\n<!-- Generated by `pbhno compare` (or `pbhno compare --report "
        "docs/results/compare/<setting>`) from the committed records; do not edit by hand. -->\n\n"
    )
    return atomic_write_text(page, head + HOW_TO_READ + "\n\n" + "\n".join(sections))
