"""The command line, in-process, and data-parallel training under torchrun (2 CPU processes), which also
checks that `python -m helpers q1 --out` writes its result."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import config


def _env(mrpc_dir, tmp_path):
    return {**os.environ, "MRPC_DIR": str(mrpc_dir), "HF_HUB_OFFLINE": "1",
            "WORKBOOK_OUTPUT_DIR": str(tmp_path / "outputs"), "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("args, message", [
    (["--method", "v9"], "invalid choice: 'v9'"),
    (["--method", "v2", "--set", "colour=blue"], "does not take colour"),
    (["--method", "v2", "--profile", "giant"], "unknown profile 'giant'"),
])
def test_q1_command_rejects_bad_input(args, message, capsys):
    from helpers.__main__ import main

    try:
        code = main(["q1", *args])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_cpu_processes(mrpc_dir, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun is installed with torch"
    out = tmp_path / "ddp.json"
    proc = subprocess.run([torchrun, "--nproc_per_node=2", "--master_port=29517", "-m", "helpers", "q1",
                           "--method", "v2-noproj", "--profile", "smoke", "--set", "num_train_epochs=1",
                           "--out", str(out)], capture_output=True, text=True, env=_env(mrpc_dir, tmp_path),
                          cwd=config.PROJ_ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    # 64 rows over 2 processes of 16 each: 2 optimizer steps per epoch, not 4
    assert result["config"]["num_training_steps"] == 2
    assert proc.stdout.count("test accuracy") == 1  # rank 0 alone reports and writes


def test_results_command_tables_the_committed_runs(capsys):
    from helpers.__main__ import main

    names = sorted(p.name for p in config.RESULTS_DIR.glob("q1_*.json"))
    if not names:
        pytest.skip("no committed results")
    assert main(["results", "--markdown"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines[0].startswith("| file | method |") and lines[1].startswith("| --- |")
    assert [line.split(" | ")[0].lstrip("| ") for line in lines[2:]] == names  # one row per file, in order
    assert main(["results", "--pattern", "nothing_*.json"]) == 2
    assert "no file in" in capsys.readouterr().err
