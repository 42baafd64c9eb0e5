"""``pbhno compare``: MPC vs RL learning curves in unknown worlds; records, tables, claim, results page."""

import json
import shlex

from .argtypes import int_at_least


def run(args) -> int:
    from pathlib import Path

    import torch

    from ..agents import agent_entries
    from ..experiments.compare import run_comparison
    from ..experiments.compare_config import load_config, preset
    from ..experiments.report import claim_check, read_rows, write_report, write_results_page

    if args.list_agents:
        for name, e in agent_entries().items():
            print(f"{name:17s} {e.kind:9s} {'' if e.factory else '[slot, not filled] '}{e.description}")
        return 0
    if args.report:  # recompute tables, figure and verdicts from committed records
        d = Path(args.report)
        if not (d / "records.csv").is_file():
            raise SystemExit(f"--report: {d / 'records.csv'} not found")
        files = write_report(d)
        if not args.no_docs:
            files["docs_page"] = write_results_page(Path(args.docs), d.parent)
        print("\n".join(claim_check(read_rows(d / "records.csv"))))
        print(json.dumps({k: str(v) for k, v in files.items()}, indent=2))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    name = "full" if args.full else "standard" if args.standard else "quick"
    cfg = load_config(args.config) if args.config else preset(name)
    cfg = cfg.select(args.envs, args.agents)
    if args.seed is not None:
        cfg.seed = args.seed
    if args.device:
        cfg.device = args.device
    for e in cfg.envs:
        if args.budget:
            e.budget = args.budget
        if args.eval_episodes:
            e.eval_episodes = args.eval_episodes
    out = args.out or f"runs/compare/{cfg.name}"
    res = run_comparison(
        cfg,
        out,
        docs_dir=None if args.no_docs else args.records_dir,
        docs_page=None if args.no_docs else args.docs,
        progress=not args.no_progress,
        retrain=args.retrain,
        command=_command(args),
        workers=args.workers,
        threads=args.threads,
    )
    print("\n".join(claim_check(res.records)))
    for s in res.skipped:
        print(f"skipped {s['env']} / {s['agent']}: {s['reason']}")
    print(json.dumps({k: str(v) for k, v in res.files.items()}, indent=2))
    return 0


def _command(args) -> str:
    """The command line that reproduces this run (options that differ from their defaults)."""
    parts = ["pbhno", "compare"]
    for flag, value in (
        ("--quick", args.quick),
        ("--standard", args.standard),
        ("--full", args.full),
        ("--retrain", args.retrain),
    ):
        if value:
            parts.append(flag)
    for flag, value in (
        ("--config", args.config),
        ("--envs", args.envs),
        ("--agents", args.agents),
        ("--budget", args.budget),
        ("--eval-episodes", args.eval_episodes),
        ("--seed", args.seed),
        ("--device", args.device),
        ("--out", args.out),
    ):
        if value is not None:
            parts += [flag, *(map(str, value) if isinstance(value, list) else [str(value)])]
    if args.threads != 1:
        parts += ["--threads", str(args.threads)]
    if args.workers != 1:
        parts += ["--workers", str(args.workers)]
    return shlex.join(parts)


def add_parser(sub) -> None:
    c = sub.add_parser(
        "compare",
        help="MPC vs RL learning curves in unknown worlds; per-episode records, the claim, docs/results.md",
        description="Run every agent in every hidden world of each env: learning agents along their learning "
        "curves (env samples from 0), the others once; all on the same held-out episodes. Writes per-episode "
        "records, tables, the curves figure, the samples-to-threshold claim and docs/results.md.",
    )
    which = c.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="2-core CPU setting, <= 15 min (the default)")
    which.add_argument("--standard", action="store_true", help="CPU setting, about 2 h (RL trained further)")
    which.add_argument("--full", action="store_true", help="the GPU-sized setting (three Unknown tasks)")
    which.add_argument("--config", default=None, help="a config .toml/.json (e.g. a run's config.json)")
    which.add_argument(
        "--report",
        default=None,
        metavar="DIR",
        help="recompute a setting's tables, figure and verdicts from its records (e.g. "
        "docs/results/compare/quick) and regenerate --docs; trains nothing",
    )
    c.add_argument("--envs", nargs="+", default=None, help="only these env ids/labels of the config")
    c.add_argument("--agents", nargs="+", default=None, help="only these agents (see --list-agents)")
    c.add_argument(
        "--budget", type=int_at_least(1), default=None, help="env samples per learning agent (all envs)"
    )
    c.add_argument(
        "--eval-episodes", type=int_at_least(1), default=None, help="held-out test episodes per world"
    )
    c.add_argument("--seed", type=int_at_least(0), default=None)
    c.add_argument("--device", default=None, help="cpu, cuda, ... (agents and evaluation envs)")
    c.add_argument(
        "--threads",
        type=int_at_least(1),
        default=1,
        help="torch CPU threads (default 1: small policies and batched envs gain little from more, and "
        "oversubscribed threads on a shared CPU slow everything down)",
    )
    c.add_argument(
        "--workers",
        type=int_at_least(1),
        default=1,
        help="processes running unfinished runs in parallel, --threads torch threads each (2 on a 2-core "
        "CPU: the records are those of a serial run)",
    )
    c.add_argument("--out", default=None, help="run directory (default runs/compare/<setting>)")
    c.add_argument("--docs", default="docs/results.md", help="results page to regenerate")
    c.add_argument(
        "--records-dir",
        default="docs/results/compare",
        help="where the setting's records, config, provenance and figure are copied (<dir>/<setting>/)",
    )
    c.add_argument(
        "--no-docs", action="store_true", help="do not write the records directory and results page"
    )
    c.add_argument("--retrain", action="store_true", help="ignore finished rows/models in the run directory")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.add_argument("--list-agents", action="store_true", help="list registered agents and exit")
    c.set_defaults(func=run)
