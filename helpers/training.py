"""One training run, for every method and question: ``run(method, profile, seed, **overrides)``.

``prepare`` builds what a run trains with (settings, data, the method's model, ``training_args``, the
Trainer with its optimizer and callbacks); ``run`` trains it under a folder lock, survives Ctrl-C and
SIGTERM with a checkpoint, resumes from the newest complete one, scores the test split once with the
model chosen on validation accuracy, and returns a ``RunResult``. The callbacks are in ``callbacks``,
checkpoint files in ``checkpoints``, each method in ``methods``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import shutil
from pathlib import Path

import torch
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler

from . import checkpoints, methods
from .callbacks import CheckpointExtras, EpochLog, KeepBest, RunInterrupted, StopOnSignal  # noqa: F401 (public)
from .checkpoints import TRAINABLE_FILE
from .data import limit_split, load_mrpc, tokenize_mrpc
from .models import ModelChoice, load_tokenizer, resolve_model
from .results import RunResult, eval_records
from .runinfo import check_writable, environment, folder_lock, is_rank_zero, resolve_precision
from .settings import default_output_dir, resolve_config


@functools.cache
def metric():
    """Accuracy and F1 as an ``evaluate`` metric, loaded by path from the module shipped in
    ``helpers/metrics/`` (no hub download), once per process."""
    import evaluate

    return evaluate.load(str(Path(__file__).parent / "metrics" / "accuracy_f1.py"))


def compute_metrics(eval_pred) -> dict:
    """The Trainer's metrics: accuracy and F1 of the argmax prediction."""
    logits, labels = eval_pred
    return metric().compute(predictions=logits.argmax(-1), references=labels)


def make_optimizer(model, cfg: dict, num_training_steps: int):
    """AdamW over the trainable parameters (no weight decay on biases and LayerNorm; the classification
    head, and the pooler under it, at ``head_learning_rate`` when one is set) and a linear schedule with
    warm-up, sized in optimizer steps. Both are handed to the Trainer."""
    from transformers import get_linear_schedule_with_warmup

    head_lr = cfg.get("head_learning_rate") or cfg["learning_rate"]
    groups: dict[tuple, list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            decay = 0.0 if p.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") else cfg["weight_decay"]
            is_head = ".classifier." in f".{name}" or ".pooler." in f".{name}"  # the pooler, when it trains
            lr = head_lr if is_head else cfg["learning_rate"]
            groups.setdefault((lr, decay), []).append(p)
    # fused AdamW (one kernel for all parameters) on a GPU, where per-parameter kernel launches dominate
    optimizer = torch.optim.AdamW([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                                  lr=cfg["learning_rate"], fused=torch.cuda.is_available())
    warmup = math.ceil(cfg["warmup_ratio"] * num_training_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, num_training_steps)


def pad_multiple(cfg: dict) -> int | None:
    """Pad batches to a multiple of this length: ``pad_to_multiple_of``, else 16 under ``torch_compile``
    (each new shape is a recompilation), else None (pad to the batch's longest pair)."""
    return cfg.get("pad_to_multiple_of") or (16 if cfg.get("torch_compile") else None)


def training_args(cfg: dict, output_dir, seed: int = 42):
    """The ``TrainingArguments`` a run with settings ``cfg`` trains with: an evaluation and a checkpoint
    every epoch, length-grouped batches, the precision ``resolve_precision`` picks for this machine."""
    from transformers import TrainingArguments

    precision = resolve_precision(cfg["precision"])
    return TrainingArguments(
        output_dir=str(output_dir), seed=seed, data_seed=seed,
        num_train_epochs=cfg["num_train_epochs"], per_device_train_batch_size=cfg["per_device_train_batch_size"],
        per_device_eval_batch_size=cfg["per_device_eval_batch_size"], learning_rate=cfg["learning_rate"],
        weight_decay=cfg["weight_decay"], eval_strategy="epoch", logging_strategy="steps",
        save_strategy="epoch",  # the workbook keeps the newest complete checkpoints (checkpoints.KEEP)
        logging_steps=cfg["logging_steps"], report_to=[],
        group_by_length=True,  # batches of similar length: dynamic padding then pads little
        bf16=precision == "bf16", fp16=precision == "fp16", dataloader_num_workers=0, disable_tqdm=False,
        use_cpu=not torch.cuda.is_available(), torch_compile=bool(cfg.get("torch_compile")),
        ddp_find_unused_parameters=False,
    )


DYNAMO_ENV = ("ACCELERATE_DYNAMO_BACKEND", "ACCELERATE_DYNAMO_MODE", "ACCELERATE_DYNAMO_USE_FULLGRAPH",
              "ACCELERATE_DYNAMO_USE_DYNAMIC")


@contextlib.contextmanager
def compile_env():
    """Build a run's ``TrainingArguments`` and Trainer inside this: the run's ``torch_compile`` setting alone
    decides whether it compiles. ``TrainingArguments(torch_compile=True)`` writes ``ACCELERATE_DYNAMO_*`` into
    the process's environment, where every later Trainer of the process (a notebook's next run, a test's,
    a Ray instance started from it) would read it and compile too; these variables are cleared on the way
    in and put back as they were on the way out."""
    import os

    before = {k: os.environ.pop(k) for k in DYNAMO_ENV if k in os.environ}
    try:
        yield
    finally:
        for k in DYNAMO_ENV:
            os.environ.pop(k, None)
        os.environ.update(before)


def steps_per_epoch(rows: int, args) -> int:
    """Optimizer steps in an epoch of ``rows`` training rows under ``args`` (devices and accumulation counted)."""
    return math.ceil(rows / (args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps))


class EpochSeededSampler(LengthGroupedSampler):
    """``LengthGroupedSampler`` whose order for each epoch comes from a generator seeded with
    ``seed + epoch``, not from the global random state: an epoch's order does not depend on what ran
    before it, so a run resumed in the middle of an epoch skips exactly the batches it trained on."""

    def __init__(self, batch_size, lengths, seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


class WorkbookTrainer(Trainer):
    """The Trainer with the epoch-seeded sampler, and checkpoints that are whole or absent: the Trainer's
    files, then ``extras`` (the workbook's), then ``complete.json`` last; older checkpoints go only once a
    newer one is complete. A full disk removes the partial folder and raises ``checkpoints.DiskFull``."""

    extras: CheckpointExtras | None = None  # set by prepare

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededSampler(sampler.batch_size, sampler.lengths, seed)
        return sampler

    def _rotate_checkpoints(self, use_mtime=False, output_dir=None):
        """Nothing here: older checkpoints go only once a newer one is complete (``_save_checkpoint``)."""

    def _save_checkpoint(self, model, trial):
        run_dir = Path(self._get_output_dir(trial=trial))
        folder = run_dir / f"checkpoint-{self.state.global_step}"
        try:
            super()._save_checkpoint(model, trial)
            if self.is_world_process_zero():
                if self.extras is not None:  # the unwrapped model (torch.compile's wrapper prefixes _orig_mod.)
                    self.extras.save(folder, self.model)
                checkpoints.write_marker(folder)
        except (OSError, RuntimeError) as e:
            if not checkpoints.is_disk_full(e):
                raise
            previous = next((p for p in checkpoints.checkpoints(run_dir) if p != folder and checkpoints.is_complete(p)),
                            None)
            needed = checkpoints.folder_size(previous or folder)
            shutil.rmtree(folder, ignore_errors=True)
            kept = f"; the last complete checkpoint, {previous.name}, is intact" if previous else ""
            raise checkpoints.disk_full(run_dir, needed, folder.name + kept) from None
        if self.is_world_process_zero():
            checkpoints.prune(run_dir)


@dataclasses.dataclass
class Prepared:
    """A run ready to train: the Trainer (with its optimizer, schedule and callbacks), the tokenized
    splits, and what the result will record."""

    trainer: WorkbookTrainer
    splits: dict
    tokenizer: object
    choice: ModelChoice
    cfg: dict
    trainable: int
    total: int
    out: Path
    test_idx: list[int]
    stopper: StopOnSignal
    extras: CheckpointExtras


def prepare(method: str, profile="auto", seed: int = 42, *, model: str = "auto", data=None,
            output_dir=None, callbacks=(), **overrides) -> Prepared:
    """Everything ``run`` does before ``trainer.train()``: settings, data, model, Trainer.
    The benchmarks time this same set-up."""
    from transformers import DataCollatorWithPadding, set_seed

    spec = methods.get(method)
    cfg = resolve_config(method, profile, **overrides)
    out = Path(output_dir) if output_dir else default_output_dir(method, cfg["profile"], seed, **overrides)
    check_writable(out)
    choice = resolve_model(model)
    dsd = load_mrpc(data)
    set_seed(seed)
    tokenizer = load_tokenizer(choice)
    splits = tokenize_mrpc(dsd, tokenizer, cfg["max_length"], cfg["train_limit"], cfg["eval_limit"], seed)
    test_idx = list(limit_split(dsd["test"], cfg["eval_limit"], seed)["idx"])  # the order predict() keeps
    net = spec.build(cfg, choice)
    trainable, total = methods.count_params(net)
    stopper = StopOnSignal()
    keeper = KeepBest(stopper)
    extras = CheckpointExtras(keeper, {**cfg, "seed": seed})  # the settings a resume must match
    with compile_env():
        args = training_args(cfg, out, seed)
        num_steps = math.ceil(steps_per_epoch(len(splits["train"]), args) * cfg["num_train_epochs"])
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple(cfg))
        trainer = WorkbookTrainer(model=net, args=args, train_dataset=splits["train"],
                                  eval_dataset=splits["validation"], data_collator=collator,
                                  compute_metrics=compute_metrics, optimizers=make_optimizer(net, cfg, num_steps),
                                  callbacks=[stopper, keeper, extras, EpochLog(f"{method} seed {seed}"), *callbacks])
    trainer.extras = extras
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"  # what training_args resolved
    cfg.update(seed=seed, num_training_steps=num_steps, precision_used=precision,
               data=dict(rows={k: len(v) for k, v in splits.items()}),
               environment=environment())  # read at the start: the code that trains is the commit recorded
    return Prepared(trainer, splits, tokenizer, choice, cfg, trainable, total, out, test_idx, stopper, extras)


def run(method: str, profile="auto", seed: int = 42, *, model: str = "auto", data=None,
        output_dir=None, callbacks=(), resume: bool = False, **overrides) -> RunResult:
    """Fine-tune with ``method`` (see ``methods.METHODS``) and return a ``RunResult``. ``model`` is a
    ``resolve_model`` spec, ``data`` a ``load_mrpc`` source; ``overrides`` change the method's or
    the profile's settings (``learning_rate=3e-3``, ``num_train_epochs=5``, ...).

    A complete checkpoint is saved every epoch in the run's folder (the newest two kept). Ctrl-C or
    SIGTERM stops after the current step with a checkpoint and raises ``RunInterrupted``; the same call
    with ``resume=True`` continues from the newest complete checkpoint, and refuses settings that differ
    from it. The folder is locked while the run trains: a second run on it fails at once."""
    resolve_config(method, profile, **overrides)  # a bad setting fails before the lock and the loading
    out = Path(output_dir) if output_dir else default_output_dir(method, profile, seed, **overrides)
    check_writable(out)
    if not is_rank_zero():  # torchrun: rank 0 holds the lock for the job
        return _run_locked(method, profile, seed, model, data, out, callbacks, resume, overrides)
    with folder_lock(out):
        return _run_locked(method, profile, seed, model, data, out, callbacks, resume, overrides)


def _starting_point(method, profile, seed, out: Path, resume: bool, overrides) -> str | None:
    """The checkpoint to resume from (None: from the start). A fresh run deletes an earlier run's
    checkpoints, and says so."""
    if resume:
        last = checkpoints.choose(out, {**resolve_config(method, profile, **overrides), "seed": seed})
        if last is None:
            print(f"resume: no checkpoint in {out}; starting from the beginning", flush=True)
        return str(last) if last else None
    old = checkpoints.checkpoints(out)
    if old and is_rank_zero():  # an old checkpoint must not be mixed into a fresh run
        print(f"a fresh run in {out}: deleting {len(old)} checkpoint(s) of an earlier run "
              f"({', '.join(p.name for p in old)}); resume=True (--resume) would have continued from them", flush=True)
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
    return None


def _run_locked(method, profile, seed, model, data, out, callbacks, resume, overrides) -> RunResult:
    last = _starting_point(method, profile, seed, out, resume, overrides)
    p = prepare(method, profile, seed, model=model, data=data, output_dir=out, callbacks=callbacks, **overrides)
    trainer = p.trainer
    if last is not None:
        p.extras.load(Path(last))
        trainer._load_from_checkpoint = functools.partial(_load_trainable, trainer.model)
        print(f"resume: continuing from {last}", flush=True)
    with p.stopper.catching(trainer, out):
        trainer.train(resume_from_checkpoint=last)
    train_seconds = p.extras.seconds()
    if p.stopper.stop:
        checkpoint = str(checkpoints.resumable(out)[0])
        raise RunInterrupted(f"{p.stopper.stop}: run stopped at step {trainer.state.global_step} of "
                             f"{trainer.state.max_steps}; checkpoint in {checkpoint}. To continue: the same call "
                             "with resume=True (python -m helpers q1 ... --resume)", checkpoint)
    result = _score(p, method, train_seconds, resumed=last is not None)
    if trainer.is_world_process_zero():
        methods.get(method).save(trainer.model, p.out)
        p.tokenizer.save_pretrained(str(p.out))
        result.to_json(p.out / "run.json")
    return result


def _score(p: Prepared, method: str, train_seconds: float, resumed: bool) -> RunResult:
    """The test split scored once, with the best validation epoch's weights, as a ``RunResult``."""
    from transformers.utils.notebook import NotebookProgressCallback

    trainer = p.trainer
    trainer.pop_callback(NotebookProgressCallback)  # its bar for the one test pass stays on the page, empty
    test_out = trainer.predict(p.splits["test"], metric_key_prefix="test")
    test = test_out.metrics
    # the first of equal scores, as the Trainer keeps it
    best = max(eval_records(trainer.state.log_history), key=lambda h: h["eval_accuracy"])
    return RunResult(
        method=method, history=trainer.state.log_history,
        best={k: best[k] for k in ("epoch", "eval_accuracy", "eval_f1", "eval_loss")},
        test={"accuracy": test["test_accuracy"], "f1": test["test_f1"], "loss": test["test_loss"]},
        trainable_params=p.trainable, total_params=p.total, train_seconds=round(train_seconds, 2),
        model=p.choice.to_dict(), output_dir=str(p.out), config={**p.cfg, "resumed": resumed},
        predictions=test_predictions(p.test_idx, test_out.label_ids, test_out.predictions),
    )


def _load_trainable(model, checkpoint: str, *args, **kwargs) -> None:
    """Put a checkpoint's trainable tensors (``TRAINABLE_FILE``) back into ``model``; used in place
    of the Trainer's ``_load_from_checkpoint`` on resume (optimizer, schedule, RNG and the
    Trainer's state are still restored by the Trainer)."""
    from safetensors.torch import load_file

    path = Path(checkpoint) / TRAINABLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} has no {TRAINABLE_FILE}: it was not written by helpers.training.run; "
                                "run again without resume=True (that deletes the checkpoints)")
    saved, params = load_file(str(path)), dict(model.named_parameters())
    missing = sorted(set(saved) ^ {n for n, p in params.items() if p.requires_grad})
    if missing:
        raise ValueError(f"{checkpoint} was saved from a different model ({', '.join(missing[:3])} ...): "
                         "resume only with the same method and settings")
    for name, tensor in saved.items():
        params[name].data.copy_(tensor)


def test_predictions(idx, labels, logits) -> dict:
    """Per-example test predictions in ``idx`` order: idx, label, pred and prob (of label 1)."""
    probs = torch.as_tensor(logits).float().softmax(-1)[:, 1].tolist()
    rows = sorted(zip(idx, labels.tolist(), logits.argmax(-1).tolist(), probs))
    return {"idx": [int(r[0]) for r in rows], "label": [int(r[1]) for r in rows],
            "pred": [int(r[2]) for r in rows], "prob": [round(float(r[3]), 5) for r in rows]}


test_predictions.__test__ = False  # not a pytest test, whatever its name
