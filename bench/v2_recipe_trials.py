"""One v2 recipe trial on a CPU (issue: Q1 fast): how soon does v2, with its projection, reach 0.75
validation accuracy when one setting changes?

    python bench/v2_recipe_trials.py NAME '{"per_device_train_batch_size": 16, "cap": 300}' [OUT.jsonl]

v2 in the quick profile with the given overrides (any ``--set`` name, ``dropout`` included, plus
``cap`` in seconds (420), ``evals_per_epoch`` (4) and ``seed`` (0)), through ``timing.time_to_accuracy``:
validation ``evals_per_epoch`` times an epoch, stopped at 0.75, at the cap or at the profile's end.
One JSON line is appended to OUT (default ``outputs/v2_recipe_trials.jsonl``): the overrides, the
seed and every evaluation as ``(epoch, wall s, wall s without evaluations, accuracy)``. Run it on an
otherwise idle machine. ``results/v2_recipe_trials_cpu.jsonl`` holds the trials made with its first
version (commit d9e947a: the same stopping rule and dropout setting, written inline before
``time_to_accuracy`` and the ``dropout`` setting had them); ``bench.trials_table`` tables them.
"""
import json
import sys

from helpers import config, timing
from helpers.runinfo import environment

name, over = sys.argv[1], json.loads(sys.argv[2])
path = sys.argv[3] if len(sys.argv) > 3 else config.output_dir() / "v2_recipe_trials.jsonl"
K, cap, seed = int(over.pop("evals_per_epoch", 4)), float(over.pop("cap", 420)), int(over.pop("seed", 0))
dropout = over.pop("dropout", None)
r = timing.time_to_accuracy(seed=seed, evals_per_epoch=K, cap_s=cap, output_dir=config.output_dir("trials", name),
                           dropout=dropout, **over)
evals = r["time_to_val_075_evals"]
reached = next((e for e in evals if e[3] >= 0.75), None)
out = dict(name=name, over=over, seed=seed, dropout=dropout, K=K, cap_s=cap,
           precision=r["time_to_val_075_config"]["precision_used"], reached=reached, evals=evals,
           stopped=r["time_to_val_075_stopped"], environment=environment())
print("RESULT", json.dumps(out), flush=True)
with open(path, "a") as f:
    f.write(json.dumps(out) + "\n")
