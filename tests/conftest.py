"""Shared fixtures. Tests run offline; what a test needs and cannot find fails it in CI
(``CI`` set) and skips it, with the reason, elsewhere."""
import json
import os
from pathlib import Path

import pytest

from helpers import config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WORKBOOK_HEADLESS", "1")


def need(condition: bool, why: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must have it)")
        pytest.skip(why)


@pytest.fixture(scope="session")
def mrpc_dir() -> Path:
    """The real MRPC folder: MRPC_DIR, else ../shared/data/mrpc beside the repository."""
    env = os.environ.get("MRPC_DIR")
    folder = Path(env) if env else config.PROJ_ROOT.parent / "shared" / "data" / "mrpc"
    if not folder.is_absolute() and not folder.is_dir():
        folder = config.PROJ_ROOT / folder
    need((folder / "train.jsonl").is_file(), f"MRPC not found at {folder}; set MRPC_DIR")
    return folder.resolve()


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path, monkeypatch):
    """Each test writes its outputs in its own folder, never in the repository."""
    monkeypatch.setattr(config, "OUTPUT_DIR", tmp_path / "outputs")


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def make_jsonl_folder(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        write_jsonl(folder / f"{split}.jsonl",
                    [{"text1": f"{split} sentence {i} .", "text2": f"{split} other {i} .", "label": i % 2,
                      "idx": i, "label_text": "x"} for i in range(n)])
    return folder


def send_json(handler, status: int, payload) -> None:
    """Answer an HTTP request from a loopback test server with ``payload`` (bytes or text) as JSON."""
    body = payload if isinstance(payload, bytes) else payload.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
