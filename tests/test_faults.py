"""Faults that lose nothing: one Ctrl-C delivered twice, checkpoints that are whole or skipped, resumes that
refuse settings they cannot apply, a full disk, and the smaller messages (sweep, predict, intervals, GGUF)."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import INTERRUPTED_KW, signal_at

from helpers import callbacks, checkpoints, config, inference, results, stats, sweeps, training

pytestmark = pytest.mark.slow
KW = INTERRUPTED_KW  # v2 at batch 16 on 64 rows: 4 steps an epoch, 12 in all


@pytest.fixture
def copy(interrupted_v2, tmp_path):
    """A copy of the shared interrupted run (complete checkpoints 4 and 7), to damage."""
    target = tmp_path / "run"
    shutil.copytree(interrupted_v2[0], target, ignore=shutil.ignore_patterns(".lock"))
    return target


def test_the_stop_leaves_two_complete_checkpoints(interrupted_v2):
    folder = interrupted_v2[0]
    assert [p.name for p in checkpoints.checkpoints(folder)] == ["checkpoint-7", "checkpoint-4"]
    assert all(checkpoints.verify(p) is None for p in checkpoints.checkpoints(folder))


@pytest.mark.parametrize("name, damage", [
    ("optimizer.pt", "truncate"), ("rng_state.pth", "truncate"), ("trainer_state.json", "truncate"),
    (checkpoints.TRAINABLE_FILE, "garble"), (checkpoints.MARKER, "delete"),
])
def test_a_damaged_newest_checkpoint_is_skipped_naming_the_file(copy, name, damage):
    path = copy / "checkpoint-7" / name
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garble":
        data = bytearray(path.read_bytes())
        data[-100:] = os.urandom(100)
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    found, skipped = checkpoints.resumable(copy)
    assert found.name == "checkpoint-4"
    (where, why), = skipped
    assert where.name == "checkpoint-7" and (name in why or "cut short" in why)


def test_a_resume_after_the_newest_is_truncated_goes_on_from_the_one_before_and_says_so(copy, mrpc_dir, capsys):
    opt = copy / "checkpoint-7" / "optimizer.pt"
    opt.write_bytes(opt.read_bytes()[:100])
    result = training.run("v2", data=mrpc_dir, output_dir=copy, resume=True, **KW)
    out = capsys.readouterr().out
    assert "resume: skipped checkpoint-7 (optimizer.pt is 100 bytes" in out
    assert "resume: continuing from" in out and "checkpoint-4" in out
    assert result.config["resumed"] and [e["epoch"] for e in result.evals()] == [1.0, 2.0, 3.0]


def test_no_complete_checkpoint_is_an_error_that_names_the_file_and_what_deletes(copy, mrpc_dir):
    for folder in checkpoints.checkpoints(copy):
        (folder / "trainer_state.json").write_text("{")
    with pytest.raises(checkpoints.CheckpointError) as e:
        training.run("v2", data=mrpc_dir, output_dir=copy, resume=True, **KW)
    message = str(e.value)
    assert "trainer_state.json" in message and "checkpoint-7" in message and "checkpoint-4" in message
    assert "deletes" in message  # starting over is offered, and it says that it deletes them


def test_non_finite_weights_are_refused(copy, mrpc_dir):
    from safetensors.torch import load_file, save_file

    folder = copy / "checkpoint-7"
    weights = load_file(str(folder / checkpoints.TRAINABLE_FILE))
    name = next(iter(weights))
    weights[name][0] = float("nan")
    save_file(weights, str(folder / checkpoints.TRAINABLE_FILE))
    checkpoints.write_marker(folder)  # complete, but diverged
    with pytest.raises(checkpoints.CheckpointError, match=rf"non-finite weights \({name} has NaN"):
        training.run("v2", data=mrpc_dir, output_dir=copy, resume=True, **KW)


def test_a_resume_refuses_settings_it_cannot_apply(copy, mrpc_dir):
    with pytest.raises(checkpoints.CheckpointError) as e:
        training.run("v2", data=mrpc_dir, output_dir=copy, resume=True, learning_rate=0.1, **KW)
    assert "learning_rate: 0.001 in the checkpoint, 0.1 now" in str(e.value)
    assert not (copy / "run.json").exists()


def test_the_cli_refuses_them_too_and_records_nothing(copy, mrpc_dir, tmp_path, capsys, monkeypatch):
    from helpers.__main__ import main

    monkeypatch.setenv("MRPC_DIR", str(mrpc_dir))
    out = tmp_path / "r.json"
    code = main(["q1", "--method", "v2", "--profile", "smoke", "--seed", "0", "--set", "num_train_epochs=3",
                 "--output-dir", str(copy), "--resume", "--set", "learning_rate=0.1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "learning_rate: 0.001 in the checkpoint, 0.1 now" in err and not out.exists()


def test_a_second_press_after_the_window_stops_at_once_naming_the_checkpoint(mrpc_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(callbacks, "SIGNAL_WINDOW_S", 0.2)
    sigs = (signal.SIGINT, signal.SIGINT)
    with pytest.raises(training.RunInterrupted, match=r"again: stopped at once .*last complete checkpoint is "
                                                      r".*checkpoint-4") as e:
        training.run("v2", data=mrpc_dir, output_dir=tmp_path / "run", callbacks=[signal_at(6, *sigs, gap=0.5)], **KW)
    assert e.value.checkpoint.endswith("checkpoint-4")


def test_two_presses_within_the_window_count_as_one(mrpc_dir, tmp_path):
    with pytest.raises(training.RunInterrupted, match="SIGINT: run stopped at step 7") as e:
        training.run("v2", data=mrpc_dir, output_dir=tmp_path / "run",
                    callbacks=[signal_at(6, signal.SIGINT, signal.SIGINT)], **KW)
    assert e.value.checkpoint.endswith("checkpoint-7")
    assert checkpoints.verify(e.value.checkpoint) is None


def test_ctrl_c_through_timeout_and_the_process_group_saves_once_without_a_traceback(mrpc_dir, tmp_path):
    """``timeout`` forwards SIGINT to its child, and the terminal sends it to the whole group: two within
    milliseconds. The run must stop after the step, with a complete checkpoint, exit 130, no traceback."""
    env = {**os.environ, "MRPC_DIR": str(mrpc_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    cmd = ["timeout", "300", sys.executable, "-m", "helpers", "q1", "--method", "v2", "--profile", "smoke",
           "--set", "num_train_epochs=30", "--output-dir", str(run), "--out", str(tmp_path / "r.json")]
    proc = subprocess.Popen(cmd, cwd=config.PROJ_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 240
    while not (run / "checkpoint-8" / checkpoints.MARKER).exists() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: timeout and python both get it
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "SIGINT: run stopped at step" in err and "--resume" in err
    assert not (tmp_path / "r.json").exists()
    newest, skipped = checkpoints.resumable(run)
    assert newest is not None and int(newest.name.split("-")[1]) >= 8 and not skipped


def test_a_full_disk_names_the_folder_and_keeps_the_last_checkpoint(mrpc_dir, tmp_path, monkeypatch):
    import safetensors.torch

    real = safetensors.torch.save_file
    calls = {"n": 0}

    def full_after_two_checkpoints(tensors, filename, *a, **k):
        if "checkpoint-12" in str(filename):
            raise OSError(errno.ENOSPC, "No space left on device")
        calls["n"] += 1
        return real(tensors, filename, *a, **k)

    monkeypatch.setattr(safetensors.torch, "save_file", full_after_two_checkpoints)
    run = tmp_path / "run"
    with pytest.raises(checkpoints.DiskFull) as e:
        training.run("v2", data=mrpc_dir, output_dir=run, **KW)
    message = str(e.value)
    assert str(run) in message and "MiB" in message and "checkpoint-12" in message
    assert [p.name for p in checkpoints.checkpoints(run)] == ["checkpoint-8", "checkpoint-4"]
    assert all(checkpoints.verify(p) is None for p in checkpoints.checkpoints(run))
    monkeypatch.setattr(safetensors.torch, "save_file", real)  # space freed: the resume finishes the run
    result = training.run("v2", data=mrpc_dir, output_dir=run, resume=True, **KW)
    assert [e["epoch"] for e in result.evals()] == [1.0, 2.0, 3.0]


def test_a_full_disk_while_writing_a_result_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    results.save_json({"old": True}, path)

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "fsync", no_space)
    with pytest.raises(checkpoints.DiskFull, match=rf"no space left on the device of {tmp_path}"):
        results.save_json({"new": True}, path)
    assert json.loads(path.read_text()) == {"old": True} and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_predict_says_what_an_interrupted_or_empty_folder_is(copy, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"interrupted run .*checkpoint-7.*resume=True"):
        inference.predict(copy, "a", "b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no trained run.*training.run"):
        inference.predict(tmp_path / "empty", "a", "b")


def test_a_second_sweep_on_the_same_out_is_told_about_out_not_output_dir(tmp_path, monkeypatch):
    from helpers.runinfo import folder_lock

    out = tmp_path / "sweep.json"
    with folder_lock(tmp_path / "sweep"):
        with pytest.raises(ValueError) as e:
            sweeps.sweep("v2", 1, "smoke", out=out)
    assert "--out" in str(e.value) and "--output-dir" not in str(e.value)


def test_intervals_stay_inside_zero_one_and_say_when_n_is_small():
    r = stats.mean_ci([0.2, 0.95], bounds=(0, 1))
    assert 0 <= r["ci_low"] <= r["ci_high"] <= 1 and "n = 2" in r["note"]
    assert stats.mean_ci([0.7, 0.72, 0.71], bounds=(0, 1))["note"] == ""


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"NOTGGUF" + b"\0" * 64, "not a GGUF file"),
                                              ("truncated", "truncated or damaged")])
def test_a_bad_gguf_file_is_named_before_llama_cpp_loads_it(tmp_path, content, message):
    from helpers import llm

    path = tmp_path / "m.gguf"
    if content == "truncated":
        good = llm.embedded_gguf().read_bytes()
        content = good[: len(good) // 2]
    path.write_bytes(content)
    with pytest.raises(llm.BackendError, match=message):
        llm.LocalLlama(path)
