"""One v2 recipe trial on a CPU (issue: Q1 fast): how soon does v2, with its projection, reach 0.75
validation accuracy when one setting changes?

    python bench/v2_recipe_trials.py NAME '{"per_device_train_batch_size": 16, "cap": 300}' [OUT.jsonl]

v2 in the quick profile with the given overrides (any ``--set`` name, plus ``cap`` in seconds,
``evals_per_epoch`` (4), ``seed`` (0) and ``dropout``: every dropout of the model and head set to
this probability). Validation runs ``evals_per_epoch`` times an epoch; the run stops at 0.75, at the
cap or at the profile's end. One JSON line is appended to OUT (default
``outputs/v2_recipe_trials.jsonl``): the overrides, the seed and every evaluation as
``(epoch, wall s, wall s without evaluations, accuracy)``. Run it on an otherwise idle machine.
``results/v2_recipe_trials_cpu.json`` holds the trials made with it and ``bench.trials_table`` tables them.
"""
import json
import math
import sys
import time

from transformers import TrainerCallback
from transformers.trainer_utils import IntervalStrategy

from helpers import config, ptuning
from helpers.runinfo import environment

name, over = sys.argv[1], json.loads(sys.argv[2])
path = sys.argv[3] if len(sys.argv) > 3 else config.output_dir() / "v2_recipe_trials.jsonl"
K = int(over.pop("evals_per_epoch", 4))
cap = float(over.pop("cap", 420))
seed = int(over.pop("seed", 0))
dropout = over.pop("dropout", None)
target = 0.75


class Rec(TrainerCallback):
    def __init__(s):
        s.evals, s.eval_s, s.reached = [], 0.0, None

    def on_train_begin(s, a, st, c, **k):
        s.t0 = time.perf_counter()

    def on_step_end(s, a, st, c, **k):
        if time.perf_counter() - s.t0 > cap:
            c.should_training_stop = True

    def on_evaluate(s, a, st, c, metrics=None, **k):
        now = time.perf_counter() - s.t0
        acc = metrics["eval_accuracy"]
        s.eval_s += metrics.get("eval_runtime", 0)
        s.evals.append((round(st.epoch, 2), round(now, 1), round(now - s.eval_s, 1), round(acc, 4)))
        print("EVAL", name, s.evals[-1], flush=True)
        if s.reached is None and acc >= target:
            s.reached = s.evals[-1]
            c.should_training_stop = True


rec = Rec()
p = ptuning.prepare("v2", "quick", seed, output_dir=config.output_dir("trials", name), callbacks=[rec], **over)
if dropout is not None:  # every dropout of the (frozen) model and head
    import torch

    for m in p.trainer.model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = float(dropout)
        if hasattr(m, "dropout_prob"):  # BERT's sdpa attention reads this float, not a module
            m.dropout_prob = float(dropout)
spe = math.ceil(len(p.splits["train"]) / p.cfg["per_device_train_batch_size"])
p.trainer.args.eval_strategy = IntervalStrategy.STEPS
p.trainer.args.eval_steps = max(1, spe // K)
p.trainer.args.save_strategy = IntervalStrategy.NO
p.trainer.args.disable_tqdm = True
p.trainer.train()
out = dict(name=name, over=over, seed=seed, dropout=dropout, K=K, cap_s=cap, precision=p.cfg["precision_used"],
           steps_per_epoch=spe, reached=rec.reached, evals=rec.evals, eval_s=round(rec.eval_s, 1),
           environment=environment())
print("RESULT", json.dumps(out), flush=True)
with open(path, "a") as f:
    f.write(json.dumps(out) + "\n")
