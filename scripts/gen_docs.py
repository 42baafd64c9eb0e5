#!/usr/bin/env python
"""Regenerate the parameter tables embedded in docs/models.md from the code."""

from pathlib import Path

from pbhno_gym.physics.docs import render
from pbhno_gym.utils.io import atomic_write_text

path = Path(__file__).resolve().parents[1] / "docs" / "models.md"
atomic_write_text(path, render(path.read_text()))
print(f"updated {path}")
