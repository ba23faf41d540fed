"""The workbook's notebooks: list, check that they are stripped, strip, execute headless."""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path

from . import config


def notebook_paths() -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(config.NOTEBOOKS_DIR.glob("*.ipynb"))


def unstripped(path: str | os.PathLike) -> list[str]:
    """What keeps a notebook from being committed: cells with outputs or execution counts."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [f"{path}: cell {i} has {'outputs' if c.get('outputs') else 'an execution count'}"
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]


def strip(path: str | os.PathLike) -> bool:
    """Remove outputs, execution counts and widget state in place; True if the file changed."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    after = nbformat.writes(nb)
    if after != before:
        Path(path).write_text(after)
    return after != before


def execute(path: str | os.PathLike, out_dir: str | os.PathLike, timeout: int = 3600, progress: bool = False) -> float:
    """Run a notebook headless in the current environment, write the executed copy to
    ``out_dir`` and return the seconds it took. The working directory is the notebook's own."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("WORKBOOK_HEADLESS", "1")
    start = time.perf_counter()
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]

    def on_cell_start(cell, cell_index, **kw):  # nbclient's hook: which cell, and how long so far
        if progress and cell.cell_type == "code":
            first = next((line for line in cell.source.splitlines() if line.strip()), "")[:60]
            elapsed = time.perf_counter() - start
            print(f"  {path.name}: cell {code.index(cell_index) + 1}/{len(code)} at {elapsed:6.1f} s  {first}",
                  flush=True)

    try:
        with _progress_lines(path.name) if progress else contextlib.nullcontext():
            NotebookClient(nb, timeout=timeout, kernel_name="python3", on_cell_start=on_cell_start,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        seconds = time.perf_counter() - start
        out = Path(out_dir) / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
    return seconds


@contextlib.contextmanager
def _progress_lines(name: str, every: float = 2.0):
    """While the block runs, print the lines a kernel appends to ``$WORKBOOK_PROGRESS_LOG`` (training
    runs write one per epoch: ``callbacks.EpochLog``). The kernel inherits the variable when it starts."""
    from .callbacks import PROGRESS_LOG

    fd, log = tempfile.mkstemp(prefix="progress-", suffix=".log")
    os.close(fd)
    before = os.environ.get(PROGRESS_LOG)
    os.environ[PROGRESS_LOG] = log
    done = threading.Event()

    def tail():
        with open(log, encoding="utf-8") as f:
            while True:
                finished = done.wait(every)
                for line in f.readlines():
                    print(f"    {name}: {line.rstrip()}", flush=True)
                if finished:
                    return

    thread = threading.Thread(target=tail, daemon=True)
    thread.start()
    try:
        yield log
    finally:
        done.set()
        thread.join()
        if before is None:
            os.environ.pop(PROGRESS_LOG, None)
        else:
            os.environ[PROGRESS_LOG] = before
        os.unlink(log)


def run_all(out_dir: str | os.PathLike | None = None) -> dict[str, float]:
    """Execute every notebook; print a summary and return ``{notebook: seconds}``."""
    out_dir = Path(out_dir) if out_dir else config.output_dir("notebooks")
    times = {}
    for path in notebook_paths():
        print(f"running {path.name} ...", flush=True)
        times[path.name] = execute(path, out_dir, progress=True)
    print(f"\nExecuted notebooks are in {out_dir}; figures in {config.OUTPUT_DIR / 'figures'}")
    for name, seconds in times.items():
        print(f"  {name:40s} {seconds:7.1f} s")
    print(f"  {'total':40s} {sum(times.values()):7.1f} s")
    return times
