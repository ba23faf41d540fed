"""Q1: P-Tuning v1 and v2 (and references) on MRPC, through one function.

``run(method, profile, seed, **overrides)`` fine-tunes the chosen BERT with the HF ``Trainer``.
A method is a config, not code: ``METHODS`` holds each one's defaults, and any default can be
overridden by keyword. The model is chosen on validation accuracy (every epoch) and the test
split is scored once, at the end, with that model.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import time
import warnings
from pathlib import Path

from . import config as wconfig
from .data import load_mrpc
from .models import ModelChoice, load_classifier, load_tokenizer, resolve_model

# Defaults per method. Learning rates come from ../shared/BASELINES.md and the runs recorded
# in results/; see the Q1 notebook for what was tried.
METHODS: dict[str, dict] = {
    # P-Tuning v1: continuous prompts at the input only, always through a reparameterisation
    # encoder. cls_pooling=True makes BERT's pooler read [CLS] rather than the first virtual token.
    "v1": dict(learning_rate=1e-2, num_virtual_tokens=20, encoder_hidden_size=128,
               encoder_reparameterization_type="MLP", cls_pooling=True, train_pooler=False),
    # P-Tuning v2 as the assignment means it: prefixes in every layer, with the MLP
    # reparameterisation (prefix_projection=True). With the head at the encoder's 1e-3 it collapsed
    # to the majority class (results/q1_quick4_v2_lr1e-3.json); with the head at 1e-2 it learned.
    "v2": dict(learning_rate=1e-3, head_learning_rate=1e-2, num_virtual_tokens=20, prefix_projection=True,
               encoder_hidden_size=128, train_pooler=False),
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
)
# "auto": bf16 autocast on a GPU that has it, else fp16 on a GPU, and fp32 on a CPU: on the 2-core
# AMD EPYC (avx512_bf16) these notebooks were built on, bf16 autocast trained no faster than fp32
# under the Trainer (results/bench_cpu.json). "bf16" on a CPU is an opt-in. Weights stay fp32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
POSITIVE = ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size",
            "max_length", "logging_steps", "head_learning_rate", "num_virtual_tokens", "encoder_hidden_size", "r",
            "reduction_factor")


def eval_records(history: list[dict]) -> list[dict]:
    """The validation records of a Trainer log history, one per evaluation."""
    return [h for h in history if "eval_accuracy" in h]


@dataclasses.dataclass
class RunResult:
    """What one training run produced: per-step history, test scores, sizes, timing, and the
    full configuration (seed, profile, model, data, library versions) that reproduces it."""

    method: str
    history: list[dict]
    best: dict
    test: dict
    trainable_params: int
    total_params: int
    train_seconds: float
    model: dict
    output_dir: str
    config: dict

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / self.total_params

    def evals(self) -> list[dict]:
        """The per-epoch validation records of the history."""
        return eval_records(self.history)

    def collapsed(self, majority: float, tol: float = 1e-4) -> bool:
        """True when validation accuracy sat at the majority-class score at every epoch."""
        return all(abs(e["eval_accuracy"] - majority) < tol for e in self.evals())

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The result as JSON; also written to ``path`` when given."""
        text = json.dumps(dataclasses.asdict(self), indent=1, default=str)
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)  # atomic: a reader never sees half a file
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> "RunResult":
        """Read a result from a JSON file path or a JSON string."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        return cls(**json.loads(text))


def resolve_config(method: str, profile="auto", **overrides) -> dict:
    """The complete configuration of a run: method defaults, then the profile, then overrides.
    Raises ValueError naming what is wrong and what is allowed."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    prof = wconfig.get_profile(profile)
    allowed = {**COMMON, **METHODS[method]}
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"method {method!r} does not take {', '.join(unknown)}; "
                         f"it takes: {', '.join(sorted(allowed))}")
    cfg = {k: v for k, v in COMMON.items()}
    for key in COMMON:  # the profile fills the settings it has (epochs, batch sizes, limits, ...)
        if hasattr(prof, key):
            cfg[key] = getattr(prof, key)
    cfg.update(METHODS[method])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    for key in POSITIVE:
        if key in cfg and cfg[key] is not None and not (isinstance(cfg[key], (int, float)) and not isinstance(cfg[key], bool)
                               and cfg[key] > 0):
            raise ValueError(f"{key} must be a positive number, got {cfg[key]!r}")
    _check_precision(cfg["precision"])
    cfg.update(method=method, profile=prof.name)
    return cfg


def _check_precision(precision) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def cpu_has_bf16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """True when the CPU has native bf16 arithmetic (avx512_bf16, or AMX tiles), read from the
    Linux cpuinfo flags; False where they cannot be read (then bf16 would be emulated, and slower)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str = "auto") -> str:
    """The precision a run will train in on this machine: "fp32", "bf16" or "fp16". Raises
    ValueError for a choice the device cannot do (fp16 on a CPU)."""
    import torch

    _check_precision(precision)
    cuda = torch.cuda.is_available()
    if precision == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and not cuda:
        raise ValueError("precision='fp16' needs a CUDA GPU; on a CPU use 'bf16' or 'fp32'")
    if precision == "bf16" and not cuda and not cpu_has_bf16():
        warnings.warn("precision='bf16' on a CPU without bf16 instructions (avx512_bf16, AMX): "
                      "it is emulated and slower than fp32", stacklevel=2)
    return precision


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


def build_model(method: str, cfg: dict, choice: ModelChoice):
    """The model to train for ``method``: a peft model (v1, v2, v2-noproj, lora) or the whole
    classifier (full)."""
    model = load_classifier(choice)
    if method == "adapter":
        from .adapter_dims import add_bottleneck_adapter

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


def tokenize_mrpc(dsd, tokenizer, max_length: int, train_limit=None, eval_limit=None, seed: int = 0):
    """Tokenized splits, cut to the profile's sizes (a seeded shuffle), unpadded: padding happens
    per batch in the collator, so a batch is only as long as its longest pair."""
    out = {}
    for split in ("train", "validation", "test"):
        ds = dsd[split]
        limit = train_limit if split == "train" else eval_limit
        if limit is not None and limit < len(ds):
            ds = ds.shuffle(seed=seed).select(range(limit))
        out[split] = ds.map(lambda b: tokenizer(b["text1"], b["text2"], truncation=True, max_length=max_length),
                            batched=True, remove_columns=["text1", "text2", "idx"])
    return out


def compute_metrics(eval_pred) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred
    preds = logits.argmax(-1)
    return {"accuracy": float(accuracy_score(labels, preds)), "f1": float(f1_score(labels, preds))}


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
    optimizer = torch.optim.AdamW([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()],
                                  lr=cfg["learning_rate"])
    warmup = math.ceil(cfg["warmup_ratio"] * num_training_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, num_training_steps)


def keep_best(metric: str = "eval_accuracy"):
    """A TrainerCallback that keeps, in memory, the trainable weights of the epoch with the best
    validation ``metric`` and puts them back when training ends. (The Trainer's own
    ``load_best_model_at_end`` fails for peft's prompt-learning methods, and would write a
    checkpoint every epoch.)"""
    from transformers import TrainerCallback

    class KeepBest(TrainerCallback):
        best, state = None, None

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kw):
            score = (metrics or {}).get(metric)
            if score is not None and (self.best is None or score > self.best):
                self.best = score
                self.state = {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()
                              if p.requires_grad}

        def on_train_end(self, args, state, control, model=None, **kw):
            if self.state is not None:
                params = dict(model.named_parameters())
                for name, saved in self.state.items():
                    params[name].data.copy_(saved)

    return KeepBest()


def check_writable(path: Path) -> None:
    """Raise ValueError, naming the folder, when ``path`` cannot be created or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"output folder {path} cannot be written ({e.strerror}); "
                         "pass output_dir= a folder you can write to") from None


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=wconfig.PROJ_ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _git_commit() -> str | None:
    return _git("rev-parse", "HEAD") or None


def environment() -> dict:
    """Device, library versions and git commit, recorded with every result."""
    import adapters
    import datasets
    import peft
    import torch
    import transformers

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    return {"device": device, "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "adapters": adapters.__version__, "datasets": datasets.__version__,
            "git_commit": _git_commit(),
            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}  # uncommitted changes to tracked files


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


def prepare(method: str, profile="auto", seed: int = 42, *, model: str = "auto", data=None,
            output_dir=None, callbacks=(), **overrides) -> Prepared:
    """Everything ``run`` does before ``trainer.train()``: configuration, data, model, Trainer.
    The benchmarks time this same set-up."""
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    cfg = resolve_config(method, profile, **overrides)
    out = Path(output_dir) if output_dir else wconfig.OUTPUT_DIR / "q1" / f"{method}-{cfg['profile']}-seed{seed}"
    check_writable(out)
    choice = resolve_model(model)
    dsd = load_mrpc(data)
    set_seed(seed)
    tokenizer = load_tokenizer(choice)
    splits = tokenize_mrpc(dsd, tokenizer, cfg["max_length"], cfg["train_limit"], cfg["eval_limit"], seed)
    net = build_model(method, cfg, choice)
    trainable, total = count_params(net)

    cuda = torch.cuda.is_available()
    precision = resolve_precision(cfg["precision"])
    args = TrainingArguments(
        output_dir=str(out), seed=seed, data_seed=seed,
        num_train_epochs=cfg["num_train_epochs"], per_device_train_batch_size=cfg["per_device_train_batch_size"],
        per_device_eval_batch_size=cfg["per_device_eval_batch_size"], learning_rate=cfg["learning_rate"],
        weight_decay=cfg["weight_decay"], eval_strategy="epoch", save_strategy="no", logging_strategy="steps",
        logging_steps=cfg["logging_steps"], report_to=[],
        group_by_length=True,  # batches of similar length: dynamic padding then pads little
        bf16=precision == "bf16", fp16=precision == "fp16", dataloader_num_workers=0, disable_tqdm=False, use_cpu=not cuda,
        ddp_find_unused_parameters=False,
    )
    steps_per_epoch = math.ceil(len(splits["train"]) / (args.per_device_train_batch_size * args.world_size
                                                         * args.gradient_accumulation_steps))
    num_steps = math.ceil(steps_per_epoch * cfg["num_train_epochs"])
    trainer = Trainer(model=net, args=args, train_dataset=splits["train"], eval_dataset=splits["validation"],
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
                      optimizers=make_optimizer(net, cfg, num_steps), callbacks=[keep_best(), *callbacks])
    cfg.update(seed=seed, num_training_steps=num_steps, precision_used=precision,
               data=dict(rows={k: len(v) for k, v in splits.items()}),
               environment=environment())  # read at the start: the code that trains is the commit recorded
    return Prepared(trainer, splits, tokenizer, choice, cfg, trainable, total, out)


def run(method: str, profile="auto", seed: int = 42, *, model: str = "auto", data=None,
        output_dir=None, callbacks=(), **overrides) -> RunResult:
    """Fine-tune with ``method`` (see ``METHODS``) and return a ``RunResult``. ``model`` is a
    ``resolve_model`` spec, ``data`` a ``load_mrpc`` source; ``overrides`` change the method's or
    the profile's settings (``learning_rate=3e-3``, ``num_train_epochs=5``, ...)."""
    p = prepare(method, profile, seed, model=model, data=data, output_dir=output_dir, callbacks=callbacks,
                **overrides)
    trainer = p.trainer
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    test = trainer.evaluate(p.splits["test"], metric_key_prefix="test")

    best = max(eval_records(trainer.state.log_history), key=lambda h: h["eval_accuracy"])  # first of equals, as the Trainer keeps
    result = RunResult(
        method=method, history=trainer.state.log_history,
        best={k: best[k] for k in ("epoch", "eval_accuracy", "eval_f1", "eval_loss")},
        test={"accuracy": test["test_accuracy"], "f1": test["test_f1"], "loss": test["test_loss"]},
        trainable_params=p.trainable, total_params=p.total, train_seconds=round(train_seconds, 2),
        model=p.choice.to_dict(), output_dir=str(p.out), config=p.cfg,
    )
    if trainer.is_world_process_zero():
        save_trained(trainer.model, method, p.out)
        p.tokenizer.save_pretrained(str(p.out))
        result.to_json(p.out / "run.json")
    return result


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
    out = Path(output_dir)
    if not (out / "run.json").is_file():
        raise FileNotFoundError(f"{out} has no run.json: it is not a folder written by helpers.ptuning.run")
    result = RunResult.from_json(out / "run.json")
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


def predict(output_dir, text1, text2) -> dict | list[dict]:
    """Label and probability for a sentence pair (or lists of pairs) with a saved run's model."""
    import torch

    from .data import LABEL_NAMES

    net, tokenizer, result = load_trained(output_dir)
    single = isinstance(text1, str)
    t1, t2 = ([text1], [text2]) if single else (list(text1), list(text2))
    batch = tokenizer(t1, t2, truncation=True, max_length=result.config["max_length"], padding=True,
                      return_tensors="pt")
    bf16 = result.config.get("precision_used") == "bf16"  # score as the run scored its test split
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        probs = net(**batch).logits.float().softmax(-1)
    out = [{"label": int(p.argmax()), "label_text": LABEL_NAMES[int(p.argmax())], "probability": float(p.max())}
           for p in probs]
    return out[0] if single else out


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
            key = ".".join(part for part in name.split(".")[:-1] if part not in ("default", "modules_to_save", "base_model", "model"))
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


def results_table(results):
    """A DataFrame, one row per run: trainable parameters, best validation and test scores, time."""
    import pandas as pd

    columns = ["method", "profile", "seed", "learning_rate", "head lr", "cls pooling", "pooler trained", "trainable", "trainable %",
               "epochs", "best epoch",
               "val acc", "val F1", "test acc", "test F1", "train s", "precision", "device", "model"]
    rows = []
    for r in (results.values() if isinstance(results, dict) else results):
        rows.append({
            "method": r.method, "profile": r.config["profile"], "seed": r.config["seed"],
            "learning_rate": r.config["learning_rate"],
            "head lr": r.config.get("head_learning_rate") or r.config["learning_rate"],  # None: the same rate
            "cls pooling": r.config.get("cls_pooling", "-"),  # v1 only: does the pooler read [CLS]?
            "pooler trained": bool(r.config.get("train_pooler")), "trainable": r.trainable_params,
            "trainable %": round(100 * r.trainable_share, 3), "epochs": r.config["num_train_epochs"],
            "best epoch": r.best["epoch"], "val acc": round(r.best["eval_accuracy"], 4),
            "val F1": round(r.best["eval_f1"], 4), "test acc": round(r.test["accuracy"], 4),
            "test F1": round(r.test["f1"], 4), "train s": round(r.train_seconds, 1),
            "precision": r.config.get("precision_used", "fp32"),  # runs before the setting trained in fp32 on CPU
            "device": r.config["environment"]["device"], "model": r.model["name"],
        })
    return pd.DataFrame(rows, columns=columns)


def load_results(pattern: str = "q1_*.json", folder=None) -> dict[Path, RunResult]:
    """The committed results (``results/`` by default) whose file names match ``pattern``, keyed
    by their file, in name order."""
    folder = Path(folder) if folder else wconfig.RESULTS_DIR
    return {p: RunResult.from_json(p) for p in sorted(folder.glob(pattern))}
