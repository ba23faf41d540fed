"""Every story written is appended, with its spec, messages, sampling and timing, to a JSON Lines file."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from .. import config


def records_path() -> Path:
    """``outputs/stories.jsonl``: where every story is appended."""
    return config.output_dir() / "stories.jsonl"


def append_record(record: dict, path: str | os.PathLike | None = None) -> Path:
    """Append one record as one JSON line, written whole by a single ``write`` on a file opened for
    appending, then flushed to disk: a crash loses at most the line being written. A torn last
    line left by an earlier crash is closed off first, so it cannot swallow this one."""
    path = Path(path) if path else records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_records(path: str | os.PathLike | None = None) -> list[dict]:
    """All whole records, decoded line by line. A line that is not UTF-8 or not a JSON object (a
    torn line from a crash) is skipped with a warning naming the file and line; the rest are read."""
    path = Path(path) if path else records_path()
    if not path.is_file():
        return []
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
            except (UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
                warnings.warn(f"{path}, line {lineno}: not a whole record (torn by a crash?); skipped", stacklevel=2)
                continue
            out.append(rec)
    return out
