"""A trained run, loaded back for inference: ``load_trained(folder)`` and ``predict(folder, text1, text2)``.

The folder is the one ``training.run`` wrote: its ``run.json`` names the method and the base model, and the
method's spec (``methods.METHODS``) loads what it saved. An interrupted run, or a folder with no run, is
named as such, with what to do.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import checkpoints, methods
from .data import LABEL_NAMES, tokenize_pairs
from .methods import ModelChoice
from .models import load_tokenizer
from .results import RunResult


def _not_a_run(out: Path) -> str:
    """What ``out`` is, when it holds no finished run, and what to do."""
    if not out.is_dir():
        return f"{out} does not exist: pass the output_dir of a finished run (training.run(..., output_dir=...))"
    newest = checkpoints.checkpoints(out)
    if newest:
        return (f"{out} holds an interrupted run (newest checkpoint {newest[0].name}), not a finished one: continue "
                "it with the same call and resume=True (python -m helpers q1 ... --resume), then predict")
    return (f"{out} holds no trained run (no run.json): train one with training.run(..., output_dir={str(out)!r}) "
            "or pass the folder of a finished run")


def load_trained(output_dir):
    """Reload a model saved by ``training.run`` (base model plus what the method trained), ready for
    inference: (model, tokenizer, RunResult)."""
    if output_dir is None or not isinstance(output_dir, (str, os.PathLike)):
        raise TypeError(f"output_dir must be a run's folder (a path), got {type(output_dir).__name__}")
    out = Path(output_dir)
    if not (out / "run.json").is_file():
        raise FileNotFoundError(_not_a_run(out))
    result = RunResult.from_json(out / "run.json")
    if result.method not in methods.METHODS:
        raise ValueError(f"{out} holds a {result.method!r} run, which this workbook cannot load; "
                         f"it loads {', '.join(methods.METHODS)}")
    choice = ModelChoice(**result.model)
    net = methods.get(result.method).load(choice, out)
    if result.config.get("cls_pooling"):
        methods.pool_from_cls(net, result.config["num_virtual_tokens"])
    net.eval()
    return net, load_tokenizer(choice), result


def predict(output_dir, text1, text2) -> dict | list[dict]:
    """Label and probability for a sentence pair (or lists of pairs) with a saved run's model."""
    import torch

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
    batch = tokenize_pairs(tokenizer, t1, t2, result.config["max_length"], padding=True, return_tensors="pt")
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
