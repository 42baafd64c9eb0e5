"""The ``pbhno`` command line: one subcommand per job.

pbhno demo       simulate every pathway and save a figure
"""

from __future__ import annotations

import argparse
import json
import sys


def _demo(args: argparse.Namespace) -> int:
    from .experiments.demo import run_demo

    summary = run_demo(args.out, seed=args.seed)
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pbhno", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="simulate every pathway and save a figure")
    d.add_argument("--out", default="outputs/demo", help="output folder")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
