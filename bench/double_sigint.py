"""One Ctrl-C delivered twice, tried N times: does every try end with a complete checkpoint and no traceback?

    python bench/double_sigint.py [--tries 20] [--json FILE]

Each try starts ``timeout 300 python -m helpers q1 --method v2 --profile smoke`` in its own process group,
waits for the end of the second epoch's checkpoint, then sends SIGINT to the whole group, as a terminal does:
``timeout`` forwards it to python, which so gets two within milliseconds. A try passes when the run exits
130, prints no traceback, and leaves a complete checkpoint newer than the second epoch's.
Needs MRPC (MRPC_DIR) and the installed workbook; about 15 s a try on 2 cores.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers import checkpoints, config
from helpers.results import save_json


def one_try(folder: Path) -> dict:
    """Start a run, interrupt its process group after epoch 2's checkpoint, and report what it left."""
    run = folder / "run"
    cmd = ["timeout", "300", sys.executable, "-m", "helpers", "q1", "--method", "v2", "--profile", "smoke",
           "--set", "num_train_epochs=30", "--output-dir", str(run), "--out", str(folder / "r.json")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=config.PROJ_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 240
    while not (run / "checkpoint-8" / checkpoints.MARKER).exists() and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    newest, skipped = checkpoints.resumable(run)
    step = int(newest.name.split("-")[1]) if newest else None
    ok = proc.returncode == 130 and "Traceback" not in err and step is not None and step > 8 and not skipped
    return {"ok": ok, "returncode": proc.returncode, "traceback": "Traceback" in err, "newest_complete": step,
            "incomplete": [p.name for p, _ in skipped], "last_line": (err.strip().splitlines() or [""])[-1][:200]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    tries = []
    for i in range(args.tries):
        with tempfile.TemporaryDirectory() as tmp:
            r = one_try(Path(tmp))
        tries.append(r)
        print(f"try {i + 1}: {'ok' if r['ok'] else 'FAILED'}  exit {r['returncode']}, newest complete checkpoint "
              f"{r['newest_complete']}, traceback {r['traceback']}  | {r['last_line']}", flush=True)
    passed = sum(r["ok"] for r in tries)
    print(f"{passed} of {len(tries)} tries ended with a complete checkpoint, exit 130 and no traceback")
    if args.json:
        save_json({"tries": tries, "passed": passed}, args.json)
    sys.exit(0 if passed == len(tries) else 1)


if __name__ == "__main__":
    main()
