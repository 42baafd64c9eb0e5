#!/usr/bin/env bash
# The issue-14 tables that are GPU-sized on this project's CPUs (field pathways: one MPC decision on
# Wnt/Notch at batch 64 takes minutes on one CPU thread): the task-design check of every registered
# task (zero action, oracle MPC, 64 episodes) and the unknown-world baselines (8 worlds x 64
# episodes). Resumable: rerun the same command after an interruption. Then summarise with
#   python scripts/bench_worlds.py --summarize <csv>
set -euo pipefail
DEV=${DEV:-cuda}
python scripts/bench_worlds.py --device "$DEV" --tasks all --worlds default --agents zero oracle_mpc \
  --episodes 64 --out docs/results/tasks/design.csv
for t in MAPK Wnt Notch; do
  python scripts/bench_worlds.py --device "$DEV" --tasks "pbhno/$t-Unknown-v0" --worlds 0-7 --episodes 64 \
    --out "docs/results/worlds/$(echo "$t" | tr A-Z a-z)_unknown_64.csv"
done
