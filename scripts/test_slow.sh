#!/usr/bin/env bash
# The slow test tier: checks kept out of the default run (`-m "not cuda and not slow"`), among
# them the local-Ray sweep, which needs the `discovery` extra (pyPESTO, emcee, Ray). Ray is not in
# `dev` because its start-up alone took about 5 min (315 s) on a shared 2-core CPU.
# Usage (from the repository root):  bash scripts/test_slow.sh [extra pytest args, e.g. tests/experiments]
# Set PBHNO_NO_INSTALL=1 to use the current environment as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PBHNO_NO_INSTALL:-}" ]]; then
  python -c "import ray, pypesto, emcee" 2>/dev/null || python -m pip install -e ".[dev,discovery]"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec python -m pytest -q -m "slow and not cuda" --timeout "${PBHNO_SLOW_TIMEOUT:-1800}" "$@"
