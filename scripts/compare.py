#!/usr/bin/env python
"""MPC vs RL comparison (same as ``pbhno compare``): ``python scripts/compare.py --quick``."""

import sys

from pbhno_gym.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
