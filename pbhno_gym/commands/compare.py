"""``pbhno compare``: MPC vs RL on chosen envs under one sample budget; tables, figures, docs/results.md."""

import json
import shlex

from .argtypes import int_at_least


def run(args) -> int:
    import torch

    from ..agents import agent_entries
    from ..experiments.compare import print_table, run_comparison
    from ..experiments.compare_config import load_config, preset

    if args.list_agents:
        for name, e in agent_entries().items():
            print(f"{name:15s} {e.kind:9s} {'' if e.factory else '[slot, not filled] '}{e.description}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config) if args.config else preset("full" if args.full else "quick")
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
        docs_path=None if args.no_docs else args.docs,
        progress=not args.no_progress,
        retrain=args.retrain,
        command=_command(args),
    )
    print(print_table(res.rows))
    for s in res.skipped:
        print(f"skipped {s['env']} / {s['agent']}: {s['reason']}")
    print(json.dumps({k: str(v) for k, v in res.files.items()}, indent=2))
    return 0


def _command(args) -> str:
    """The command line that reproduces this run (options that differ from their defaults)."""
    parts = ["pbhno", "compare"]
    for flag, value in (("--quick", args.quick), ("--full", args.full), ("--retrain", args.retrain)):
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
    return shlex.join(parts)


def add_parser(sub) -> None:
    c = sub.add_parser(
        "compare",
        help="train and evaluate MPC and RL agents under one budget; tables, figures, docs/results.md",
        description="Train (or load) each agent on each env under the same env-sample budget, evaluate all "
        "on the same held-out episodes, write results.csv/.md, figures and docs/results.md.",
    )
    which = c.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="2-core CPU setting, ~10 min (the default)")
    which.add_argument("--full", action="store_true", help="the GPU-sized setting (Wnt, NotchLattice, MAPK)")
    which.add_argument("--config", default=None, help="a config .toml/.json (e.g. a run's config.json)")
    c.add_argument("--envs", nargs="+", default=None, help="only these env ids/labels of the config")
    c.add_argument("--agents", nargs="+", default=None, help="only these agents (see --list-agents)")
    c.add_argument(
        "--budget", type=int_at_least(1), default=None, help="env samples per learning agent (all envs)"
    )
    c.add_argument(
        "--eval-episodes", type=int_at_least(1), default=None, help="held-out test episodes per agent"
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
    c.add_argument("--out", default=None, help="run directory (default runs/compare/<setting>)")
    c.add_argument("--docs", default="docs/results.md", help="results page to regenerate")
    c.add_argument("--no-docs", action="store_true", help="do not write the results page")
    c.add_argument("--retrain", action="store_true", help="ignore finished rows/models in the run directory")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    c.add_argument("--list-agents", action="store_true", help="list registered agents and exit")
    c.set_defaults(func=run)
