#!/usr/bin/env bash
# One prepared command for a machine with a GPU (issue 22: the frontier, and v1 + v2 timed at 20 epochs).
#   MRPC_DIR=/path/to/mrpc bash bench/gpu.sh [results-folder]
#   PROFILE=smoke SEEDS=1 EPOCHS=1 LONG_EPOCHS=2 bash bench/gpu.sh /tmp/out   # every step on a CPU, a dry run
# 1. How many runs share the GPU best: J concurrent one-epoch v2 runs for J in 1 2 4 8, total training
#    samples/s printed for each; the sweep below gives each run 1/J of the GPU as a Ray task (--gpus-per-run).
# 2. The GPU figures: the Trainer path's samples/s and a plain loop over the same batches -> bench_gpu.json.
# 3. The frontier: every method over 5 seeds, the same budget rule as the CPU's (helpers.sweeps.GROUPS):
#    frontier_gpu.json and one JSON per run (with test predictions) in frontier_gpu/.
# 4. v1 and v2 at 20 epochs, seed 0, one after the other: v1_v2_20ep_gpu.json; the seconds of training of
#    the two together are printed against the target of 60 s.
# Every JSON records the device and CPU it ran on. Each step resumes: run the same command again after a stop.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-results}
PROFILE=${PROFILE:-full}
SEEDS=${SEEDS:-5}
EPOCHS=${EPOCHS:-10}        # the frontier's budget for the prompt methods (the others carry their own)
LONG_EPOCHS=${LONG_EPOCHS:-20}  # v1 + v2 timed at this many epochs
mkdir -p "$OUT"
if [ "$PROFILE" != smoke ]; then
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "bench/gpu.sh: torch sees no GPU (install a CUDA build of torch, or PROFILE=smoke for a dry run)")'
fi
"$PY" -c 'from helpers import runinfo; e = runinfo.environment(); print("device:", e["device"], "| cpu:", e["cpu"])'

JOBS_DIR=$(mktemp -d)
best=1; best_rate=0
for J in ${JOBS_TRIED:-1 2 4 8}; do
  start=$(date +%s.%N)
  for i in $(seq 1 "$J"); do
    "$PY" -m helpers q1 --method v2 --profile "$PROFILE" --seed "$i" --set num_train_epochs=1 \
        --output-dir "$JOBS_DIR/j$J-$i" > "$JOBS_DIR/j$J-$i.log" 2>&1 &
  done
  wait
  rows=$("$PY" -c "from helpers import config; print(config.get_profile('$PROFILE').train_limit or 3668)")
  rate=$("$PY" -c "print(round($J * $rows / ($(date +%s.%N) - $start), 1))")
  echo "jobs $J: $rate training samples/s in all (one epoch each, including start-up)"
  if "$PY" -c "import sys; sys.exit(0 if $rate > $best_rate else 1)"; then best=$J; best_rate=$rate; fi
done
echo "best jobs: $best ($best_rate samples/s)"

"$PY" - "$OUT/bench_gpu.json" <<'PY'
import sys
from helpers import bench, results, runinfo
figures = {"machine": runinfo.environment(), **bench.gpu_figures(steps=200)}
print({k: v for k, v in figures.items() if k.startswith("gpu_")} or "no GPU: no GPU figures")
results.save_json(figures, sys.argv[1])
PY

# Ray packs the runs (a GPU share each, 2 CPUs for their data); without Ray, one run after another.
if "$PY" -c 'import ray' 2>/dev/null; then
  if [ "$PROFILE" = smoke ]; then ENGINE=(--engine ray --cpus-per-run 1)
  else ENGINE=(--engine ray --cpus-per-run 2 --gpus-per-run "$("$PY" -c "print(1 / $best)")"); fi
else
  ENGINE=(--engine local)
fi
echo "sweep engine: ${ENGINE[*]}"
time "$PY" -m helpers sweep --methods frontier --seeds "$SEEDS" --profile "$PROFILE" --set num_train_epochs="$EPOCHS" \
    "${ENGINE[@]}" --out "$OUT/frontier_gpu.json"

"$PY" -m helpers sweep --methods v1,v2 --seeds 1 --profile "$PROFILE" --set num_train_epochs="$LONG_EPOCHS" \
    --out "$OUT/v1_v2_20ep_gpu.json"
"$PY" - "$OUT/v1_v2_20ep_gpu.json" <<'PY'
import sys
from helpers.results import Sweep
sweep = Sweep.from_json(sys.argv[1])
seconds = {label: runs[0].train_seconds for label, runs in sweep.runs.items()}
env = next(iter(sweep.runs.values()))[0].config["environment"]
print(f"v1 + v2 at {sweep.config['overrides']['num_train_epochs']} epochs: {seconds} -> {sum(seconds.values()):.1f} s of training (target 60 s) on "
      f"{env['device']}, {env.get('cpu', 'cpu not recorded')}")
PY
