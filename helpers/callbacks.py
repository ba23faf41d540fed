"""Trainer callbacks that any training run uses, one job each.

``EpochLog`` appends one line per evaluation (method, epoch, validation accuracy, seconds) to the file
that ``WORKBOOK_PROGRESS_LOG`` names: ``make run`` tails that file, so a notebook that trains for
minutes shows its progress in the log instead of nothing.
"""
from __future__ import annotations

import os
import time

from transformers import TrainerCallback

PROGRESS_LOG = "WORKBOOK_PROGRESS_LOG"


class EpochLog(TrainerCallback):
    """One line per evaluation into ``$WORKBOOK_PROGRESS_LOG`` (nothing when it is unset)."""

    def __init__(self, label: str):
        self.label, self.start = label, None

    def on_train_begin(self, args, state, control, **kw):
        self.start = time.perf_counter()

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        path = os.environ.get(PROGRESS_LOG)
        if not path or not state.is_world_process_zero:
            return
        accuracy = (metrics or {}).get("eval_accuracy", float("nan"))
        seconds = time.perf_counter() - (self.start or time.perf_counter())
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{self.label}: epoch {state.epoch:g}/{args.num_train_epochs:g}, "
                    f"validation accuracy {accuracy:.4f}, {seconds:.0f} s\n")
