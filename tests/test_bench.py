"""The benchmark's plumbing (not its figures): the course set-up pads as the course did, the
workbook's does not, and the memory sampler sees an allocation."""
import pytest

from helpers import bench, data, methods, settings, timing, training
from helpers.models import load_tokenizer, resolve_model


def test_course_setup_pads_per_map_batch_and_workbook_does_not(mrpc_dir, tmp_path):
    dsd = data.load_mrpc(mrpc_dir, verbose=False)
    choice = resolve_model("embedded", verbose=False)
    tok = load_tokenizer(choice)
    net = methods.get("v2").build(settings.resolve_config("v2", "smoke"), choice)
    course = bench.course_module().course_trainer(net, tok, dsd, tmp_path, compute_metrics=training.compute_metrics,
                                                   train_limit=300, eval_limit=40, seed=0)
    course_lengths = {len(ids) for ids in course.train_dataset["input_ids"]}
    assert len(course_lengths) == 1  # 300 rows < one map batch of 1000: all padded to the longest
    assert course.args.per_device_train_batch_size == 16 and course.args.learning_rate == 5e-5  # Trainer defaults
    ours = data.tokenize_mrpc(dsd, tok, 128, train_limit=300, eval_limit=40, seed=0)
    assert len({len(ids) for ids in ours["train"]["input_ids"]}) > 10  # unpadded: the collator pads per batch
    assert max(len(ids) for ids in ours["train"]["input_ids"]) <= course_lengths.pop()


def test_peak_rss_sees_an_allocation():
    import numpy as np

    with timing.PeakRSS() as mem:
        block = np.ones(64 * 2**20, dtype=np.uint8)  # 64 MB
        block[::4096] = 2
        import time
        time.sleep(0.2)
    assert mem.peak > 64 * 2**20


def test_step_timer_counts_every_timed_step(mrpc_dir, tmp_path):
    p = training.prepare("v2-noproj", "smoke", 0, data=mrpc_dir, output_dir=tmp_path)
    timer = timing.StepTimer()
    timing.train_steps(p.trainer, 3, [timer])
    assert timer.steps == 3 and timer.end > timer.start  # from the first step's start to the last one's end
    assert timer not in p.trainer.callback_handler.callbacks  # removed again
    assert timing.megabatch_steps(p.trainer) == 1  # 64 rows // (16 * 4), as get_length_grouped_indices
    samples_per_s, peak_mb = timing.timed_steps(p.trainer, 2)
    assert samples_per_s > 0 and peak_mb > 100


def test_trainer_against_a_plain_loop_on_the_same_batches(mrpc_dir, monkeypatch):
    monkeypatch.setenv("MRPC_DIR", str(mrpc_dir))
    r = timing.trainer_vs_loop("v2-noproj", steps=2, profile="smoke")
    assert r["steps"] == 2 and r["batch"] == 16 and r["device"] == "cpu"
    assert r["trainer_samples_per_s"] > 0 and r["loop_samples_per_s"] > 0
    assert r["trainer_vs_loop"] == pytest.approx(r["loop_samples_per_s"] / r["trainer_samples_per_s"], rel=0.01)
    assert bench.gpu_figures() == {}  # no CUDA here: nothing to report, nothing invented


def test_time_to_accuracy_stops_at_the_target_and_keeps_every_evaluation(mrpc_dir, tmp_path):
    # smoke: 64 rows at batch 16 = 4 steps an epoch; two evaluations an epoch = every 2 steps
    hit = timing.time_to_accuracy(0.0, profile="smoke", evals_per_epoch=2, data=mrpc_dir, output_dir=tmp_path / "a")
    assert hit["time_to_val_075_stopped"] == "target" and hit["time_to_val_075_epoch"] == 0.5
    assert len(hit["time_to_val_075_evals"]) == 1 and hit["time_to_val_075_s"] >= hit["time_to_val_075_train_s"] > 0
    miss = timing.time_to_accuracy(1.01, profile="smoke", seed=3, evals_per_epoch=2, data=mrpc_dir,
                                  output_dir=tmp_path / "b", learning_rate=1e-3)
    assert miss["time_to_val_075_s"] is None and miss["time_to_val_075_stopped"] == "end"
    assert [e[0] for e in miss["time_to_val_075_evals"]] == [0.5, 1.0, 1.5, 2.0]
    assert miss["smoke_profile_val_acc"] == max(e[3] for e in miss["time_to_val_075_evals"])
    cfg = miss["time_to_val_075_config"]
    assert (cfg["seed"], cfg["learning_rate"], cfg["overrides"]["learning_rate"]) == (3, 1e-3, 1e-3)
    assert not list((tmp_path / "b").glob("checkpoint-*"))  # no checkpoints inside a timing
    with pytest.raises(ValueError, match="evals_per_epoch"):
        timing.time_to_accuracy(evals_per_epoch=0)


def test_trials_table_reads_what_the_trial_script_writes(tmp_path):
    import json

    path = tmp_path / "trials.jsonl"
    lines = [dict(name="bs16", over={"per_device_train_batch_size": 16}, seed=0, K=4, reached=None,
                  evals=[[0.25, 20.0, 17.0, 0.6838], [0.5, 40.0, 34.0, 0.7132], [0.75, 60.0, 51.0, 0.6838]]),
             dict(name="pooler", over={"train_pooler": True}, seed=0, dropout=0.0, K=4,
                  reached=[0.5, 41.0, 35.0, 0.7525], evals=[[0.25, 20.0, 17.0, 0.7], [0.5, 41.0, 35.0, 0.7525]])]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    table = bench.trials_table(path, majority=0.6838).set_index("recipe")
    assert table.loc["bs16", "best val acc"] == 0.7132 and table.loc["bs16", "at epoch"] == 0.5
    on_majority = table["evals on the majority line"]
    assert on_majority["bs16"] == 2 and on_majority["pooler"] == 0
    assert pd_isna(table.loc["bs16", "reached 0.75 at s"]) and table.loc["pooler", "reached 0.75 at s"] == 41.0
    assert table.loc["pooler", "changed"] == {"train_pooler": True, "dropout": 0.0}


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


@pytest.mark.slow
def test_gpu_script_dry_run_on_the_cpu(mrpc_dir, tmp_path):
    """bench/gpu.sh with PROFILE=smoke: every step of the GPU script, on a few dozen rows, one seed."""
    import json
    import os
    import subprocess
    import sys

    from helpers import config

    env = {**os.environ, "PROFILE": "smoke", "SEEDS": "1", "EPOCHS": "1", "LONG_EPOCHS": "2", "JOBS_TRIED": "1 2",
           "MRPC_DIR": str(mrpc_dir),
           "PYTHON": sys.executable, "WORKBOOK_OUTPUT_DIR": str(tmp_path / "outputs"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "gpu"
    proc = subprocess.run(["bash", str(config.PROJ_ROOT / "bench" / "gpu.sh"), str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "jobs 2:" in proc.stdout and "best jobs:" in proc.stdout
    front = json.loads((out / "frontier_gpu.json").read_text())
    assert [row["method"] for row in front["table"]] == ["v1", "v2", "v2-noproj", "lora-5ep", "adapter-rf0.375-6ep",
                                                         "adapter-rf16-6ep", "full-5ep"]
    assert "v1 + v2 at 2 epochs:" in proc.stdout and "(target 60 s)" in proc.stdout
    assert (out / "bench_gpu.json").is_file() and (out / "v1_v2_20ep_gpu.json").is_file()
