"""The ``pbhno`` command line: one subcommand per job (see ``pbhno --help``).

Each subcommand lives in ``pbhno_gym/commands/<name>.py``; this module only assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pbhno", description="pbhno-gym: simulate, collect, fit, plan, compare.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
