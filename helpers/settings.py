"""Q1's run settings, typed: one frozen dataclass whose ``__post_init__`` checks every field's type
and range, as ``run_glue.py``'s argument dataclasses and adapters' ``BnConfig`` do. ``--set`` and
``run(**overrides)`` go through it, so a bad value fails at once, before anything loads, with a
message that names the field, the value and what is allowed.

Which fields a method takes, and their defaults, is ``helpers.ptuning.METHODS``; fields a method
does not take stay None.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple


class Rule(NamedTuple):
    """What one setting allows: its kind, its bounds or choices, and what it means."""

    kind: str  # int, float, bool, str, list
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    choices: tuple = ()
    help: str = ""
    optional: bool = True  # None allowed (a method that does not take the field, or "no limit")
    low_open: bool = False  # low is exclusive


RULES: dict[str, Rule] = {
    "learning_rate": Rule("float", 0, 1, low_open=True, help="peak learning rate of the trained weights"),
    "head_learning_rate": Rule("float", 0, 1, low_open=True,
                               help="the classifier's own learning rate (None: learning_rate)"),
    "num_train_epochs": Rule("float", 0, 1000, low_open=True, help="epochs (a fraction trains part of one)"),
    "per_device_train_batch_size": Rule("int", 1, 4096, help="training batch size per device"),
    "per_device_eval_batch_size": Rule("int", 1, 4096, help="evaluation batch size per device"),
    "max_length": Rule("int", 8, 512, help="tokens per pair after truncation"),
    "train_limit": Rule("int", 1, 10**7, help="training rows (None: the whole split)"),
    "eval_limit": Rule("int", 1, 10**7, help="validation and test rows (None: the whole splits)"),
    "logging_steps": Rule("int", 1, 10**6, help="log the training loss every N steps"),
    "weight_decay": Rule("float", 0, 1, help="AdamW weight decay (not on biases and LayerNorm)"),
    "warmup_ratio": Rule("float", 0, 0.99, help="share of the steps spent warming up the learning rate"),
    "precision": Rule("str", choices=("auto", "fp32", "bf16", "fp16"), optional=False,
                      help="auto: bf16 on a GPU that has it, fp32 on a CPU"),
    "dropout": Rule("float", 0, 0.99, help="every dropout of the pretrained model and head (None: the checkpoint's, "
                                            "0.1 for BERT); 0 also makes CPU steps faster"),
    "torch_compile": Rule("bool", optional=False, help="torch.compile the model (a GPU's launch overhead)"),
    "pad_to_multiple_of": Rule("int", 1, 512, help="pad batches to a multiple of this (default 16 when compiled)"),
    "num_virtual_tokens": Rule("int", 1, 512, help="virtual tokens (v1) or prefix length (v2)"),
    "encoder_hidden_size": Rule("int", 1, 8192, help="hidden size of the reparameterisation encoder"),
    "encoder_reparameterization_type": Rule("str", choices=("MLP", "LSTM"), help="v1's prompt encoder"),
    "cls_pooling": Rule("bool", help="v1: BERT's pooler reads [CLS], not the first virtual token"),
    "train_pooler": Rule("bool", help="train BERT's pooler with the classifier"),
    "prefix_projection": Rule("bool", help="v2: prefixes through an MLP (reparameterisation)"),
    "r": Rule("int", 1, 1024, help="LoRA rank"),
    "lora_alpha": Rule("float", 0, 10**4, low_open=True, help="LoRA scaling"),
    "lora_dropout": Rule("float", 0, 0.99, help="LoRA dropout"),
    "target_modules": Rule("list", help="LoRA's target modules"),
    "adapter_config": Rule("str", choices=("seq_bn", "double_seq_bn", "par_bn"), help="bottleneck adapter"),
    "reduction_factor": Rule("float", 1 / 16, 4096, help="adapter: hidden size = d_model // reduction_factor "
                                                         "(0.375 gives 8/3 d_model)"),
}


def _fail(name: str, value, allowed: str) -> ValueError:
    return ValueError(f"setting {name}={value!r} is not allowed: {allowed}")


def check_value(name: str, value):
    """``value`` checked (and, for booleans given as "true"/"false", converted) against ``RULES``."""
    rule = RULES[name]
    if value is None:
        if rule.optional:
            return None
        raise _fail(name, value, "it needs a value")
    if rule.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _fail(name, value, "true or false")
    if rule.kind == "str":
        if value not in rule.choices:
            raise _fail(name, value, f"one of {', '.join(rule.choices)}")
        return value
    if rule.kind == "list":
        if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
            raise _fail(name, value, "a list of module names, e.g. ['query', 'value']")
        return list(value)
    number = (int,) if rule.kind == "int" else (int, float)
    not_finite = isinstance(value, float) and not math.isfinite(value)
    if isinstance(value, bool) or not isinstance(value, number) or not_finite:
        kind = "a whole number" if rule.kind == "int" else "a number"
        raise _fail(name, value, f"{kind} in {_range(rule)}")
    too_low = value <= rule.low if rule.low_open else value < rule.low
    if too_low or value > rule.high:
        raise _fail(name, value, f"a {'whole ' if rule.kind == 'int' else ''}number in {_range(rule)}")
    return float(value) if rule.kind == "float" and not isinstance(value, int) else value


def _range(rule: Rule) -> str:
    return f"{'(' if rule.low_open else '['}{rule.low:g}, {rule.high:g}]"


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Every setting of a Q1 run, checked when built. ``method`` and ``profile`` say where the
    defaults came from; the other fields are ``RULES``' names."""

    method: str
    profile: str
    learning_rate: float
    num_train_epochs: float
    per_device_train_batch_size: int
    per_device_eval_batch_size: int
    max_length: int
    logging_steps: int
    train_limit: int | None = None
    eval_limit: int | None = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    head_learning_rate: float | None = None
    precision: str = "auto"
    dropout: float | None = None
    torch_compile: bool = False
    pad_to_multiple_of: int | None = None
    num_virtual_tokens: int | None = None
    encoder_hidden_size: int | None = None
    encoder_reparameterization_type: str | None = None
    cls_pooling: bool | None = None
    train_pooler: bool | None = None
    prefix_projection: bool | None = None
    r: int | None = None
    lora_alpha: float | None = None
    lora_dropout: float | None = None
    target_modules: list | None = None
    adapter_config: str | None = None
    reduction_factor: float | None = None

    def __post_init__(self):
        for name in RULES:
            object.__setattr__(self, name, check_value(name, getattr(self, name)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, cfg: dict) -> RunSettings:
        """The settings recorded in a result's ``config`` (extra keys ignored; fields a file
        written before a setting existed lacks take their defaults)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


def help_text(methods: dict[str, dict], common: dict, profile) -> str:
    """Every setting with what it means, what is allowed and its default per method (for ``--help``)."""
    lines = ["settings (--set KEY=VALUE; defaults: method, else profile '%s'):" % profile.name]
    for name, rule in RULES.items():
        allowed = (", ".join(rule.choices) if rule.choices else "true/false" if rule.kind == "bool"
                   else _range(rule) if rule.low is not None else rule.kind)
        per = [f"{m}={d[name]}" for m, d in methods.items() if name in d]
        default = getattr(profile, name, common.get(name))
        if per and (len(per) == len(methods) or name not in common):  # only the methods that set it
            where = ", ".join(per)
        elif per:
            where = f"{default}; " + ", ".join(per)
        elif name in common:
            where = f"{default}"
        else:
            continue
        lines.append(f"  {name:32s} {rule.help}; allowed {allowed}; default {where}")
    return "\n".join(lines)
