#!/usr/bin/env bash
# One short prepared GPU run (< 5 min): CUDA tests, then the GPU benchmarks, summary table last.
# Usage on a machine with a CUDA GPU and this repo installed:  bash scripts/gpu_check.sh
set -uo pipefail
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print(torch.__version__, torch.cuda.get_device_name())"
echo "== CUDA tests"
timeout 120 python -m pytest -q -m cuda tests 2>&1 | tail -n 15 | tee "$OUT/cuda_tests.txt"
echo "== simulator throughput"
timeout 240 python scripts/bench_sim.py --device cuda --batches 1 256 4096 16384 --steps 5 --compile \
  --bandwidth 4800 2>&1 | tee "$OUT/bench_sim.txt"
echo "== summary"
sed -n '/^### /,$p' "$OUT/bench_sim.txt"
echo "== environment throughput"
timeout 120 python scripts/bench_envs.py --device cuda --num-envs 1 256 4096 16384 2>&1 | tee "$OUT/bench_envs.txt"
sed -n '/^### /,$p' "$OUT/bench_envs.txt"
echo "== MPC replanning latency (MAPK GN/Adam eager + CUDA graphs, Wnt Adam)"
timeout 240 python scripts/bench_mpc.py --sections latency --device cuda --compile --compile-mode reduce-overhead \
  --batches 1 256 1024 --field-envs pbhno/Wnt-v1 --out "$OUT/bench_mpc.json" 2>&1 | tail -n 25 | tee "$OUT/bench_mpc.txt"
echo "== MAPK MPC decision at batch 1: torch.compile vs ahead-of-time (AOTInductor) step Jacobians"
timeout 300 python scripts/bench_mpc_decision.py --device cuda --agents oracle --batches 1 --episodes-b1 2 \
  --modes compiled aot --out "$OUT/bench_mpc_decision.json" 2>&1 | tail -n 12 | tee "$OUT/bench_mpc_decision.txt"
echo "== PB-HNO rollout vs the simulator at matched accuracy (Table II sizes, untrained: the skeleton)"
timeout 180 python scripts/bench_surrogate.py --parts speed --envs pbhno/Wnt-v1 pbhno/Notch-v1 --device cuda \
  --out "$OUT/bench_surrogate" 2>&1 | tail -n 5 | tee "$OUT/bench_surrogate.txt"
