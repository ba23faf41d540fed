"""Checkpoints that are whole or absent, and a resume that says what it took.

A training run's checkpoint folder (``checkpoint-<step>``) is written by the Trainer (optimizer, schedule,
random state, its state JSON) and by the workbook (the trainable weights, the best epoch's weights, the run's
settings). It counts as complete only once ``complete.json`` is written, last, through a temporary file and a
rename: it lists every file with its size and SHA-256. Older checkpoints are removed only after a newer one
is complete, so a kill, a full disk or a crash at any moment leaves the previous complete checkpoint intact.

``resumable(folder)`` picks the newest complete checkpoint whose files still match the list, and says why it
skipped the others; ``check_finite`` refuses weights that hold NaN or infinity.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

MARKER = "complete.json"
PATTERN = re.compile(r"^checkpoint-(\d+)$")
KEEP = 2  # complete checkpoints kept: if the newest is damaged later, a resume still has the one before
# The workbook's own files in a checkpoint, beside the Trainer's. peft saves prompt-learning adapters as the
# encoder's output, which cannot be trained on from (shape [20, 4608] against the encoder's [20, 384] for v2),
# so a resume loads TRAINABLE_FILE (every trainable tensor as it trains) instead of the Trainer's adapter.
TRAINABLE_FILE, BEST_FILE, STATE_FILE = "workbook_trainable.safetensors", "workbook_best.safetensors", \
    "workbook_state.json"


class CheckpointError(ValueError):
    """A checkpoint cannot be resumed from; the message names the file and says what to do."""


class DiskFull(OSError):
    """Writing a checkpoint or a result ran out of space; the message names the folder and the space needed."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER and not p.name.startswith("."))


def write_marker(folder: str | os.PathLike) -> Path:
    """Record every file in ``folder`` (size and SHA-256) in ``complete.json``, written last and atomically:
    from then on the checkpoint counts as complete."""
    folder = Path(folder)
    files = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in _files(folder)}
    tmp = folder / f".{MARKER}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"files": files}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MARKER)
    return folder / MARKER


def verify(folder: str | os.PathLike) -> str | None:
    """None if ``folder`` is a complete checkpoint whose files match its marker; else why not, naming the file."""
    folder = Path(folder)
    try:
        listed = json.loads((folder / MARKER).read_text())["files"]
    except FileNotFoundError:
        return f"no {MARKER}: the checkpoint was cut short while it was written"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{MARKER} is damaged ({type(e).__name__})"
    for name, want in listed.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != want["size"]:
            return f"{name} is {size:,} bytes, {want['size']:,} were written: truncated or replaced"
        if _sha256(path) != want["sha256"]:
            return f"{name} does not match what was written (damaged)"
    return None


def checkpoints(folder: str | os.PathLike) -> list[Path]:
    """The ``checkpoint-<step>`` folders in ``folder``, newest (highest step) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := PATTERN.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def resumable(folder: str | os.PathLike) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest complete checkpoint in ``folder`` (or None), and each newer one skipped with the reason."""
    skipped = []
    for path in checkpoints(folder):
        why = verify(path)
        if why is None:
            return path, skipped
        skipped.append((path, why))
    return None, skipped


def is_complete(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` was completed (its marker written); ``verify`` also checks every file against it."""
    return (Path(folder) / MARKER).is_file()


def prune(folder: str | os.PathLike, keep: int = KEEP) -> None:
    """Keep the newest ``keep`` complete checkpoints in ``folder``; remove the older ones and any incomplete
    one older than the newest complete (called once a new checkpoint is complete; files are not re-hashed)."""
    kept = 0
    for path in checkpoints(folder):
        if kept < keep and is_complete(path):
            kept += 1
        elif kept:
            shutil.rmtree(path, ignore_errors=True)


def differences(saved: dict, now: dict) -> list[str]:
    """``name: saved in the checkpoint, now now`` for every setting that differs."""
    return [f"{k}: {saved.get(k)} in the checkpoint, {now.get(k)} now" for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)]


def choose(folder: str | os.PathLike, settings: dict) -> Path | None:
    """The checkpoint a resume continues from: the newest complete one, each newer one skipped with its reason
    (printed). None when ``folder`` holds no checkpoint. CheckpointError when none is complete, when it was
    trained with other ``settings`` (a resume keeps the checkpoint's optimizer and schedule, so it cannot apply
    them, and records only what it applies), or when its weights are not finite."""
    found, skipped = resumable(folder)
    for path, why in skipped:
        print(f"resume: skipped {path.name} ({why})", flush=True)
    if found is None:
        if not skipped:
            return None
        what = "; ".join(f"{p.name}: {why}" for p, why in skipped)
        raise CheckpointError(f"resume: no complete checkpoint in {folder} ({what}). To start over, run again "
                              "without resume=True: that deletes these checkpoints. To keep them, pass another "
                              "output folder.")
    try:
        saved = json.loads((found / STATE_FILE).read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"resume: {found / STATE_FILE} has no run settings ({type(e).__name__}): it was "
                              "written by an older workbook. Run again without resume=True (that deletes the "
                              "checkpoints), or pass another output folder.") from None
    diff = differences(saved, settings)
    if diff:
        raise CheckpointError(f"resume: {found} was trained with other settings ({'; '.join(diff)}). A resume "
                              "goes on with the checkpoint's optimizer and schedule, so it cannot change them: "
                              "resume with the checkpoint's settings, or run without resume=True (that deletes "
                              "the checkpoints), or pass another output folder.")
    from safetensors.torch import load_file

    for name in (TRAINABLE_FILE, BEST_FILE):
        if (found / name).is_file():
            check_finite(load_file(str(found / name)), f"{found / name}")
    return found


def check_finite(tensors: dict, where: str) -> None:
    """CheckpointError naming the first tensor in ``tensors`` that holds NaN or infinity."""
    import torch

    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(
                f"{where} holds non-finite weights ({name} has NaN or infinity): the run diverged before this "
                "checkpoint, and resuming would go on from NaN. Start again without resume (this deletes the "
                "run's checkpoints), with a lower learning_rate.")


def folder_size(folder: str | os.PathLike) -> int:
    """Bytes in the files under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def is_disk_full(e: BaseException) -> bool:
    """True for an error that means no space was left: ENOSPC or EDQUOT, or torch's serializer failing to write."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("file write failed" in text or "No space left" in text
                                            or "inline_container" in text)


def disk_full(folder: str | os.PathLike, needed: int, what: str) -> DiskFull:
    """The error to raise when writing ``what`` into ``folder`` ran out of space."""
    folder = Path(folder)
    free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    return DiskFull(errno.ENOSPC, f"no space left on the device of {folder} while writing {what}: it needs about "
                                  f"{needed / 2**20:.1f} MiB and {free / 2**20:.1f} MiB are free. Free some space "
                                  "(or pass another output folder) and run again")
