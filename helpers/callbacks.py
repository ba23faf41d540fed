"""Trainer callbacks that every training run uses, one job each, as fastai keeps its callbacks apart from
the loop.

* ``KeepBest``: the trainable weights of the best validation epoch, kept in memory and put back at the end
  (the Trainer's ``load_best_model_at_end`` fails for peft's prompt-learning methods).
* ``StopOnSignal``: Ctrl-C or SIGTERM stops after the current step, with a checkpoint; presses closer than
  ``SIGNAL_WINDOW_S`` are one; a later press stops at once, naming the last complete checkpoint.
* ``CheckpointExtras``: what the workbook adds to each checkpoint (every trainable tensor, the best
  weights, the run's settings and seconds), and reads back on resume.
* ``EpochLog``: one line per evaluation into ``$WORKBOOK_PROGRESS_LOG``, which ``make run`` tails, so a
  notebook that trains for minutes shows its progress in the log.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from transformers import TrainerCallback

from . import checkpoints
from .checkpoints import BEST_FILE, STATE_FILE, TRAINABLE_FILE

PROGRESS_LOG = "WORKBOOK_PROGRESS_LOG"
# Signals closer together than this are one press: `timeout`, `torchrun` and a terminal's Ctrl-C (sent to the
# whole process group) can deliver one SIGINT twice within milliseconds. A press after it stops at once.
SIGNAL_WINDOW_S = 1.0


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C, a notebook's interrupt) or SIGTERM; ``checkpoint`` is the last
    complete one, which ``run(..., resume=True)`` continues from. ``str()`` says how."""

    def __init__(self, message: str, checkpoint: str):
        super().__init__(message)
        self.checkpoint = checkpoint


class StopOnSignal(TrainerCallback):
    """While ``catching``: the first SIGINT or SIGTERM sets ``stop``; the run then ends after the current step
    with a checkpoint, without evaluating the half-trained epoch."""

    def __init__(self):
        self.stop, self.first = None, 0.0

    def on_step_end(self, args, state, control, **kw):
        if self.stop:
            control.should_save = control.should_training_stop = True
        return control

    def on_epoch_end(self, args, state, control, **kw):
        if self.stop:  # the epoch was cut short: neither evaluate it nor save it again
            control.should_evaluate = control.should_save = False
        return control

    def handler(self, trainer, out: Path):
        """The signal handler for a run of ``trainer`` in ``out``."""
        def handle(signum, frame):
            name = signal.Signals(signum).name
            if self.stop:
                if time.monotonic() - self.first < SIGNAL_WINDOW_S:
                    return  # the same press, delivered twice
                last, _ = checkpoints.resumable(out)
                where = f"the last complete checkpoint is {last}" if last else "no checkpoint is complete yet"
                raise RunInterrupted(f"{name} again: stopped at once during step {trainer.state.global_step + 1} "
                                     f"of {trainer.state.max_steps}, without saving; {where}. To continue from it: "
                                     "the same call with resume=True (python -m helpers q1 ... --resume)",
                                     str(last or ""))
            self.stop, self.first = name, time.monotonic()
            print(f"\n{name}: stopping after this step and saving a checkpoint (press again after a second: stop "
                  "at once)", file=sys.stderr, flush=True)
        return handle

    @contextlib.contextmanager
    def catching(self, trainer, out: Path):
        """Install the handler for SIGINT and SIGTERM while the block runs, then put the old ones back.
        Only in the main thread, where signals land."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handle = self.handler(trainer, out)
        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


class KeepBest(TrainerCallback):
    """The trainable weights of the epoch with the best validation ``metric``, kept in memory and put back
    when training ends (not when it was stopped by a signal: that run goes on later)."""

    def __init__(self, stopper: StopOnSignal | None = None, metric: str = "eval_accuracy"):
        self.stopper, self.metric, self.best, self.state = stopper, metric, None, None

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kw):
        score = (metrics or {}).get(self.metric)
        if score is not None and (self.best is None or score > self.best):
            self.best = score
            self.state = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}

    def on_train_end(self, args, state, control, model=None, **kw):
        if self.state is not None and not (self.stopper and self.stopper.stop):
            params = dict(model.named_parameters())
            for name, saved in self.state.items():
                params[name].data.copy_(saved)


class CheckpointExtras(TrainerCallback):
    """The workbook's files in each checkpoint: every trainable tensor (``TRAINABLE_FILE``: peft saves
    prompt-learning adapters as the encoder's output, which cannot be trained on from), the best weights
    (``BEST_FILE``) and ``STATE_FILE`` (best score, seconds trained, the run's settings for a resume to
    compare). The Trainer's ``_save_checkpoint`` calls ``save`` before it marks the checkpoint complete."""

    def __init__(self, keeper: KeepBest, settings: dict):
        self.keeper, self.settings, self.seconds_before, self.started = keeper, settings, 0.0, None

    def on_train_begin(self, args, state, control, **kw):
        self.started = time.perf_counter()

    def seconds(self) -> float:
        """Seconds trained so far, over every resume."""
        return self.seconds_before + (time.perf_counter() - self.started if self.started else 0.0)

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        """Stamp the evaluation's record in the history with ``train_s``, the seconds trained so far (over every
        resume, validations included), so a run says when it reached an accuracy, not only at which epoch."""
        for record in reversed(state.log_history):
            if record.get("step") == state.global_step and "eval_accuracy" in record:
                record["train_s"] = round(self.seconds(), 1)
                break

    def save(self, folder: Path, model=None) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        if model is not None:
            trainable = {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}
            save_file(trainable, str(folder / TRAINABLE_FILE))
        if self.keeper.state is not None:
            save_file({k: v.contiguous() for k, v in self.keeper.state.items()}, str(folder / BEST_FILE))
        (folder / STATE_FILE).write_text(json.dumps({"best": self.keeper.best, "train_seconds": self.seconds(),
                                                     "settings": self.settings}))

    def load(self, folder: Path) -> None:
        """Restore the best weights and the seconds trained from a checkpoint."""
        from safetensors.torch import load_file

        saved = json.loads((folder / STATE_FILE).read_text()) if (folder / STATE_FILE).is_file() else {}
        self.keeper.best, self.seconds_before = saved.get("best"), saved.get("train_seconds", 0.0)
        self.keeper.state = load_file(str(folder / BEST_FILE)) if (folder / BEST_FILE).is_file() else None


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
