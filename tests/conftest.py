"""Shared fixtures. Tests run offline; what a test needs and cannot find fails it in CI
(``CI`` set) and skips it, with the reason, elsewhere."""
import json
import os
from pathlib import Path

import pytest

from helpers import config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WORKBOOK_HEADLESS", "1")
# torch.compile's test compiles in this process: no pool of compile workers left busy behind it
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")


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


_SMOKE = {}


@pytest.fixture(scope="session")
def smoke_run(mrpc_dir, tmp_path_factory):
    """Train a method once per test session (smoke profile, seed 0) and share it: ``smoke_run("v2")``
    returns (RunResult, the LiveCurves board that recorded it)."""
    from helpers import training
    from helpers.curves import LiveCurves

    def get(method):
        if method not in _SMOKE:
            board = LiveCurves(f"test {method}", live=False, png=tmp_path_factory.mktemp("fig") / "c.png")
            out = tmp_path_factory.mktemp(method)
            result = training.run(method, profile="smoke", seed=0, data=mrpc_dir, output_dir=out,
                                 callbacks=[board.callback(method)])
            _SMOKE[method] = (result, board)
        return _SMOKE[method]
    return get


def signal_at(step, *signals, gap=0.0):
    """A Trainer callback that sends ``signals`` to this process at the end of ``step``, ``gap`` s apart
    (the run then stops after the next step: the callback runs after the one that checks)."""
    import signal as _signal  # noqa: F401 (the callers pass signal.SIGINT)
    import time

    from transformers import TrainerCallback

    class Send(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == step:
                for i, sig in enumerate(signals):
                    if i:
                        time.sleep(gap)
                    os.kill(os.getpid(), sig)

    return Send()


INTERRUPTED_KW = dict(profile="smoke", seed=0, num_train_epochs=3)  # v2 at batch 16 on 64 rows: 4 steps an epoch


@pytest.fixture(scope="session")
def interrupted_v2(mrpc_dir, tmp_path_factory):
    """A v2 run sent SIGINT at the end of step 6, shared by the resume and fault tests (copy it before
    changing it): it stops after step 7, with complete checkpoints at steps 4 (epoch 1) and 7 (the stop).
    Returns (folder, the RunInterrupted it raised)."""
    import signal

    from helpers import training

    out = tmp_path_factory.mktemp("cut") / "run"
    with pytest.raises(training.RunInterrupted) as stop:
        training.run("v2", data=mrpc_dir, output_dir=out, callbacks=[signal_at(6, signal.SIGINT)], **INTERRUPTED_KW)
    return out, stop.value


def fake_result(method, seed, correct, trainable=10, epochs=2):
    """A RunResult whose test predictions are right where ``correct`` is True (labels all 1)."""
    import numpy as np

    from helpers import results

    preds = {"idx": list(range(len(correct))), "label": [1] * len(correct), "pred": [int(c) for c in correct],
             "prob": [0.9 if c else 0.1 for c in correct]}
    acc = float(np.mean(correct))
    return results.RunResult(
        method=method, history=[{"eval_accuracy": acc - 0.01, "eval_f1": 0.8, "eval_loss": 0.5, "epoch": 1.0},
                                {"eval_accuracy": acc, "eval_f1": 0.8, "eval_loss": 0.5, "epoch": 2.0}],
        best={"epoch": 2.0, "eval_accuracy": acc, "eval_f1": 0.8, "eval_loss": 0.5},
        test={"accuracy": acc, "f1": 0.8, "loss": 0.5}, trainable_params=trainable,
        total_params=max(100, trainable), train_seconds=1.0, model={"name": "m"}, output_dir="",
        config={"seed": seed, "learning_rate": 1e-3, "num_train_epochs": epochs}, predictions=preds)
