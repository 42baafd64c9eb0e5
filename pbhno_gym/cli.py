"""The ``pbhno`` command line: one subcommand per job (see ``pbhno --help``).

Each subcommand lives in ``pbhno_gym/commands/<name>.py``; this module only assembles them.
User errors (bad options, files, specs, configs) end with one line ``pbhno <verb>: <message>``
on stderr and exit status 2; ``--debug`` also prints the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from .commands import COMMANDS

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, OSError, RuntimeError)
"""Errors reported as one line (SpecError, ConfigError, DatasetError, JSON/TOML errors are
ValueErrors; missing files OSErrors; refused env calls and torch device errors RuntimeErrors)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) that still name the option."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pbhno", description="pbhno-gym: simulate, collect, fit, plan, compare.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
    for sp in sub.choices.values():  # also accept --debug after the verb
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def _one_line(e: BaseException) -> str:
    msg = e.args[0] if isinstance(e, KeyError) and len(e.args) == 1 else str(e)
    return " ".join(str(msg).split()) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prog = f"pbhno {args.command}"
    try:
        return int(args.func(args) or 0)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        msg = e.code if e.code.startswith(prog) else f"{prog}: {e.code}"
        print(msg, file=sys.stderr)
        return 2
    except USER_ERRORS as e:
        if args.debug:
            traceback.print_exc()
        hint = "" if args.debug else " (--debug shows the traceback)"
        print(f"{prog}: {_one_line(e)}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
