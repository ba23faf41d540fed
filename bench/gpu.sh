#!/usr/bin/env bash
# One prepared command for a machine with a GPU (issue: Q1 with error bars).
#   MRPC_DIR=/path/to/mrpc bash bench/gpu.sh [results-folder]
# 1. How many runs share the GPU best: J concurrent one-epoch v2 runs (full profile) for J in 1 2 4 8,
#    total training samples/s printed for each; the best J is used below (and is what to put in
#    helpers.sweeps.GPU_JOBS_AUTO).
# 2. The GPU figures: the Trainer path's samples/s and a plain loop over the same batches
#    (gpu_train_samples_per_s, gpu_trainer_vs_loop; target within 1.5x) -> results/bench_gpu.json.
# 3. The sweep: v1, v2, v2-noproj, lora and full over 5 seeds, and v1's recipe variants (LSTM encoder,
#    50 virtual tokens), full profile, resumable: results/sweep_full.json and one JSON per run in
#    results/sweep_full/ (target: at most 9 minutes on an H100). v1 and v2's train seconds are in each run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-results}
mkdir -p "$OUT"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "bench/gpu.sh: torch sees no GPU (install a CUDA build of torch)")'
JOBS_DIR=$(mktemp -d)
best=1; best_rate=0
for J in 1 2 4 8; do
  start=$(date +%s.%N)
  for i in $(seq 1 "$J"); do
    "$PY" -m helpers q1 --method v2 --profile full --seed "$i" --set num_train_epochs=1 \
        --output-dir "$JOBS_DIR/j$J-$i" > "$JOBS_DIR/j$J-$i.log" 2>&1 &
  done
  wait
  rate=$("$PY" -c "import sys; print(round($J * 3668 / ($(date +%s.%N) - $start), 1))")
  echo "jobs $J: $rate training samples/s in all (one epoch each, including start-up)"
  if "$PY" -c "import sys; sys.exit(0 if $rate > $best_rate else 1)"; then best=$J; best_rate=$rate; fi
done
echo "best jobs: $best ($best_rate samples/s)"
"$PY" - "$OUT/bench_gpu.json" <<'PY'
import sys
from helpers import bench, results, runinfo
figures = {"machine": runinfo.environment(), **bench.gpu_figures(steps=200)}
print({k: v for k, v in figures.items() if k.startswith("gpu_")})
results.save_json(figures, sys.argv[1])
PY
time "$PY" -m helpers sweep --methods "${METHODS:-v1,v2,v2-noproj,lora,full,v1-lstm,v1-50tok}" --seeds 5 \
    --profile full --jobs "$best" --out "$OUT/sweep_full.json"
