"""Timing tools for the benchmarks: peak memory, timed optimizer steps, time to a validation accuracy, and the
Trainer against a plain loop. Each puts back what it changes (the Trainer's arguments, its callbacks).
``bench`` runs them and reports; nothing here prints.
"""
from __future__ import annotations

import contextlib
import threading
import time

from transformers import TrainerCallback
from transformers.trainer_utils import IntervalStrategy

from . import config


class PeakRSS:
    """The highest resident memory of this process while the block runs (sampled every 50 ms)."""

    def __enter__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


class StepTimer(TrainerCallback):
    """Times optimizer steps, from the start of the first to the end of the last."""

    def __init__(self):
        self.start = self.end = None
        self.steps = 0

    def on_step_begin(self, args, state, control, **kw):
        if self.start is None:
            self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.steps, self.end = self.steps + 1, time.perf_counter()


@contextlib.contextmanager
def replacing(obj, **values):
    """Set attributes of ``obj`` for the block, then put the old values back (fastai's ``replacing_yield``)."""
    old = {k: getattr(obj, k) for k in values}
    for k, v in values.items():
        setattr(obj, k, v)
    try:
        yield obj
    finally:
        for k, v in old.items():
            setattr(obj, k, v)


def train_steps(trainer, steps: int, callbacks=()) -> None:
    """Train ``steps`` optimizer steps from the start of an epoch, without evaluating or saving, with
    ``callbacks`` attached for this call only; the Trainer's arguments are put back afterwards."""
    for cb in callbacks:
        trainer.add_callback(cb)
    try:
        with replacing(trainer.args, max_steps=steps, eval_strategy=IntervalStrategy.NO,
                       save_strategy=IntervalStrategy.NO):  # no checkpoints inside a timing
            trainer.train()
    finally:
        for cb in callbacks:
            trainer.remove_callback(cb)


def timed_steps(trainer, steps: int) -> tuple[float, float]:
    """(samples/s, peak RSS in MB) over the first ``steps`` optimizer steps of an epoch, after one
    untimed warm-up step. Every call replays the same (seeded) batch order."""
    train_steps(trainer, 1)  # warm-up: allocator, first kernels
    timer = StepTimer()
    with PeakRSS() as mem:
        train_steps(trainer, steps, [timer])
    batch = trainer.args.per_device_train_batch_size * trainer.args.world_size
    return timer.steps * batch / (timer.end - timer.start), mem.peak / 2**20


def megabatch_steps(trainer) -> int:
    """How many batches ``group_by_length`` sorts together (transformers'
    ``get_length_grouped_indices``: a shuffled mega-batch, longest first). A timing window of
    whole mega-batches sees the epoch's mix of lengths; a shorter one sees its longest batches."""
    batch = trainer.args.per_device_train_batch_size * trainer.args.world_size
    return max(1, min(len(trainer.train_dataset) // (batch * 4), 50))


class StopAt(TrainerCallback):
    """Stops training once validation accuracy reaches ``target`` (or after ``cap_s`` seconds), keeping every
    evaluation as ``(epoch, wall_s, train_s, accuracy)``; ``train_s`` leaves the validations' seconds out."""

    def __init__(self, target: float, cap_s: float | None = None):
        self.target, self.cap_s = target, cap_s
        self.reached, self.stopped, self.evals, self.eval_s, self.start = None, "end", [], 0.0, None

    def on_train_begin(self, args, state, control, **kw):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self.cap_s is not None and time.perf_counter() - self.start > self.cap_s:
            self.stopped, control.should_training_stop = "cap", True

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        wall = time.perf_counter() - self.start
        self.eval_s += metrics.get("eval_runtime", 0.0)
        acc = metrics["eval_accuracy"]
        self.evals.append((round(state.epoch, 2), round(wall, 1), round(wall - self.eval_s, 1), round(acc, 4)))
        if self.reached is None and acc >= self.target:
            self.reached, self.stopped = self.evals[-1], "target"
            control.should_training_stop = True


def time_to_accuracy(target: float = 0.75, *, method: str = "v2", profile: str = "quick", seed: int = 0,
                     evals_per_epoch: int = 1, cap_s: float | None = None, output_dir=None, **overrides) -> dict:
    """Wall seconds of training (``method`` in ``profile``, its defaults unless ``overrides``) until
    validation accuracy first reaches ``target``; training stops there, or after ``cap_s`` seconds,
    or at the profile's end. Validation runs ``evals_per_epoch`` times an epoch (its seconds count:
    they are part of getting there; ``train_s`` in each evaluation leaves them out). No checkpoints
    are written. Every evaluation is kept: ``(epoch, wall_s, train_s, accuracy)``."""
    from . import training

    if evals_per_epoch < 1:
        raise ValueError(f"evals_per_epoch must be 1 or more, got {evals_per_epoch!r}")
    stop = StopAt(target, cap_s)
    out = output_dir or config.output_dir("bench", "tta")
    p = training.prepare(method, profile, seed, output_dir=out, callbacks=[stop], **overrides)
    every = dict(eval_strategy=IntervalStrategy.STEPS,
                 eval_steps=max(1, training.steps_per_epoch(len(p.splits["train"]), p.trainer.args) // evals_per_epoch))
    with replacing(p.trainer.args, save_strategy=IntervalStrategy.NO, **(every if evals_per_epoch > 1 else {})):
        p.trainer.train()
    reached = stop.reached or (None, None, None)
    return {"time_to_val_075_s": reached[1], "time_to_val_075_train_s": reached[2], "time_to_val_075_epoch": reached[0],
            # the best validation accuracy seen (the run stops early once it reaches the target)
            f"{profile}_profile_val_acc": max((e[3] for e in stop.evals), default=None),
            "time_to_val_075_stopped": stop.stopped, "time_to_val_075_evals": stop.evals,
            "time_to_val_075_config": {"method": method, "profile": profile, "seed": seed,
                                       "evals_per_epoch": evals_per_epoch, "cap_s": cap_s, "target": target,
                                       "overrides": overrides,
                                       **{k: v for k, v in p.cfg.items() if k not in ("environment", "data")}}}


def trainer_vs_loop(method: str = "v2", steps: int = 50, profile: str = "full", **overrides) -> dict:
    """Samples/s of ``steps`` optimizer steps through the workbook's Trainer against a plain PyTorch
    loop over the same model (built afresh), batches (the Trainer's own dataloader), optimizer and
    precision, after one untimed warm-up step each. On a GPU the gap is the Trainer's per-step
    overhead (launch-bound for a 22M-parameter model); the issue's target is a ratio within 1.5."""
    import torch

    from . import methods, training

    p = training.prepare(method, profile, 0, output_dir=config.output_dir("bench", "loop"), eval_limit=64,
                        **overrides)
    trainer = p.trainer
    batch = trainer.args.per_device_train_batch_size * trainer.args.world_size
    train_steps(trainer, 1)
    timer = StepTimer()
    train_steps(trainer, steps, [timer])
    trainer_sps = timer.steps * batch / (timer.end - timer.start)

    device = trainer.args.device
    net = methods.get(method).build(p.cfg, p.choice).to(device).train()
    optimizer, schedule = training.make_optimizer(net, p.cfg, steps + 1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p.cfg["precision_used"])
    batches = iter(trainer.get_train_dataloader())

    def step():
        inputs = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = net(**inputs).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    loop_sps = steps * batch / (time.perf_counter() - start)
    return {"trainer_samples_per_s": round(trainer_sps, 1), "loop_samples_per_s": round(loop_sps, 1),
            "trainer_vs_loop": round(loop_sps / trainer_sps, 3), "steps": steps, "batch": batch,
            "device": str(device), "precision": p.cfg["precision_used"]}


