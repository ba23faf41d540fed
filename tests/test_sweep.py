"""Sweeps: methods x seeds, one file per run, resumable without retraining; bad input before training."""
import json

import pytest

from helpers import config, ptuning, results, sweeps, training
from helpers.__main__ import main


@pytest.mark.slow
def test_smoke_sweep_writes_summary_and_resumes_without_retraining(mrpc_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "sweep.json"
    args = ["sweep", "--methods", "v2-noproj,lora", "--seeds", "2", "--profile", "smoke", "--data", str(mrpc_dir),
            "--set", "num_train_epochs=1", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads(out.read_text())
    assert summary["config"]["seeds"] == [0, 1] and [r["n"] for r in summary["table"]] == [2, 2]
    files = sorted((tmp_path / "sweep").glob("*.json"))
    assert [f.name for f in files] == ["lora-seed0.json", "lora-seed1.json", "v2-noproj-seed0.json",
                                       "v2-noproj-seed1.json"]
    first = results.RunResult.from_json(files[0])
    assert len(first.predictions["idx"]) == 32 and first.predictions["idx"] == sorted(first.predictions["idx"])
    stamps = {f: f.stat().st_mtime_ns for f in files}

    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(training, "run", no_training)
    capsys.readouterr()
    assert main(args) == 0
    assert "sweep: 0 of 4 runs to do" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    assert main(["results", "--sweep", str(out), "--markdown"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("| method | n | seeds |") and "| v2-noproj | 2 | [0, 1] |" in text
    assert main(["results", "--sweep", str(files[0])]) == 2  # a run's file is not a summary


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods="v1,v9"), "unknown method 'v9': choose from v1, v2, .*v1-lstm"),
    (dict(methods=""), "methods must be a non-empty"),
    (dict(seeds=0), "a count must be at least 1"),
    (dict(seeds="0,0"), "distinct"),
    (dict(seeds="a,b"), "seeds must be a count"),
    (dict(seeds="42"), "42 is read as a count of seeds .0 to 41.; for the one seed 42 write 42, .with a comma."),
    (dict(engine="threads"), "engine must be one of local, ray"),
    (dict(engine="ray", cpus_per_run=0), "a task needs CPUs > 0"),
    (dict(engine="ray", gpus_per_run=1.5), "a GPU share in .0, 1. or a whole number"),
    (dict(learning_rate=-1), "learning_rate=-1 is not allowed"),
])
def test_bad_sweeps_fail_before_training(kwargs, message, monkeypatch, tmp_path):
    monkeypatch.setattr(training, "run", lambda *a, **k: pytest.fail("trained"))
    args = dict(methods="v1,v2", seeds=2, profile="smoke", out_dir=tmp_path) | kwargs
    with pytest.raises(ValueError, match=message):
        sweeps.sweep(args.pop("methods"), args.pop("seeds"), args.pop("profile"), **args)


def test_a_file_with_other_settings_is_not_taken_as_done(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "run", lambda *a, **k: pytest.fail("trained"))
    committed = next(iter(results.load_results("q1_v2.json").values()), None)
    if committed is None:
        pytest.skip("no committed q1_v2.json")
    committed.to_json(tmp_path / "v2-seed42.json")  # full profile, 20 epochs: not what this sweep asks for
    with pytest.raises(ValueError, match="holds a v2 run with other settings"):
        sweeps.sweep("v2", [42], "smoke", out_dir=tmp_path)


def test_peft_config_is_the_answers_code():
    from peft import PrefixTuningConfig, PromptEncoderConfig

    v2 = ptuning.peft_config("v2")
    assert isinstance(v2, PrefixTuningConfig) and v2.prefix_projection is True and v2.num_virtual_tokens == 20
    assert isinstance(ptuning.peft_config("v1"), PromptEncoderConfig)
    assert ptuning.peft_config("v1", encoder_reparameterization_type="LSTM").encoder_reparameterization_type == "LSTM"


def test_a_run_written_before_a_setting_existed_still_counts_as_done(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "run", lambda *a, **k: pytest.fail("trained"))
    path = config.RESULTS_DIR / "sweep_cpu" / "v1-seed0.json"
    v1 = results.RunResult.from_json(path) if path.is_file() else None
    if v1 is None:
        pytest.skip("no committed sweep")
    assert "torch_compile" not in v1.config  # written before that setting existed
    v1.to_json(tmp_path / "v1-seed0.json")
    done = sweeps.sweep("v1", [0], "full", out_dir=tmp_path, num_train_epochs=10)
    assert done.runs["v1"][0].test == v1.test


@pytest.fixture
def local_ray():
    """A real local Ray instance of 2 CPUs, no dashboard, shut down afterwards."""
    from helpers import ray_engine

    ray = ray_engine.connect(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_sweep_runs_each_run_as_a_task_and_skips_them_when_run_again(local_ray, mrpc_dir, tmp_path,
                                                                         monkeypatch, capsys):
    out = tmp_path / "ray.json"
    args = ["sweep", "--methods", "v1,v2", "--seeds", "2", "--profile", "smoke", "--data", str(mrpc_dir),
            "--set", "num_train_epochs=1", "--engine", "ray", "--cpus-per-run", "1", "--out", str(out)]
    assert main(args) == 0
    assert "sweep: 4 of 4 runs to do (ray)" in capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert summary["config"]["engine"] == "ray" and summary["config"]["resources"] == {"num_cpus": 1.0,
                                                                                       "num_gpus": 0.0}
    files = sorted((tmp_path / "ray").glob("*.json"))
    assert [f.name for f in files] == ["v1-seed0.json", "v1-seed1.json", "v2-seed0.json", "v2-seed1.json"]
    assert [r["n"] for r in summary["table"]] == [2, 2]
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert main(args) == 0
    assert "sweep: 0 of 4 runs to do (ray)" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # nothing trained or written again


@pytest.mark.slow
def test_ctrl_c_cancels_the_ray_tasks_and_the_same_command_resumes_from_their_checkpoints(mrpc_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out, outputs = tmp_path / "cut.json", tmp_path / "outputs"
    cmd = [sys.executable, "-m", "helpers", "sweep", "--methods", "v2", "--seeds", "1", "--profile", "smoke",
           "--data", str(mrpc_dir), "--set", "num_train_epochs=30", "--engine", "ray", "--cpus-per-run", "1",
           "--out", str(out)]
    env = {**os.environ, "WORKBOOK_OUTPUT_DIR": str(outputs), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=config.PROJ_ROOT)
    run_dir = outputs / "sweeps" / "cut" / "v2-seed0"
    deadline = time.monotonic() + 300
    while not list(run_dir.glob("checkpoint-*/complete.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the sweep (Ray's workers are not in its process group)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "interrupted: cancelled v2 seed 0; their checkpoints are kept" in stderr
    assert "run the same sweep command again to go on" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "cut" / "v2-seed0.json").exists() and list(run_dir.glob("checkpoint-*/complete.json"))
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=config.PROJ_ROOT, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "resume: continuing from" in again.stdout + again.stderr
    assert results.RunResult.from_json(tmp_path / "cut" / "v2-seed0.json").config["resumed"] is True


def test_seeds_are_a_count_a_list_or_one_seed_with_a_comma():
    assert sweeps.parse_seeds("3") == [0, 1, 2] and sweeps.parse_seeds("0,42") == [0, 42]
    assert sweeps.parse_seeds("42,") == [42] and sweeps.parse_seeds(range(12)) == list(range(12))
