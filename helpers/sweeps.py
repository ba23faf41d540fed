"""Sweeps: several methods (or named variants) over several seeds, resumable, as one ``Sweep``.

Each run's ``RunResult`` is written as soon as it finishes; a run already written with the same settings is
read, not retrained, so the same command resumes an interrupted sweep. ``jobs`` > 1 runs that many at once as
separate processes (``python -m helpers q1``), for a GPU.
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import config as wconfig
from .methods import METHODS
from .results import RunResult, Sweep
from .runinfo import check_writable, folder_lock
from .settings import RunSettings, resolve_config

# Named variants a sweep can run beside the methods: (method, overrides); a variant's own settings win
# over the sweep's --set. v1's recipe search, and the frontier's members that differ from their method's
# defaults: Q2's two adapter sizes and the epochs each family needs.
VARIANTS: dict[str, tuple[str, dict]] = {
    "v1-lstm": ("v1", dict(encoder_reparameterization_type="LSTM")),
    "v1-50tok": ("v1", dict(num_virtual_tokens=50)),
    "lora-5ep": ("lora", dict(num_train_epochs=5)),
    "adapter-rf0.375-6ep": ("adapter", dict(reduction_factor=0.375, num_train_epochs=6)),  # hidden 8/3 of input
    # the library's default size; at the method's 1e-4 it sat on the majority class for 3 epochs
    # (results/q2_adapter_rf16.json), so it gets the rate small adapters are usually trained at
    "adapter-rf16-6ep": ("adapter", dict(reduction_factor=16, learning_rate=1e-3, num_train_epochs=6)),
    "full-5ep": ("full", dict(num_train_epochs=5)),
}
# The parameter-efficiency frontier: every family with its recipe, run as ``--methods frontier --profile full
# --set num_train_epochs=10``. The budget rule: the epochs a family needs to converge on validation (where
# its validation accuracy peaked in the reference runs of shared/BASELINES.md, rounded up: LoRA 4 -> 5,
# adapters 6; the prompt methods 10, as in the v1/v2 sweep), the epoch kept by validation accuracy; full
# fine-tuning 5 epochs at its own learning rate (5e-5).
GROUPS: dict[str, tuple[str, ...]] = {
    "frontier": ("v1", "v2", "v2-noproj", "lora-5ep", "adapter-rf0.375-6ep", "adapter-rf16-6ep", "full-5ep"),
}
# Concurrent runs on one GPU under jobs="auto" (a 22M-parameter model leaves a large GPU mostly
# idle). Not yet measured: bench/gpu.sh times jobs 1, 2, 4 and 8 and prints the best.
GPU_JOBS_AUTO = 4


def parse_seeds(seeds) -> list[int]:
    """Seeds from ``5`` (0..4), ``"0,1,7"``, or a list of whole numbers; ValueError otherwise."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds: a count must be at least 1, got {seeds}")
        return list(range(seeds))
    if isinstance(seeds, str) and seeds.strip().isdigit():
        return parse_seeds(int(seeds))
    try:
        out = [int(s) for s in (wconfig.split_list(seeds, "seeds") if isinstance(seeds, str) else seeds)]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be a count (5) or a list of whole numbers (0,1,2), got {seeds!r}") from None
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"seeds must be distinct whole numbers >= 0, got {seeds!r}")
    return out


def parse_jobs(jobs) -> int:
    """``auto`` (one at a time on a CPU, ``GPU_JOBS_AUTO`` with CUDA) or a whole number >= 1."""
    if jobs in ("auto", None):
        import torch

        return GPU_JOBS_AUTO if torch.cuda.is_available() else 1
    try:
        n = int(jobs)
    except (TypeError, ValueError):
        n = 0
    if isinstance(jobs, bool) or n < 1 or str(n) != str(jobs).strip():
        raise ValueError(f"jobs must be 'auto' or a whole number >= 1, got {jobs!r}")
    return n


def sweep_labels(names) -> dict[str, tuple[str, dict]]:
    """``{label: (method, overrides)}`` for method names, ``VARIANTS`` names and ``GROUPS`` (expanded);
    ValueError naming what is allowed otherwise."""
    labels = {}
    asked = wconfig.split_list(names, "methods")
    for label in [name for group in asked for name in GROUPS.get(group, (group,))]:
        if label in METHODS:
            labels[label] = (label, {})
        elif label in VARIANTS:
            labels[label] = VARIANTS[label]
        else:
            raise ValueError(f"unknown method {label!r}: choose from {', '.join([*METHODS, *VARIANTS, *GROUPS])}")
    return labels


def _matches(result: RunResult, method: str, profile: str, seed: int, overrides: dict) -> bool:
    """Whether a finished run is the one asked for. Both sides are read as ``RunSettings``, so a
    file written before a setting existed counts that setting at its default."""
    want = RunSettings.from_config(resolve_config(method, profile, **overrides)).to_dict()
    try:
        got = RunSettings.from_config(result.config).to_dict()
    except (TypeError, ValueError):  # not a result of this workbook's settings
        return False
    same = all(got[k] == want[k] for k in want if k != "precision")  # "auto" resolves per machine
    return result.method == method and result.config.get("seed") == seed and same


def sweep(names, seeds=3, profile="auto", jobs="auto", out_dir=None, *, model: str = "auto", data=None,
          out: str | os.PathLike | None = None, **overrides) -> Sweep:
    """Run every method or ``VARIANTS`` label in ``names`` (a list, or comma-separated) with every seed
    and return a ``Sweep``.

    Each run's ``RunResult`` is written to ``out_dir/<label>-seed<seed>.json`` as soon as it
    finishes; a run whose file is already there with the same settings is read, not retrained, so
    an interrupted sweep resumes. ``jobs`` > 1 runs that many at once as separate processes
    (``python -m helpers q1``), for a GPU. Everything is checked before anything trains."""
    labels = sweep_labels(names)
    seed_list = parse_seeds(seeds)
    n_jobs = parse_jobs(jobs)
    prof = wconfig.get_profile(profile).name
    for method, extra in labels.values():
        resolve_config(method, prof, **{**overrides, **extra})  # a bad override fails here, before training
    if out_dir is None:  # beside the summary (results/sweep_full.json -> results/sweep_full/), else outputs/
        out_dir = Path(out).with_suffix("") if out is not None else wconfig.OUTPUT_DIR / "sweeps" / prof
    out_dir = Path(out_dir)
    check_writable(out_dir)
    if out is not None:
        check_writable(Path(out).resolve().parent)
    with folder_lock(out_dir, hint="wait for the other sweep to finish, or pass another --out (out=)"):
        return _sweep_locked(labels, seed_list, n_jobs, prof, out_dir, out, model, data, overrides)


def _todo(labels, seed_list, prof, out_dir: Path, overrides) -> tuple[list, dict]:
    """The runs still to do, and every run's file by label. A file there with other settings is a ValueError."""
    todo, files = [], {label: [] for label in labels}
    for label, (method, extra) in labels.items():
        for seed in seed_list:
            path = out_dir / f"{label}-seed{seed}.json"
            files[label].append(str(path))
            settings = {**overrides, **extra}
            if path.is_file():
                done = RunResult.from_json(path)
                if _matches(done, method, prof, seed, settings):
                    continue
                raise ValueError(f"{path} holds a {done.method} run with other settings than this sweep asks for; "
                                 "pass another out_dir (--out) or delete that file")
            todo.append((label, method, seed, settings, path))
    return todo, files


def _run_one(item, prof, models: Path, model, data, in_process: bool) -> None:
    """Train one run of the sweep and write its file: in this process, or as ``python -m helpers q1``."""
    from .training import run

    label, method, seed, settings, path = item
    if in_process:
        result = run(method, prof, seed, model=model, data=data, output_dir=models / f"{label}-seed{seed}",
                     resume=True, **settings)  # an interrupted run goes on from its checkpoint
        result.to_json(path)
    else:
        cmd = [sys.executable, "-m", "helpers", "q1", "--method", method, "--profile", prof, "--seed", str(seed),
               "--model", model, "--output-dir", str(models / f"{label}-seed{seed}"), "--out", str(path), "--resume"]
        cmd += ["--data", str(data)] if data else []
        for key, value in settings.items():
            cmd += ["--set", f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"]
        log = models / f"{label}-seed{seed}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=wconfig.PROJ_ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"sweep run {label} seed {seed} failed (exit {proc.returncode}); see {log}")
    print(f"sweep: {label} seed {seed} done -> {path}", flush=True)


def _sweep_locked(labels, seed_list, n_jobs, prof, out_dir, out, model, data, overrides) -> Sweep:
    todo, files = _todo(labels, seed_list, prof, out_dir, overrides)
    print(f"sweep: {len(todo)} of {len(labels) * len(seed_list)} runs to do ({n_jobs} at a time), in {out_dir}",
          flush=True)
    models = wconfig.OUTPUT_DIR / "sweeps" / out_dir.name  # trained weights stay out of results/
    if n_jobs == 1:
        for item in todo:
            _run_one(item, prof, models, model, data, in_process=True)
    else:
        with ThreadPoolExecutor(n_jobs) as pool:
            list(pool.map(lambda item: _run_one(item, prof, models, model, data, in_process=False), todo))
    runs = {label: [RunResult.from_json(f) for f in fs] for label, fs in files.items()}
    result = Sweep(runs, {"methods": list(labels), "seeds": seed_list, "profile": prof, "jobs": n_jobs,
                          "overrides": overrides, "variants": {k: VARIANTS[k] for k in labels if k in VARIANTS}},
                   files)
    if out is not None:
        result.to_json(out)
    return result
