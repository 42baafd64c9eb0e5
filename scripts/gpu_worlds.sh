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
for id in pbhno/MAPK-Unknown-v0 pbhno/Wnt-Unknown-v1 pbhno/Notch-Unknown-v0; do
  name=$(basename "$id" | cut -d- -f1 | tr A-Z a-z)
  python scripts/bench_worlds.py --device "$DEV" --tasks "$id" --worlds 0-7 --episodes 64 \
    --out "docs/results/worlds/${name}_unknown_64.csv"
done
