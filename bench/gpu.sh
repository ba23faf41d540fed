#!/usr/bin/env bash
# One prepared command for a machine with a GPU: the full-profile Q1 comparison
# (v1, v2, v2-noproj, full fine-tuning), one results JSON per method, then a summary.
#   MRPC_DIR=/path/to/mrpc bash bench/gpu.sh [results-folder]
# Target: v1 and v2 together in at most 60 s of training on an H100-class GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-results}
mkdir -p "$OUT"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "bench/gpu.sh: torch sees no GPU (install a CUDA build of torch)")'
for method in v1 v2 v2-noproj full; do
  "$PY" -m helpers q1 --method "$method" --profile full --out "$OUT/q1_$method.json"
done
"$PY" - "$OUT" <<'PY'
import sys
from pathlib import Path
from helpers.ptuning import RunResult
rows = [RunResult.from_json(p) for p in sorted(Path(sys.argv[1]).glob("q1_*.json")) if p.stem in
        {"q1_v1", "q1_v2", "q1_v2-noproj", "q1_full"}]
for r in rows:
    print(f"{r.method:10s} {r.train_seconds:7.1f} s  val {r.best['eval_accuracy']:.4f}  test {r.test['accuracy']:.4f}"
          f"  on {r.config['environment']['device']}")
both = sum(r.train_seconds for r in rows if r.method in ("v1", "v2"))
print(f"v1 + v2 training: {both:.1f} s (target <= 60 s on an H100-class GPU)")
PY
