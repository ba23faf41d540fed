"""A training run's settings, typed: one frozen dataclass whose fields carry their own rule (kind, range,
help), as ``run_glue.py``'s argument dataclasses carry ``field(metadata={"help": ...})``, and whose
``__post_init__`` checks every one. ``--set``, ``--help`` and ``run(**overrides)`` all read the fields, so a
bad value fails at once, before anything loads, naming the field, the value and what is allowed.

``resolve_config(method, profile, **overrides)`` layers the settings every method takes (``COMMON``, read off
the fields marked common), the profile, the method's defaults (``methods.METHODS``) and the overrides.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import NamedTuple

from . import config, methods


class Rule(NamedTuple):
    """What one setting allows: its kind, its bounds or choices, and what it means."""

    kind: str  # int, float, bool, str, list
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    choices: tuple = ()
    help: str = ""
    optional: bool = True  # None allowed (a method that does not take the field, or "no limit")
    low_open: bool = False  # low is exclusive
    common: bool = False  # every method takes it (else only the methods whose defaults name it)


def setting(default, *args, **kw):
    """A ``RunSettings`` field with its ``Rule`` as metadata."""
    return dataclasses.field(default=default, metadata={"rule": Rule(*args, **kw)})


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Every setting of a training run, checked when built. ``method`` and ``profile`` say where the
    defaults came from; fields a method does not take stay None."""

    method: str
    profile: str
    learning_rate: float = setting(None, "float", 0, 1, low_open=True, common=True,
                                   help="peak learning rate of the trained weights")
    num_train_epochs: float = setting(None, "float", 0, 1000, low_open=True, common=True,
                                      help="epochs (a fraction trains part of one)")
    per_device_train_batch_size: int = setting(None, "int", 1, 4096, common=True, help="training batch size per device")
    per_device_eval_batch_size: int = setting(None, "int", 1, 4096, common=True,
                                              help="evaluation batch size per device")
    max_length: int = setting(None, "int", 8, 512, common=True, help="tokens per pair after truncation")
    logging_steps: int = setting(None, "int", 1, 10**6, common=True, help="log the training loss every N steps")
    train_limit: int | None = setting(None, "int", 1, 10**7, common=True, help="training rows (None: the whole split)")
    eval_limit: int | None = setting(None, "int", 1, 10**7, common=True,
                                     help="validation and test rows (None: the whole splits)")
    weight_decay: float = setting(0.01, "float", 0, 1, common=True, help="AdamW weight decay (not on biases and "
                                                                          "LayerNorm)")
    warmup_ratio: float = setting(0.06, "float", 0, 0.99, common=True,
                                  help="share of the steps spent warming up the learning rate")
    head_learning_rate: float | None = setting(None, "float", 0, 1, low_open=True, common=True,
                                               help="the classifier's own learning rate (None: learning_rate)")
    precision: str = setting("auto", "str", choices=("auto", "fp32", "bf16", "fp16"), optional=False, common=True,
                             help="auto: bf16 on a GPU that has it, fp32 on a CPU")
    dropout: float | None = setting(None, "float", 0, 0.99, common=True,
                                    help="every dropout of the pretrained model and head (None: the checkpoint's, "
                                         "0.1 for BERT); 0 also makes CPU steps faster")
    torch_compile: bool = setting(False, "bool", optional=False, common=True,
                                  help="torch.compile the model (a GPU's launch overhead)")
    pad_to_multiple_of: int | None = setting(None, "int", 1, 512, common=True,
                                             help="pad batches to a multiple of this (default 16 when compiled)")
    num_virtual_tokens: int | None = setting(None, "int", 1, 512, help="virtual tokens (v1) or prefix length (v2)")
    encoder_hidden_size: int | None = setting(None, "int", 1, 8192,
                                              help="hidden size of the reparameterisation encoder")
    encoder_reparameterization_type: str | None = setting(None, "str", choices=("MLP", "LSTM"), help="v1's encoder")
    cls_pooling: bool | None = setting(None, "bool", help="v1: BERT's pooler reads [CLS], not the first virtual "
                                                          "token")
    train_pooler: bool | None = setting(None, "bool", help="train BERT's pooler with the classifier")
    prefix_projection: bool | None = setting(None, "bool", help="v2: prefixes through an MLP (reparameterisation)")
    r: int | None = setting(None, "int", 1, 1024, help="LoRA rank")
    lora_alpha: float | None = setting(None, "float", 0, 10**4, low_open=True, help="LoRA scaling")
    lora_dropout: float | None = setting(None, "float", 0, 0.99, help="LoRA dropout")
    target_modules: list | None = setting(None, "list", help="LoRA's target modules")
    adapter_config: str | None = setting(None, "str", choices=("seq_bn", "double_seq_bn", "par_bn"),
                                         help="bottleneck adapter")
    reduction_factor: float | None = setting(None, "float", 1 / 16, 4096, help="adapter: hidden size = d_model // "
                                                                               "reduction_factor (0.375: 8/3 d_model)")

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


# Read off the fields: nothing here is kept in step by hand.
RULES: dict[str, Rule] = {f.name: f.metadata["rule"] for f in dataclasses.fields(RunSettings) if "rule" in f.metadata}
COMMON: dict = {f.name: f.default for f in dataclasses.fields(RunSettings) if "rule" in f.metadata
                and f.metadata["rule"].common}


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


def resolve_config(method: str, profile="auto", **overrides) -> dict:
    """The complete configuration of a run: ``COMMON``, then the profile, then the method's defaults, then
    overrides, checked field by field (``RunSettings``). Raises ValueError naming what is wrong and what
    is allowed, before anything loads."""
    spec = methods.get(method)
    prof = config.get_profile(profile)
    allowed = {**COMMON, **spec.defaults}
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"method {method!r} does not take {', '.join(unknown)}; "
                         f"it takes: {', '.join(sorted(allowed))}")
    cfg = dict(COMMON)
    for key in COMMON:  # the profile fills the settings it has (epochs, batch sizes, limits, ...)
        if hasattr(prof, key):
            cfg[key] = getattr(prof, key)
    cfg.update(spec.defaults)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    settings = RunSettings(method=method, profile=prof.name, **cfg)
    return {k: v for k, v in settings.to_dict().items() if k in cfg or k in ("method", "profile")}


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
    profile = config.get_profile(profile).name
    key = settings_key(method, profile, **overrides)
    return config.OUTPUT_DIR / "q1" / f"{method}-{profile}-seed{seed}-{key}"


def help_text(profile) -> str:
    """Every setting with what it means, what is allowed and its default per method (for ``--help``)."""
    specs = methods.defaults()
    lines = ["settings (--set KEY=VALUE; defaults: method, else profile '%s'):" % profile.name]
    for name, rule in RULES.items():
        allowed = (", ".join(rule.choices) if rule.choices else "true/false" if rule.kind == "bool"
                   else _range(rule) if rule.low is not None else rule.kind)
        per = [f"{m}={d[name]}" for m, d in specs.items() if name in d]
        default = getattr(profile, name, COMMON.get(name))
        if per and (len(per) == len(specs) or name not in COMMON):  # only the methods that set it
            where = ", ".join(per)
        elif per:
            where = f"{default}; " + ", ".join(per)
        elif name in COMMON:
            where = f"{default}"
        else:
            continue
        lines.append(f"  {name:32s} {rule.help}; allowed {allowed}; default {where}")
    return "\n".join(lines)
