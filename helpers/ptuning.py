"""Q1: P-Tuning v1 and v2 (and references) on MRPC, through one function.

``run(method, profile, seed, **overrides)`` fine-tunes the chosen BERT with the HF ``Trainer``.
A method is a config, not code: ``METHODS`` holds each one's defaults, and any default can be
overridden by keyword. The model is chosen on validation accuracy (every epoch) and the test
split is scored once, at the end, with that model.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import checkpoints
from . import config as wconfig
from .checkpoints import BEST_FILE, STATE_FILE, TRAINABLE_FILE  # noqa: F401 (public names)
from .data import load_mrpc
from .models import ModelChoice, load_classifier, load_tokenizer, resolve_model
from .results import RunResult, Sweep, eval_records, load_results, results_table  # noqa: F401 (public names)
from .runinfo import (  # noqa: F401 (public names)
    PRECISIONS,
    check_precision,
    check_writable,
    cpu_has_bf16,
    environment,
    folder_lock,
    resolve_precision,
)
from .settings import RunSettings

# Defaults per method. Learning rates come from a plain-PyTorch-loop baseline and the runs recorded
# in results/; see the Q1 notebook for what was tried.
METHODS: dict[str, dict] = {
    # P-Tuning v1: continuous prompts at the input only, always through a reparameterisation
    # encoder. cls_pooling=True makes BERT's pooler read [CLS] rather than the first virtual token.
    "v1": dict(learning_rate=1e-2, num_virtual_tokens=20, encoder_hidden_size=128,
               encoder_reparameterization_type="MLP", cls_pooling=True, train_pooler=False),
    # P-Tuning v2 as the assignment means it: prefixes in every layer, with the MLP
    # reparameterisation (prefix_projection=True). With the head at the encoder's 1e-3 it collapsed
    # to the majority class (results/q1_quick4_v2_lr1e-3.json); with the head at 1e-2 it learned.
    # Batch 16, BERT's pooler trained with the head and no dropout in the frozen model: the recipe
    # that reached 0.75 validation accuracy soonest on a CPU (results/v2_recipe_trials_cpu.jsonl),
    # checked over seeds against the one before (results/sweep_cpu_v2_before.json).
    "v2": dict(learning_rate=1e-3, head_learning_rate=1e-2, num_virtual_tokens=20, prefix_projection=True,
               encoder_hidden_size=128, train_pooler=True, dropout=0.0, per_device_train_batch_size=16),
    # P-Tuning v2 without reparameterisation: the prefixes are trained directly.
    "v2-noproj": dict(learning_rate=1e-2, num_virtual_tokens=20, prefix_projection=False, train_pooler=False),
    "lora": dict(learning_rate=5e-4, r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"]),
    "full": dict(learning_rate=5e-5),
    # Q2: a bottleneck adapter (AdapterHub's adapters). reduction_factor=16 is the library's
    # default; 0.375 makes the hidden size 8/3 of the input (see helpers.adapter_dims).
    "adapter": dict(learning_rate=1e-4, adapter_config="seq_bn", reduction_factor=16),
}
ADAPTER_NAME = "q2"

# Overrides every method takes (profile fields among them).
COMMON: dict = dict(
    learning_rate=None, num_train_epochs=None, per_device_train_batch_size=None,
    per_device_eval_batch_size=None, max_length=None, train_limit=None, eval_limit=None,
    logging_steps=None, weight_decay=0.01, warmup_ratio=0.06,
    head_learning_rate=None,  # the classifier's own learning rate (default: learning_rate)
    precision="auto",  # see PRECISIONS
    dropout=None,  # None: the checkpoint's dropout; a number sets every dropout of the model (set_dropout)
    # GPU throughput: torch.compile the model (shapes kept few by padding to a multiple of pad_to_multiple_of)
    torch_compile=False, pad_to_multiple_of=None,
)


def resolve_config(method: str, profile="auto", **overrides) -> dict:
    """The complete configuration of a run: method defaults, then the profile, then overrides,
    checked field by field (``helpers.settings.RunSettings``). Raises ValueError naming what is
    wrong and what is allowed, before anything loads."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    prof = wconfig.get_profile(profile)
    allowed = {**COMMON, **METHODS[method]}
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"method {method!r} does not take {', '.join(unknown)}; "
                         f"it takes: {', '.join(sorted(allowed))}")
    cfg = dict(COMMON)
    for key in COMMON:  # the profile fills the settings it has (epochs, batch sizes, limits, ...)
        if hasattr(prof, key):
            cfg[key] = getattr(prof, key)
    cfg.update(METHODS[method])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    settings = RunSettings(method=method, profile=prof.name, **cfg)
    return {k: v for k, v in settings.to_dict().items() if k in cfg or k in ("method", "profile")}


def peft_config(method: str, profile="smoke", **overrides):
    """The peft config object that ``run(method, **overrides)`` trains with (``PrefixTuningConfig``
    for v2, ``PromptEncoderConfig`` for v1, ``LoraConfig``), or None for full fine-tuning and the
    adapter. Printing it shows the answer's code on the page."""
    return _peft_config(method, resolve_config(method, profile, **overrides))


def _peft_config(method: str, cfg: dict):
    from peft import LoraConfig, PrefixTuningConfig, PromptEncoderConfig, TaskType

    # peft trains the classifier of a SEQ_CLS model anyway; train_pooler adds BERT's pooler (the
    # dense + tanh under the classifier), which a frozen sentence-embedding checkpoint never tuned.
    head = dict(modules_to_save=["classifier", "pooler"]) if cfg.get("train_pooler") else {}
    if method == "v1":
        return PromptEncoderConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg["num_virtual_tokens"], **head,
                                   encoder_hidden_size=cfg["encoder_hidden_size"],
                                   encoder_reparameterization_type=cfg["encoder_reparameterization_type"])
    if method in ("v2", "v2-noproj"):
        kw = dict(encoder_hidden_size=cfg["encoder_hidden_size"]) if cfg["prefix_projection"] else {}
        return PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg["num_virtual_tokens"],
                                  prefix_projection=cfg["prefix_projection"], **kw, **head)
    if method == "lora":
        return LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg["r"], lora_alpha=cfg["lora_alpha"],
                          lora_dropout=cfg["lora_dropout"], target_modules=list(cfg["target_modules"]))
    return None


def pool_from_cls(model, num_virtual_tokens: int):
    """Make BERT's pooler read the real [CLS] token when P-Tuning v1 has put ``num_virtual_tokens``
    prompt embeddings in front of it (peft prepends them, so the pooler would read the first
    virtual token). A forward pre-hook: the pooler's weights and state dict are untouched."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    encoder = getattr(base, base.base_model_prefix, None)
    pooler = getattr(encoder, "pooler", None)
    if pooler is None:
        raise ValueError(f"cls_pooling needs a BERT-style model with a pooler; {type(base).__name__} has none. "
                         "Pass cls_pooling=False.")
    return pooler.register_forward_pre_hook(lambda _mod, args: (args[0][:, num_virtual_tokens:],) + args[1:])


def set_dropout(model, p: float) -> int:
    """Set every dropout of ``model`` to ``p``: the ``nn.Dropout`` modules and the probability that
    BERT's SDPA attention reads from its ``dropout_prob`` attribute. Returns how many were set."""
    import torch

    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p, n = float(p), n + 1
        if isinstance(getattr(module, "dropout_prob", None), float):
            module.dropout_prob, n = float(p), n + 1
    return n


def build_model(method: str, cfg: dict, choice: ModelChoice):
    """The model to train for ``method``: a peft model (v1, v2, v2-noproj, lora) or the whole
    classifier (full), with its dropout set when ``cfg["dropout"]`` is a number."""
    model = load_classifier(choice)
    if cfg.get("dropout") is not None:
        set_dropout(model, cfg["dropout"])
    if method == "adapter":
        from .bottleneck import add_bottleneck_adapter

        add_bottleneck_adapter(model, hidden_ratio=1 / cfg["reduction_factor"], name=ADAPTER_NAME,
                               config=cfg["adapter_config"])
        return model  # train_adapter froze the model; the new head stays trainable
    peft_cfg = _peft_config(method, cfg)
    if peft_cfg is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft_cfg)
    if cfg.get("cls_pooling"):
        pool_from_cls(model, cfg["num_virtual_tokens"])
    return model


def count_params(model) -> tuple[int, int]:
    """(trainable, total) parameters."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def limit_split(ds, limit, seed: int = 0):
    """A split cut to ``limit`` rows by a seeded shuffle (the whole split when ``limit`` is None)."""
    if limit is not None and limit < len(ds):
        return ds.shuffle(seed=seed).select(range(limit))
    return ds


def clip_text(text: str, max_words: int) -> str:
    """The first ``max_words`` whitespace-separated words of ``text``, cut at ``64 * max_words``
    characters. Every word becomes at least one token, so pair truncation to ``max_words`` tokens
    gives the same tokens as on the whole text (unless its words average over 64 characters),
    without the tokenizer's cost on very long inputs."""
    parts = text.split(maxsplit=max_words)[:max_words]
    return " ".join(parts)[: 64 * max_words]


def tokenize_mrpc(dsd, tokenizer, max_length: int, train_limit=None, eval_limit=None, seed: int = 0):
    """Tokenized splits, cut to the profile's sizes (a seeded shuffle), unpadded: padding happens
    per batch in the collator, so a batch is only as long as its longest pair. Texts are clipped
    (``clip_text``) before tokenizing."""
    from datasets.utils import logging as ds_logging

    out = {}
    shown = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()  # a notebook reopened later shows "model not found" for widget bars
    try:
        for split in ("train", "validation", "test"):
            ds = limit_split(dsd[split], train_limit if split == "train" else eval_limit, seed)
            out[split] = ds.map(lambda b: tokenizer([clip_text(t, max_length) for t in b["text1"]],
                                                    [clip_text(t, max_length) for t in b["text2"]],
                                                    truncation=True, max_length=max_length),
                                batched=True, remove_columns=["text1", "text2", "idx"])
    finally:
        if shown:
            ds_logging.enable_progress_bar()
    return out


_METRIC = None


def metric():
    """Accuracy and F1 as an ``evaluate`` metric, loaded by path from the module shipped in
    ``helpers/metrics/`` (no hub download), once per process."""
    global _METRIC
    if _METRIC is None:
        import evaluate

        _METRIC = evaluate.load(str(Path(__file__).parent / "metrics" / "accuracy_f1.py"))
    return _METRIC


def compute_metrics(eval_pred) -> dict:
    """The Trainer's metrics: accuracy and F1 of the argmax prediction."""
    logits, labels = eval_pred
    return metric().compute(predictions=logits.argmax(-1), references=labels)


def make_optimizer(model, cfg: dict, num_training_steps: int):
    """AdamW over the trainable parameters (no weight decay on biases and LayerNorm; the
    classification head, and the pooler under it, at ``head_learning_rate`` when one is set) and a linear schedule with
    warm-up, sized in optimizer steps. Both are handed to the Trainer."""
    import torch
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
    fused = torch.cuda.is_available()
    optimizer = torch.optim.AdamW([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                                  lr=cfg["learning_rate"], fused=fused)
    warmup = math.ceil(cfg["warmup_ratio"] * num_training_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, num_training_steps)


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C, a notebook's interrupt) or SIGTERM after saving a checkpoint;
    ``run(..., resume=True)`` continues it. ``str()`` says how."""

    def __init__(self, message: str, checkpoint: str):
        super().__init__(message)
        self.checkpoint = checkpoint


# Signals closer together than this are one press: `timeout`, `torchrun` and a terminal's Ctrl-C (sent to the
# whole process group) can deliver one SIGINT twice within milliseconds. A press after it stops at once.
SIGNAL_WINDOW_S = 1.0


def keep_best(metric: str = "eval_accuracy"):
    """A TrainerCallback that keeps, in memory, the trainable weights of the epoch with the best
    validation ``metric`` and puts them back when training ends. The Trainer writes them into every
    checkpoint (``save``), so a resumed run ends with the same model. (The Trainer's own
    ``load_best_model_at_end`` fails for peft's prompt-learning methods.)
    It also stops the run cleanly when ``stop`` is set (by a signal): at the end of the step, with a
    checkpoint and without the epoch-end evaluation of a half-trained epoch."""
    from transformers import TrainerCallback

    class KeepBest(TrainerCallback):
        def __init__(self):
            self.best, self.state, self.stop, self.seconds_before, self.started = None, None, None, 0.0, None
            self.settings = {}  # the run's settings, written into each checkpoint for a resume to compare

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kw):
            score = (metrics or {}).get(metric)
            if score is not None and (self.best is None or score > self.best):
                self.best = score
                self.state = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()
                              if p.requires_grad}

        def on_step_end(self, args, state, control, **kw):
            if self.stop:
                control.should_save = control.should_training_stop = True
            return control

        def on_epoch_end(self, args, state, control, **kw):
            if self.stop:  # the epoch was cut short: neither evaluate it nor save it again
                control.should_evaluate = control.should_save = False
            return control

        def on_train_end(self, args, state, control, model=None, **kw):
            if self.state is not None and not self.stop:
                params = dict(model.named_parameters())
                for name, saved in self.state.items():
                    params[name].data.copy_(saved)

        def save(self, folder: Path, model=None) -> None:
            from safetensors.torch import save_file

            folder.mkdir(parents=True, exist_ok=True)
            if model is not None:
                trainable = {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters()
                             if p.requires_grad}
                save_file(trainable, str(folder / TRAINABLE_FILE))
            if self.state is not None:
                save_file({k: v.contiguous() for k, v in self.state.items()}, str(folder / BEST_FILE))
            elapsed = self.seconds_before + (time.perf_counter() - self.started if self.started else 0)
            (folder / STATE_FILE).write_text(json.dumps({"best": self.best, "train_seconds": elapsed,
                                                         "settings": self.settings}))

        def load(self, folder: Path) -> None:
            from safetensors.torch import load_file

            saved = json.loads((folder / STATE_FILE).read_text()) if (folder / STATE_FILE).is_file() else {}
            self.best, self.seconds_before = saved.get("best"), saved.get("train_seconds", 0.0)
            self.state = load_file(str(folder / BEST_FILE)) if (folder / BEST_FILE).is_file() else None

    return KeepBest()


@contextlib.contextmanager
def _stop_on_signals(keeper, trainer, out: Path):
    """While training: the first SIGINT or SIGTERM asks ``keeper`` to stop after the current step (with a
    checkpoint); more within ``SIGNAL_WINDOW_S`` count as the same press. A press after that stops at once,
    raising ``RunInterrupted`` with the last complete checkpoint. Only in the main thread, where signals land."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    first = [0.0]

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if keeper.stop:
            if time.monotonic() - first[0] < SIGNAL_WINDOW_S:
                return  # the same press, delivered twice
            last, _ = checkpoints.resumable(out)
            where = f"the last complete checkpoint is {last}" if last else "no checkpoint is complete yet"
            raise RunInterrupted(f"{name} again: stopped at once during step {trainer.state.global_step + 1} of "
                                 f"{trainer.state.max_steps}, without saving; {where}. To continue from it: the same "
                                 "call with resume=True (python -m helpers q1 ... --resume)", str(last or ""))
        keeper.stop, first[0] = name, time.monotonic()
        print(f"\n{name}: stopping after this step and saving a checkpoint (press again after a second: stop at "
              "once)", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def trainer_class():
    """The Trainer with one change: under ``group_by_length`` each epoch's batch order is drawn
    from its own generator, seeded with ``data_seed + epoch``, not from the global random state.
    An epoch's order then does not depend on what ran before it, so a run resumed in the middle
    of an epoch skips exactly the batches the interrupted run trained on."""
    import torch
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class EpochSeededSampler(LengthGroupedSampler):
        def __init__(self, batch_size, lengths, seed: int):
            super().__init__(batch_size, lengths=lengths)
            self.seed, self.epoch = seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = int(epoch)

        def __iter__(self):
            self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
            return super().__iter__()

    class WorkbookTrainer(Trainer):
        keeper = None  # set by prepare: the keep_best callback, whose files go into every checkpoint

        def _rotate_checkpoints(self, use_mtime=False, output_dir=None):
            """Nothing here: older checkpoints go only once a newer one is complete (``_save_checkpoint``)."""

        def _save_checkpoint(self, model, trial):
            """The Trainer's checkpoint, then the workbook's files, then ``complete.json`` last; then the
            older checkpoints beyond ``checkpoints.KEEP`` go. A full disk removes the partial folder and
            raises ``checkpoints.DiskFull``, naming the folder and the space needed."""
            run_dir = Path(self._get_output_dir(trial=trial))
            folder = run_dir / f"checkpoint-{self.state.global_step}"
            previous = checkpoints.resumable(run_dir)[0]
            try:
                super()._save_checkpoint(model, trial)
                if self.is_world_process_zero():
                    if self.keeper is not None:
                        self.keeper.save(folder, model)
                    checkpoints.write_marker(folder)
            except (OSError, RuntimeError) as e:
                if not checkpoints.is_disk_full(e):
                    raise
                needed = checkpoints.folder_size(previous or folder)
                shutil.rmtree(folder, ignore_errors=True)
                kept = f"; the last complete checkpoint, {previous.name}, is intact" if previous else ""
                raise checkpoints.disk_full(run_dir, needed, folder.name + kept) from None
            if self.is_world_process_zero():
                checkpoints.prune(run_dir)

        def _get_train_sampler(self, train_dataset=None):
            sampler = super()._get_train_sampler(train_dataset)
            if type(sampler) is LengthGroupedSampler:
                seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
                return EpochSeededSampler(sampler.batch_size, sampler.lengths, seed)
            return sampler

    return WorkbookTrainer


@dataclasses.dataclass
class Prepared:
    """A run ready to train: the Trainer (with its optimizer and schedule), the tokenized splits,
    and what the result will record."""

    trainer: object
    splits: dict
    tokenizer: object
    choice: ModelChoice
    cfg: dict
    trainable: int
    total: int
    out: Path
    test_idx: list[int] = dataclasses.field(default_factory=list)
    keeper: object = None  # the keep_best callback: best weights, stop flag, checkpoint state


def prepare(method: str, profile="auto", seed: int = 42, *, model: str = "auto", data=None,
            output_dir=None, callbacks=(), **overrides) -> Prepared:
    """Everything ``run`` does before ``trainer.train()``: configuration, data, model, Trainer.
    The benchmarks time this same set-up."""
    import torch
    from transformers import DataCollatorWithPadding, TrainingArguments, set_seed

    from .callbacks import EpochLog

    cfg = resolve_config(method, profile, **overrides)
    out = Path(output_dir) if output_dir else default_output_dir(method, cfg["profile"], seed, **overrides)
    check_writable(out)
    choice = resolve_model(model)
    dsd = load_mrpc(data)
    set_seed(seed)
    tokenizer = load_tokenizer(choice)
    splits = tokenize_mrpc(dsd, tokenizer, cfg["max_length"], cfg["train_limit"], cfg["eval_limit"], seed)
    test_idx = list(limit_split(dsd["test"], cfg["eval_limit"], seed)["idx"])  # the order predict() keeps
    net = build_model(method, cfg, choice)
    trainable, total = count_params(net)

    cuda = torch.cuda.is_available()
    precision = resolve_precision(cfg["precision"])
    args = TrainingArguments(
        output_dir=str(out), seed=seed, data_seed=seed,
        num_train_epochs=cfg["num_train_epochs"], per_device_train_batch_size=cfg["per_device_train_batch_size"],
        per_device_eval_batch_size=cfg["per_device_eval_batch_size"], learning_rate=cfg["learning_rate"],
        weight_decay=cfg["weight_decay"], eval_strategy="epoch", logging_strategy="steps",
        save_strategy="epoch", save_total_limit=1,  # the last epoch's checkpoint, to resume from
        logging_steps=cfg["logging_steps"], report_to=[],
        group_by_length=True,  # batches of similar length: dynamic padding then pads little
        bf16=precision == "bf16", fp16=precision == "fp16", dataloader_num_workers=0, disable_tqdm=False,
        use_cpu=not cuda, torch_compile=bool(cfg.get("torch_compile")),
        ddp_find_unused_parameters=False,
    )
    steps_per_epoch = math.ceil(len(splits["train"]) / (args.per_device_train_batch_size * args.world_size
                                                         * args.gradient_accumulation_steps))
    num_steps = math.ceil(steps_per_epoch * cfg["num_train_epochs"])
    trainer = trainer_class()(model=net, args=args, train_dataset=splits["train"], eval_dataset=splits["validation"],
                      data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple(cfg)),
                      compute_metrics=compute_metrics,
                      optimizers=make_optimizer(net, cfg, num_steps),
                      callbacks=[keeper := keep_best(), EpochLog(f"{method} seed {seed}"), *callbacks])
    trainer.keeper, keeper.settings = keeper, {**cfg, "seed": seed}  # the settings a resume must match
    cfg.update(seed=seed, num_training_steps=num_steps, precision_used=precision,
               data=dict(rows={k: len(v) for k, v in splits.items()}),
               environment=environment())  # read at the start: the code that trains is the commit recorded
    return Prepared(trainer, splits, tokenizer, choice, cfg, trainable, total, out, test_idx, keeper)


def pad_multiple(cfg: dict) -> int | None:
    """Pad batches to a multiple of this length: ``pad_to_multiple_of``, else 16 under ``torch_compile``
    (each new shape is a recompilation), else None (pad to the batch's longest pair)."""
    return cfg.get("pad_to_multiple_of") or (16 if cfg.get("torch_compile") else None)


def settings_key(method: str, profile: str, **overrides) -> str:
    """A short hash of the settings that differ from the method's and the profile's defaults
    (``default`` when none do): runs with different settings never share a folder."""
    base = resolve_config(method, profile)
    cfg = resolve_config(method, profile, **overrides)
    changed = {k: cfg[k] for k in sorted(cfg) if cfg[k] != base.get(k)}
    if not changed:
        return "default"
    return hashlib.sha1(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()[:8]


def default_output_dir(method: str, profile: str, seed: int, **overrides) -> Path:
    """``outputs/q1/<method>-<profile>-seed<seed>-<settings_key>``: keyed by the whole configuration."""
    profile = wconfig.get_profile(profile).name
    key = settings_key(method, profile, **overrides)
    return wconfig.OUTPUT_DIR / "q1" / f"{method}-{profile}-seed{seed}-{key}"


def run(method: str, profile="auto", seed: int = 42, *, model: str = "auto", data=None,
        output_dir=None, callbacks=(), resume: bool = False, **overrides) -> RunResult:
    """Fine-tune with ``method`` (see ``METHODS``) and return a ``RunResult``. ``model`` is a
    ``resolve_model`` spec, ``data`` a ``load_mrpc`` source; ``overrides`` change the method's or
    the profile's settings (``learning_rate=3e-3``, ``num_train_epochs=5``, ...).

    A checkpoint is saved every epoch in the run's folder (the last one kept). Ctrl-C or SIGTERM
    stops after the current step with a checkpoint and raises ``RunInterrupted``; the same call
    with ``resume=True`` continues from the last checkpoint. The folder is locked while the run
    trains: a second run on it fails at once."""
    resolve_config(method, profile, **overrides)  # a bad setting fails before the lock and the loading
    out = Path(output_dir) if output_dir else default_output_dir(method, profile, seed, **overrides)
    check_writable(out)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 holds the lock for the job
        return _run_locked(method, profile, seed, model, data, out, callbacks, resume, overrides)
    with folder_lock(out):
        return _run_locked(method, profile, seed, model, data, out, callbacks, resume, overrides)


def _run_locked(method, profile, seed, model, data, out, callbacks, resume, overrides) -> RunResult:
    last = None
    if resume:
        last = checkpoints.choose(out, {**resolve_config(method, profile, **overrides), "seed": seed})
        if last is None:
            print(f"resume: no checkpoint in {out}; starting from the beginning", flush=True)
    elif checkpoints.checkpoints(out) and int(os.environ.get("RANK", "0")) == 0:
        old = checkpoints.checkpoints(out)  # a fresh run: an old checkpoint must not be mixed in
        print(f"a fresh run in {out}: deleting {len(old)} checkpoint(s) of an earlier run "
              f"({', '.join(p.name for p in old)}); resume=True (--resume) would have continued from them", flush=True)
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
    if last is not None:
        last = str(last)
    p = prepare(method, profile, seed, model=model, data=data, output_dir=out, callbacks=callbacks, **overrides)
    trainer, keeper = p.trainer, p.keeper
    if last is not None:
        keeper.load(Path(last))
        trainer._load_from_checkpoint = functools.partial(_load_trainable, trainer.model)
        print(f"resume: continuing from {last}", flush=True)
    keeper.started = time.perf_counter()
    with _stop_on_signals(keeper, trainer, out):
        trainer.train(resume_from_checkpoint=last)
    train_seconds = keeper.seconds_before + time.perf_counter() - keeper.started
    if keeper.stop:
        checkpoint = str(checkpoints.resumable(out)[0])
        raise RunInterrupted(f"{keeper.stop}: run stopped at step {trainer.state.global_step} of "
                             f"{trainer.state.max_steps}; checkpoint in {checkpoint}. To continue: the same call "
                             "with resume=True (python -m helpers q1 ... --resume)", checkpoint)
    from transformers.utils.notebook import NotebookProgressCallback

    trainer.pop_callback(NotebookProgressCallback)  # its bar for the one test pass stays on the page, empty
    test_out = trainer.predict(p.splits["test"], metric_key_prefix="test")
    test = test_out.metrics

    # the first of equal scores, as the Trainer keeps it
    best = max(eval_records(trainer.state.log_history), key=lambda h: h["eval_accuracy"])
    result = RunResult(
        method=method, history=trainer.state.log_history,
        best={k: best[k] for k in ("epoch", "eval_accuracy", "eval_f1", "eval_loss")},
        test={"accuracy": test["test_accuracy"], "f1": test["test_f1"], "loss": test["test_loss"]},
        trainable_params=p.trainable, total_params=p.total, train_seconds=round(train_seconds, 2),
        model=p.choice.to_dict(), output_dir=str(p.out), config={**p.cfg, "resumed": last is not None},
        predictions=test_predictions(p.test_idx, test_out.label_ids, test_out.predictions),
    )
    if trainer.is_world_process_zero():
        save_trained(trainer.model, method, p.out)
        p.tokenizer.save_pretrained(str(p.out))
        result.to_json(p.out / "run.json")
    return result


def _load_trainable(model, checkpoint: str, *args, **kwargs) -> None:
    """Put a checkpoint's trainable tensors (``TRAINABLE_FILE``) back into ``model``; used in place
    of the Trainer's ``_load_from_checkpoint`` on resume (optimizer, schedule, RNG and the
    Trainer's state are still restored by the Trainer)."""
    from safetensors.torch import load_file

    path = Path(checkpoint) / TRAINABLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} has no {TRAINABLE_FILE}: it was not written by helpers.ptuning.run; "
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
    import torch

    probs = torch.as_tensor(logits).float().softmax(-1)[:, 1].tolist()
    rows = sorted(zip(idx, labels.tolist(), logits.argmax(-1).tolist(), probs))
    return {"idx": [int(r[0]) for r in rows], "label": [int(r[1]) for r in rows],
            "pred": [int(r[2]) for r in rows], "prob": [round(float(r[3]), 5) for r in rows]}


def save_trained(net, method: str, out: Path) -> None:
    """Save what a run trained: peft's adapter (``save_pretrained``), a bottleneck adapter and its
    head (``save_adapter``, the head beside it), or the whole model (full fine-tuning)."""
    if method == "adapter":
        from safetensors.torch import save_file

        net.save_adapter(str(out / "adapter"), ADAPTER_NAME)
        save_file({k: v.contiguous() for k, v in net.classifier.state_dict().items()}, str(out / "head.safetensors"))
    else:
        net.save_pretrained(str(out))  # peft models save the adapter alone


def load_trained(output_dir):
    """Reload a model saved by ``run`` (base model plus adapter), ready for inference."""
    if output_dir is None or not isinstance(output_dir, (str, os.PathLike)):
        raise TypeError(f"output_dir must be a run's folder (a path), got {type(output_dir).__name__}")
    out = Path(output_dir)
    if not (out / "run.json").is_file():
        raise FileNotFoundError(_not_a_run(out))
    result = RunResult.from_json(out / "run.json")
    if result.method not in METHODS:
        raise ValueError(f"{out} holds a {result.method!r} run, which this workbook cannot load; "
                         f"it loads {', '.join(METHODS)}")
    cfg = result.config
    if result.method == "full":
        from transformers import AutoModelForSequenceClassification

        net = AutoModelForSequenceClassification.from_pretrained(str(out))
    elif result.method == "adapter":
        import adapters
        from safetensors.torch import load_file

        net = load_classifier(ModelChoice(**result.model))
        adapters.init(net)
        name = net.load_adapter(str(out / "adapter"))
        net.set_active_adapters(name)
        net.classifier.load_state_dict(load_file(str(out / "head.safetensors")))
    else:
        from peft import PeftModel

        net = PeftModel.from_pretrained(load_classifier(ModelChoice(**result.model)), str(out))
    if cfg.get("cls_pooling"):
        pool_from_cls(net, cfg["num_virtual_tokens"])
    tokenizer = load_tokenizer(ModelChoice(**result.model))
    net.eval()
    return net, tokenizer, result


def _not_a_run(out: Path) -> str:
    """What ``out`` is, when it holds no finished run, and what to do."""
    if not out.is_dir():
        return f"{out} does not exist: pass the output_dir of a finished run (ptuning.run(..., output_dir=...))"
    newest = checkpoints.checkpoints(out)
    if newest:
        return (f"{out} holds an interrupted run (newest checkpoint {newest[0].name}), not a finished one: continue "
                "it with the same call and resume=True (python -m helpers q1 ... --resume), then predict")
    return (f"{out} holds no trained run (no run.json): train one with ptuning.run(..., output_dir={str(out)!r}) "
            "or pass the folder of a finished run")


def predict(output_dir, text1, text2) -> dict | list[dict]:
    """Label and probability for a sentence pair (or lists of pairs) with a saved run's model."""
    import torch

    from .data import LABEL_NAMES

    single = isinstance(text1, str)
    if single != isinstance(text2, str):
        raise TypeError("predict takes two strings, or two lists of strings of the same length; "
                        f"got {type(text1).__name__} and {type(text2).__name__}")
    t1, t2 = ([text1], [text2]) if single else (_strings(text1, "text1"), _strings(text2, "text2"))
    if len(t1) != len(t2):
        raise ValueError(f"text1 has {len(t1)} texts and text2 {len(t2)}: they must pair up one to one")
    if not t1:
        return []
    net, tokenizer, result = load_trained(output_dir)
    max_length = result.config["max_length"]
    batch = tokenizer([clip_text(t, max_length) for t in t1], [clip_text(t, max_length) for t in t2],
                      truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    bf16 = result.config.get("precision_used") == "bf16"  # score as the run scored its test split
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        probs = net(**batch).logits.float().softmax(-1)
    out = [{"label": int(p.argmax()), "label_text": LABEL_NAMES[int(p.argmax())], "probability": float(p.max())}
           for p in probs]
    return out[0] if single else out


def _strings(texts, name: str) -> list[str]:
    if texts is None or isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
        raise TypeError(f"{name} must be a string or a list of strings, got {type(texts).__name__}")
    out = list(texts)
    bad = next((i for i, t in enumerate(out) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{name}[{bad}] is a {type(out[bad]).__name__}, not a string")
    return out


def anatomy(method: str, choice: ModelChoice | None = None, **overrides) -> dict:
    """What ``method`` adds to the model and trains, read off a freshly built model: parameter
    counts (and share), the trainable modules, and the shape of the prompts it injects (v1: input
    embeddings prepended at layer 0; v2: a key and a value prefix for every layer)."""
    cfg = resolve_config(method, "smoke", **overrides)
    choice = choice or resolve_model(verbose=False)
    net = build_model(method, cfg, choice)
    trainable, total = count_params(net)
    modules: dict[str, int] = {}
    for name, p in net.named_parameters():
        if p.requires_grad:
            skip = ("default", "modules_to_save", "base_model", "model")
            key = ".".join(part for part in name.split(".")[:-1] if part not in skip)
            modules[key] = modules.get(key, 0) + p.numel()
    if method == "full":
        modules = {"(every parameter of the model)": total}
    prompt = None
    if method == "v1":
        prompt = {"where": "input embeddings, prepended at layer 0",
                  "shape": list(net.get_prompt(batch_size=1).shape)}
    elif method.startswith("v2"):
        past = net.get_prompt(batch_size=1)
        layers = past.to_legacy_cache() if hasattr(past, "to_legacy_cache") else past
        prompt = {"where": f"a key and a value prefix in each of the {len(layers)} layers",
                  "shape": [len(layers), len(layers[0])] + list(layers[0][0].shape)}
    return {"method": method, "trainable_params": trainable, "total_params": total,
            "share": trainable / total, "trainable_modules": modules, "prompt": prompt}


# ------------------------------------------------------------------------------------------------
# Sweeps: several methods over several seeds, resumable
# ------------------------------------------------------------------------------------------------

# Named variants a sweep can run beside the methods: (method, overrides). v1's recipe search.
VARIANTS: dict[str, tuple[str, dict]] = {
    "v1-lstm": ("v1", dict(encoder_reparameterization_type="LSTM")),
    "v1-50tok": ("v1", dict(num_virtual_tokens=50)),
}
# Concurrent runs on one GPU under jobs="auto" (a 22M-parameter model leaves a large GPU mostly
# idle). Not yet measured: bench/gpu.sh times jobs 1, 2, 4 and 8 and prints the best.
GPU_JOBS_AUTO = 4


def _split_list(value, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    if not items or any(not isinstance(v, str) or not v for v in items):
        raise ValueError(f"{what} must be a non-empty comma-separated list, got {value!r}")
    return items


def parse_seeds(seeds) -> list[int]:
    """Seeds from ``5`` (0..4), ``"0,1,7"``, or a list of whole numbers; ValueError otherwise."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds: a count must be at least 1, got {seeds}")
        return list(range(seeds))
    if isinstance(seeds, str) and seeds.strip().isdigit():
        return parse_seeds(int(seeds))
    try:
        out = [int(s) for s in _split_list(seeds, "seeds")] if isinstance(seeds, str) else [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be a count (5) or a list of whole numbers (0,1,2), got {seeds!r}") from None
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"seeds must be distinct whole numbers >= 0, got {seeds!r}")
    return out


def parse_jobs(jobs) -> int:
    """``auto`` (one at a time on a CPU, ``GPU_JOBS_AUTO`` with CUDA) or a whole number >= 1."""
    if jobs in ("auto", None):
        import torch

        return GPU_JOBS_AUTO if torch.cuda.is_available() else 1
    try:
        n = int(jobs)
    except (TypeError, ValueError):
        n = 0
    if isinstance(jobs, bool) or n < 1 or str(n) != str(jobs).strip():
        raise ValueError(f"jobs must be 'auto' or a whole number >= 1, got {jobs!r}")
    return n


def sweep_labels(methods) -> dict[str, tuple[str, dict]]:
    """``{label: (method, overrides)}`` for method names and ``VARIANTS`` names; ValueError naming
    what is allowed otherwise."""
    labels = {}
    for label in _split_list(methods, "methods"):
        if label in METHODS:
            labels[label] = (label, {})
        elif label in VARIANTS:
            labels[label] = VARIANTS[label]
        else:
            raise ValueError(f"unknown method {label!r}: choose from {', '.join([*METHODS, *VARIANTS])}")
    return labels


def _matches(result: RunResult, method: str, profile: str, seed: int, overrides: dict) -> bool:
    """Whether a finished run is the one asked for. Both sides are read as ``RunSettings``, so a
    file written before a setting existed counts that setting at its default."""
    want = RunSettings.from_config(resolve_config(method, profile, **overrides)).to_dict()
    try:
        got = RunSettings.from_config(result.config).to_dict()
    except (TypeError, ValueError):  # not a result of this workbook's settings
        return False
    same = all(got[k] == want[k] for k in want if k != "precision")  # "auto" resolves per machine
    return result.method == method and result.config.get("seed") == seed and same


def sweep(methods, seeds=3, profile="auto", jobs="auto", out_dir=None, *, model: str = "auto", data=None,
          out: str | os.PathLike | None = None, **overrides) -> Sweep:
    """Run every method (or ``VARIANTS`` label) with every seed and return a ``Sweep``.

    Each run's ``RunResult`` is written to ``out_dir/<label>-seed<seed>.json`` as soon as it
    finishes; a run whose file is already there with the same settings is read, not retrained, so
    an interrupted sweep resumes. ``jobs`` > 1 runs that many at once as separate processes
    (``python -m helpers q1``), for a GPU. Everything is checked before anything trains."""
    labels = sweep_labels(methods)
    seed_list = parse_seeds(seeds)
    n_jobs = parse_jobs(jobs)
    prof = wconfig.get_profile(profile).name
    for method, extra in labels.values():
        resolve_config(method, prof, **{**extra, **overrides})  # a bad override fails here, before training
    if out_dir is None:  # beside the summary (results/sweep_full.json -> results/sweep_full/), else outputs/
        out_dir = Path(out).with_suffix("") if out is not None else wconfig.OUTPUT_DIR / "sweeps" / prof
    out_dir = Path(out_dir)
    check_writable(out_dir)
    if out is not None:
        check_writable(Path(out).resolve().parent)
    with folder_lock(out_dir, hint="wait for the other sweep to finish, or pass another --out (out=)"):
        return _sweep_locked(labels, seed_list, n_jobs, prof, out_dir, out, model, data, overrides)


def _sweep_locked(labels, seed_list, n_jobs, prof, out_dir, out, model, data, overrides) -> Sweep:
    todo, files = [], {label: [] for label in labels}
    for label, (method, extra) in labels.items():
        for seed in seed_list:
            path = out_dir / f"{label}-seed{seed}.json"
            files[label].append(str(path))
            settings = {**extra, **overrides}
            if path.is_file():
                done = RunResult.from_json(path)
                if _matches(done, method, prof, seed, settings):
                    continue
                raise ValueError(f"{path} holds a {done.method} run with other settings than this sweep asks for; "
                                 "pass another out_dir (--out) or delete that file")
            todo.append((label, method, seed, settings, path))
    print(f"sweep: {len(todo)} of {len(labels) * len(seed_list)} runs to do ({n_jobs} at a time), in {out_dir}",
          flush=True)

    models = wconfig.OUTPUT_DIR / "sweeps" / out_dir.name  # trained weights stay out of results/

    def one(item):
        label, method, seed, settings, path = item
        if n_jobs == 1:
            result = run(method, prof, seed, model=model, data=data, output_dir=models / f"{label}-seed{seed}",
                         resume=True, **settings)  # an interrupted run goes on from its checkpoint
            result.to_json(path)
        else:
            cmd = [sys.executable, "-m", "helpers", "q1", "--method", method, "--profile", prof, "--seed", str(seed),
                   "--model", model, "--output-dir", str(models / f"{label}-seed{seed}"), "--out", str(path),
                   "--resume"]
            cmd += ["--data", str(data)] if data else []
            for key, value in settings.items():
                cmd += ["--set", f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"]
            log = models / f"{label}-seed{seed}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "w") as f:
                proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=wconfig.PROJ_ROOT)
            if proc.returncode != 0:
                raise RuntimeError(f"sweep run {label} seed {seed} failed (exit {proc.returncode}); see {log}")
        print(f"sweep: {label} seed {seed} done -> {path}", flush=True)

    if n_jobs == 1:
        for item in todo:
            one(item)
    else:
        with ThreadPoolExecutor(n_jobs) as pool:
            list(pool.map(one, todo))
    runs = {label: [RunResult.from_json(f) for f in fs] for label, fs in files.items()}
    result = Sweep(runs, {"methods": list(labels), "seeds": seed_list, "profile": prof, "jobs": n_jobs,
                          "overrides": overrides, "variants": {k: VARIANTS[k] for k in labels if k in VARIANTS}},
                   files)
    if out is not None:
        result.to_json(out)
    return result
