"""Q1: what P-Tuning v1 and v2 add to a BERT, read off the live model.

Training is shared machinery (``training.run(method, ...)``, with every method a spec in ``methods``);
this module holds what only Q1 asks: the peft config a method trains with, shown on the page, and the
anatomy of each method (parameters, trainable modules, where its prompts go and their shape).
"""
from __future__ import annotations

from . import methods
from .models import ModelChoice, resolve_model
from .settings import resolve_config

__all__ = ["anatomy", "peft_config"]


def peft_config(method: str, profile="smoke", **overrides):
    """The peft config object that ``training.run(method, **overrides)`` trains with (``PrefixTuningConfig``
    for v2, ``PromptEncoderConfig`` for v1, ``LoraConfig``), or None for full fine-tuning and the adapter."""
    return methods.get(method).peft_config(resolve_config(method, profile, **overrides))


def anatomy(method: str, choice: ModelChoice | None = None, **overrides) -> dict:
    """What ``method`` adds to the model and trains, read off a freshly built model: parameter
    counts (and share), the trainable modules, and the shape of the prompts it injects (v1: input
    embeddings prepended at layer 0; v2: a key and a value prefix for every layer)."""
    spec = methods.get(method)
    net = spec.build(resolve_config(method, "smoke", **overrides), choice or resolve_model(verbose=False))
    trainable, total = methods.count_params(net)
    return {"method": method, "trainable_params": trainable, "total_params": total, "share": trainable / total,
            "trainable_modules": spec.trainable_modules(net), "prompt": spec.prompt(net)}
