"""MRPC: find it, read it, check it.

``load_mrpc()`` looks, in order, at the ``source`` argument, the ``MRPC_DIR`` environment
variable, ``data/mrpc/`` in the repository, and the Hugging Face hub (``SetFit/mrpc``, not
tried when ``HF_HUB_OFFLINE=1``). Local folders may hold the course's JSON Lines layout or
GLUE's original tab-separated files. Every record is checked, and a bad one is reported with
its file and line rather than as a traceback from inside a library.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from . import config

SPLITS = ("train", "validation", "test")
JSONL_FILES = {"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"}
# GLUE's MRPC folder: train.tsv and dev.tsv; its test.tsv has no labels, so the labelled test
# split comes from the corpus's own msr_paraphrase_test.txt (same columns).
GLUE_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "msr_paraphrase_test.txt"}
GLUE_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
HUB_ID = "SetFit/mrpc"
HUB_TIMEOUT_S = 10
LABEL_NAMES = ["not_equivalent", "equivalent"]


@dataclasses.dataclass(frozen=True)
class MrpcSource:
    """Where MRPC was found: ``kind`` is ``jsonl``, ``glue`` or ``hub``."""

    kind: str
    location: str
    reason: str


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` asks for no network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _layout(folder: Path) -> str | None:
    """``jsonl`` or ``glue`` if the folder holds any file of that layout, else None."""
    for kind, files in (("jsonl", JSONL_FILES), ("glue", GLUE_FILES)):
        if any((folder / name).is_file() for name in files.values()):
            return kind
    return None


def _check_folder(folder: Path, why: str) -> MrpcSource:
    if not folder.is_dir():
        raise FileNotFoundError(f"MRPC folder {folder} ({why}) does not exist or is not a folder")
    kind = _layout(folder)
    if kind is None:
        raise FileNotFoundError(
            f"MRPC folder {folder} ({why}) holds neither the JSON Lines layout "
            f"({', '.join(JSONL_FILES.values())}) nor GLUE's files ({', '.join(GLUE_FILES.values())})"
        )
    files = JSONL_FILES if kind == "jsonl" else GLUE_FILES
    missing = [name for name in files.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MRPC folder {folder} ({why}) is missing {', '.join(missing)}; "
            f"the {kind} layout needs {', '.join(files.values())}"
        )
    return MrpcSource(kind, str(folder), why)


def find_mrpc(source: str | os.PathLike | None = None) -> MrpcSource:
    """Decide where MRPC comes from, without reading it. Raises FileNotFoundError listing
    every way to provide it when nothing is found."""
    if source is not None:
        return _check_folder(Path(source).expanduser(), "the source argument")
    env = os.environ.get("MRPC_DIR", "").strip()
    if env:
        folder = Path(env).expanduser()
        # A relative MRPC_DIR is read from the working directory, else from the repository root,
        # so `MRPC_DIR=../shared/data/mrpc` also works inside notebooks/ (their working directory).
        if not folder.is_absolute() and not folder.is_dir() and (config.PROJ_ROOT / folder).is_dir():
            folder = config.PROJ_ROOT / folder
        return _check_folder(folder, "from MRPC_DIR")
    repo_folder = config.DATA_DIR / "mrpc"
    if repo_folder.is_dir() and _layout(repo_folder):
        return _check_folder(repo_folder, "data/mrpc in the repository")
    if not hub_offline():
        return MrpcSource("hub", HUB_ID, "no local copy; downloading from the Hugging Face hub")
    raise FileNotFoundError(
        "MRPC was not found. Provide it in one of these ways:\n"
        "  1. load_mrpc('/path/to/folder') with train.jsonl, validation.jsonl, test.jsonl\n"
        "     (the course's Q1_MRPC_dataset) or GLUE's train.tsv, dev.tsv, msr_paraphrase_test.txt;\n"
        "  2. export MRPC_DIR=/path/to/that/folder;\n"
        f"  3. put that folder at {repo_folder};\n"
        f"  4. unset HF_HUB_OFFLINE (now set) so it can be downloaded from the hub ({HUB_ID})."
    )


def _check_record(rec: dict, where: str) -> dict:
    for field in ("text1", "text2", "label"):
        if field not in rec:
            raise ValueError(f"{where}: missing field {field!r} (a record needs text1, text2, label)")
    for field in ("text1", "text2"):
        if not isinstance(rec[field], str) or not rec[field].strip():
            raise ValueError(f"{where}: field {field!r} must be a non-empty string, got {rec[field]!r}")
    label = rec["label"]
    if isinstance(label, bool) or label not in (0, 1):
        raise ValueError(f"{where}: field 'label' must be 0 or 1, got {label!r}")
    return {"text1": rec["text1"], "text2": rec["text2"], "label": int(label)}


def _open_lines(path: Path, encoding: str = "utf-8"):
    """``(line number, text)`` of a file, decoded line by line (streaming: a long line is read
    whole, nothing more). An unreadable file or a line that is not valid text raises ValueError
    with the file, the line and what to do."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror}); check that it exists and that you may read it "
                         f"(ls -l {path})") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}, line {lineno}: not valid UTF-8 (byte {raw[e.start]:#04x} at column "
                                 f"{e.start + 1}); save the file as UTF-8 or fix that line") from None
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]  # a byte-order mark
            yield lineno, text


def _check_idx(value, where: str, seen: dict) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        else:
            raise ValueError(f"{where}: field 'idx' must be a whole number, got {value!r}; "
                             "fix it or remove the field (rows are then numbered in file order)")
    if value in seen:
        raise ValueError(f"{where}: idx {value} repeats line {seen[value]} of the same split; "
                         "each pair of a split needs its own idx")
    return value


def read_jsonl(path: Path) -> list[dict]:
    """Records of one JSON Lines split, checked; ``idx`` is kept when present."""
    rows, seen = [], {}
    for lineno, line in _open_lines(path):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); "
                             "fix or remove that line") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(rec).__name__}")
        row = _check_record(rec, where)
        row["idx"] = _check_idx(rec["idx"], where, seen) if "idx" in rec else len(rows)
        seen[row["idx"]] = lineno
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: the split is empty (no records)")
    return rows


def read_glue_tsv(path: Path) -> list[dict]:
    """Records of one of GLUE's MRPC files (Quality, #1 ID, #2 ID, #1 String, #2 String)."""
    rows = []
    # The corpus has stray quote characters, so split on tabs rather than parse as CSV.
    for lineno, line in _open_lines(path):
        if lineno == 1:
            header = line.rstrip("\r\n").split("\t")
            if header != GLUE_HEADER:
                raise ValueError(f"{path}, line 1: expected the header {GLUE_HEADER}, got {header}")
            continue
        if not line.strip():
            continue
        cols = line.rstrip("\r\n").split("\t")
        where = f"{path}, line {lineno}"
        if len(cols) != 5:
            raise ValueError(f"{where}: expected 5 tab-separated fields, got {len(cols)}")
        try:
            label = int(cols[0])
        except ValueError:
            raise ValueError(f"{where}: field 'Quality' must be 0 or 1, got {cols[0]!r}") from None
        row = _check_record({"text1": cols[3], "text2": cols[4], "label": label}, where)
        row["idx"] = len(rows)
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: the split is empty (no records)")
    return rows


def _features():
    import datasets

    return datasets.Features({
        "text1": datasets.Value("string"),
        "text2": datasets.Value("string"),
        "label": datasets.ClassLabel(names=LABEL_NAMES),
        "idx": datasets.Value("int64"),
    })


def _load_hub():
    import datasets
    from huggingface_hub import HfApi

    try:
        HfApi().dataset_info(HUB_ID, timeout=HUB_TIMEOUT_S)
    except Exception as e:  # no network, a proxy, the hub down: all end the same way
        raise FileNotFoundError(
            f"MRPC: no local copy, and the hub ({HUB_ID}) did not answer within {HUB_TIMEOUT_S} s "
            f"({type(e).__name__}). Set MRPC_DIR to a folder with the splits, or retry online."
        ) from None
    raw = datasets.load_dataset(HUB_ID)
    out = {}
    for split in SPLITS:
        if split not in raw:
            raise ValueError(f"hub dataset {HUB_ID} has no {split!r} split (it has {list(raw)})")
        out[split] = [_check_record(r, f"{HUB_ID}[{split}][{i}]") | {"idx": int(r.get("idx", i))}
                      for i, r in enumerate(raw[split])]
    return out


def load_mrpc(source: str | os.PathLike | None = None, verbose: bool = True):
    """Load MRPC as a ``datasets.DatasetDict`` with splits train, validation, test and columns
    text1, text2, label (0/1, ClassLabel), idx. See the module docstring for where it looks."""
    import datasets

    where = find_mrpc(source)
    if where.kind == "hub":
        rows = _load_hub()
    else:
        folder = Path(where.location)
        files = JSONL_FILES if where.kind == "jsonl" else GLUE_FILES
        reader = read_jsonl if where.kind == "jsonl" else read_glue_tsv
        rows = {split: reader(folder / files[split]) for split in SPLITS}
    feats = _features()
    dsd = datasets.DatasetDict({s: datasets.Dataset.from_list(rows[s], features=feats) for s in SPLITS})
    if verbose:
        sizes = " / ".join(f"{len(dsd[s])} {s}" for s in SPLITS)
        print(f"MRPC: {sizes} from {where.location} ({where.reason})")
    return dsd


def majority_accuracy(split) -> float:
    """Accuracy of always answering the most common label: what a collapsed classifier scores."""
    labels = list(split["label"])
    return max(labels.count(0), labels.count(1)) / len(labels)


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


def tokenize_pairs(tokenizer, text1, text2, max_length: int, **kw):
    """Sentence pairs tokenized as every run and prediction does: each text clipped (``clip_text``), the pair
    truncated to ``max_length`` tokens; ``kw`` goes to the tokenizer (``padding``, ``return_tensors``)."""
    return tokenizer([clip_text(t, max_length) for t in text1], [clip_text(t, max_length) for t in text2],
                     truncation=True, max_length=max_length, **kw)


def tokenize_mrpc(dsd, tokenizer, max_length: int, train_limit=None, eval_limit=None, seed: int = 0):
    """Tokenized splits, cut to the profile's sizes (a seeded shuffle), unpadded: padding happens
    per batch in the collator, so a batch is only as long as its longest pair."""
    from datasets.utils import logging as ds_logging

    out = {}
    shown = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()  # a notebook reopened later shows "model not found" for widget bars
    try:
        for split in SPLITS:
            ds = limit_split(dsd[split], train_limit if split == "train" else eval_limit, seed)
            out[split] = ds.map(lambda b: tokenize_pairs(tokenizer, b["text1"], b["text2"], max_length),
                                batched=True, remove_columns=["text1", "text2", "idx"])
    finally:
        if shown:
            ds_logging.enable_progress_bar()
    return out
