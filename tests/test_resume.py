"""Runs that survive: checkpoints, Ctrl-C / SIGTERM, resume, locks, keyed folders, long inputs."""
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest

from helpers import checkpoints, config, data, inference, results, settings, training

pytestmark = pytest.mark.slow
KW = dict(profile="smoke", seed=0, num_train_epochs=3)


def _evals(result):
    return [(e["epoch"], round(e["eval_accuracy"], 6), round(e["eval_loss"], 5)) for e in result.evals()]


def test_interrupted_then_resumed_equals_uninterrupted(mrpc_dir, tmp_path, interrupted_v2):
    whole = training.run("v2", data=mrpc_dir, output_dir=tmp_path / "whole", **KW)
    cut, stop = interrupted_v2
    assert re.search(r"SIGINT: run stopped at step 7 of 12.*resume=True", str(stop))
    assert os.path.isdir(stop.checkpoint) and not (cut / "run.json").exists()
    shutil.copytree(cut, tmp_path / "cut", ignore=shutil.ignore_patterns(".lock"))
    resumed = training.run("v2", data=mrpc_dir, output_dir=tmp_path / "cut", resume=True, **KW)
    assert resumed.config["resumed"] and not whole.config["resumed"]
    assert _evals(resumed) == _evals(whole) and len(_evals(whole)) == 3
    assert resumed.test == whole.test and resumed.predictions == whole.predictions
    for run in (whole, resumed):  # each evaluation says when it came, in seconds trained over every resume
        stamps = [e["train_s"] for e in run.evals()]
        assert 0 < stamps[0] < stamps[1] < stamps[2] <= run.train_seconds + 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler was put back


def _cli(args, tmp_path, mrpc_dir):
    env = {**os.environ, "MRPC_DIR": str(mrpc_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "WORKBOOK_OUTPUT_DIR": str(tmp_path / "outputs")}
    return subprocess.Popen([sys.executable, "-m", "helpers", "q1", *args], cwd=config.PROJ_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_saves_and_resume_finishes(mrpc_dir, tmp_path):
    """SIGTERM through the CLI (SIGINT, as a terminal delivers it, is in test_faults)."""
    sig = signal.SIGTERM
    args = ["--method", "v2-noproj", "--profile", "smoke", "--set", "num_train_epochs=4",
            "--output-dir", str(tmp_path / "run"), "--out", str(tmp_path / "r.json")]
    proc = _cli(args, tmp_path, mrpc_dir)
    deadline = time.time() + 300
    while not list((tmp_path / "run").glob("checkpoint-*")) and time.time() < deadline:
        time.sleep(0.5)  # wait until it trains (the first epoch's checkpoint)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and f"{sig.name}: run stopped at step" in err and "--resume" in err
    assert not (tmp_path / "r.json").exists()
    proc = _cli([*args, "--resume"], tmp_path, mrpc_dir)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert "resume: continuing from" in out
    result = results.RunResult.from_json(tmp_path / "r.json")
    assert result.config["resumed"] and [e["epoch"] for e in result.evals()] == [float(e) for e in range(1, 5)]


def test_a_second_run_on_the_same_folder_fails_at_once(mrpc_dir, tmp_path):
    from helpers.runinfo import folder_lock

    with folder_lock(tmp_path / "busy"):
        start = time.perf_counter()
        with pytest.raises(ValueError, match=rf"output folder .*busy is in use by process {os.getpid()}"):
            training.run("v2", data=mrpc_dir, output_dir=tmp_path / "busy", **KW)
        assert time.perf_counter() - start < 5


def test_default_folders_are_keyed_by_the_whole_configuration(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "OUTPUT_DIR", tmp_path)
    plain = settings.default_output_dir("v2", "smoke", 0)
    assert plain.name == "v2-smoke-seed0-default"
    a = settings.default_output_dir("v2", "smoke", 0, learning_rate=3e-3)
    b = settings.default_output_dir("v2", "smoke", 0, learning_rate=1e-2)
    assert len({plain, a, b}) == 3 and a == settings.default_output_dir("v2", "smoke", 0, learning_rate=0.003)
    # an override equal to the default is the default
    assert settings.default_output_dir("v2", "smoke", 0, learning_rate=1e-3) == plain


def test_cli_refuses_to_overwrite_a_result(tmp_path, capsys):
    from helpers.__main__ import main

    out = tmp_path / "r.json"
    out.write_text("{}")
    assert main(["q1", "--method", "v2", "--profile", "smoke", "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_text() == "{}"


@pytest.fixture(scope="module")
def trained(smoke_run):
    return smoke_run("v2-noproj")[0].output_dir  # shared with test_ptuning: not changed here


def test_predict_on_two_huge_texts_is_fast_and_small(trained):
    huge = " ".join(["paraphrase"] * 180_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out = inference.predict(trained, huge, huge + " again")
    assert time.perf_counter() - start < 30 and out["label"] in (0, 1)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 1024


def test_clip_keeps_what_truncation_keeps():
    from transformers import AutoTokenizer

    from helpers.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("embedded", verbose=False).path)
    a, b = "The quick brown fox jumps over the lazy dog . " * 40, "A short one ."
    full = tok(a, b, truncation=True, max_length=64)["input_ids"]
    assert tok(data.clip_text(a, 64), data.clip_text(b, 64), truncation=True, max_length=64)["input_ids"] == full


@pytest.mark.parametrize("args, error, message", [
    (([], []), None, None),
    ((None, None), TypeError, "text1 must be a string or a list of strings, got NoneType"),
    (("a", ["b"]), TypeError, "two strings, or two lists"),
    ((["a", "b"], ["c"]), ValueError, "text1 has 2 texts and text2 1"),
    ((["a", 3], ["c", "d"]), TypeError, r"text1\[1\] is a int, not a string"),
])
def test_predict_checks_its_inputs(trained, args, error, message):
    if error is None:
        assert inference.predict(trained, *args) == []
    else:
        with pytest.raises(error, match=message):
            inference.predict(trained, *args)


def test_predict_rejects_a_folder_of_another_kind(trained, tmp_path):
    import json
    import shutil

    other = tmp_path / "other"
    shutil.copytree(trained, other, ignore=shutil.ignore_patterns("checkpoint-*", ".lock"))
    run = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**run, "method": "ia3"}))
    with pytest.raises(ValueError, match="holds a 'ia3' run, which this workbook cannot load"):
        inference.predict(other, "a", "b")
    with pytest.raises(FileNotFoundError, match="no run.json"):
        inference.predict(tmp_path, "a", "b")
    with pytest.raises(TypeError, match="must be a run's folder"):
        inference.predict(None, "a", "b")


def test_compiled_path_trains_in_the_smoke_profile(mrpc_dir, tmp_path):
    """The GPU throughput path (torch.compile, batches padded to a multiple of 16), exercised on the CPU."""
    r = training.run("v2-noproj", "smoke", 0, data=mrpc_dir, output_dir=tmp_path, num_train_epochs=1,
                    torch_compile=True)
    assert r.config["torch_compile"] is True and training.pad_multiple(r.config) == 16
    assert len(r.evals()) == 1 and 0 <= r.test["accuracy"] <= 1
    # TrainingArguments(torch_compile=True) writes ACCELERATE_DYNAMO_BACKEND into os.environ; left there, every
    # later Trainer of the process compiled too (a resume then met checkpoints named _orig_mod.*)
    assert not [k for k in training.DYNAMO_ENV if k in os.environ]
    assert training.prepare("v2-noproj", "smoke", 0, data=mrpc_dir, output_dir=tmp_path / "plain",
                            num_train_epochs=1).trainer.accelerator.state.dynamo_plugin.backend.value == "NO"
    # the checkpoint names the unwrapped model's tensors, so the same run resumes from it
    checkpoint = checkpoints.resumable(tmp_path)[0]
    again = training.prepare("v2-noproj", "smoke", 0, data=mrpc_dir, output_dir=tmp_path / "again",
                             num_train_epochs=1, torch_compile=True)
    assert again.trainer.accelerator.state.dynamo_plugin.backend.value == "INDUCTOR"
    training._load_trainable(again.trainer.model, str(checkpoint))
