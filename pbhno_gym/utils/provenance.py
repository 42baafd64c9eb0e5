"""Provenance of results: the git state of the code that produced them."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["git_state"]


def git_state(cwd: str | Path | None = None) -> str:
    """``<hash>``, ``<hash>-dirty`` (tracked files modified) or ``unknown``, of the repository at
    ``cwd`` (default: the one this package is imported from, i.e. the code that ran, also when a
    script runs a worktree through ``PYTHONPATH``)."""
    here = Path(cwd) if cwd is not None else Path(__file__).parent

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], capture_output=True, text=True, timeout=5, cwd=here).stdout.strip()

    try:
        h = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (h + ("-dirty" if dirty else "")) if h else "unknown"
