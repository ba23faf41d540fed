"""Sweeps: several methods (or named variants) over several seeds, resumable, as one ``Sweep``.

Each run's ``RunResult`` is written as soon as it finishes; a run already written with the same settings is
read, not retrained, so the same command resumes an interrupted sweep. The engine is ``local`` (one run after
another in this process, the default on a laptop) or ``ray`` (each run a Ray task with its CPUs or GPU share
declared, on a local Ray instance or a cluster: ``helpers.ray_engine``).
"""
from __future__ import annotations

import os
from pathlib import Path

from . import config as wconfig
from .methods import METHODS
from .results import RunResult, Sweep, save_json
from .runinfo import check_writable, folder_lock
from .settings import RunSettings, resolve_config

# Named variants a sweep can run beside the methods: (method, overrides); a variant's own settings win
# over the sweep's --set. v1's recipe search, and the frontier's members that differ from their method's
# defaults: Q2's two adapter sizes and the epochs each family needs.
VARIANTS: dict[str, tuple[str, dict]] = {
    "v1-lstm": ("v1", dict(encoder_reparameterization_type="LSTM")),
    "v1-50tok": ("v1", dict(num_virtual_tokens=50)),
    "lora-5ep": ("lora", dict(num_train_epochs=5)),
    # hidden 8/3 of the input, at 1e-4 (it collapsed at 1e-3 in a plain PyTorch loop)
    "adapter-rf0.375-6ep": ("adapter", dict(reduction_factor=0.375, learning_rate=1e-4, num_train_epochs=6)),
    # the library's default size at the method's default rate, 1e-3 (at 1e-4 it sat on the majority class for a
    # quick run, results/q2_adapter_rf16.json)
    "adapter-rf16-6ep": ("adapter", dict(reduction_factor=16, learning_rate=1e-3, num_train_epochs=6)),
    "full-5ep": ("full", dict(num_train_epochs=5)),
}
# The parameter-efficiency frontier: every family with its recipe, run as ``--methods frontier --profile full
# --set num_train_epochs=10``. The budget rule: the epochs a family needs to converge on validation, the epoch
# kept by validation accuracy. LoRA 5 and the adapters 6: where their validation accuracy peaked (epoch 4 and
# 6 of 10) in one-seed reference runs of a plain PyTorch loop on this model and data, rounded up; the prompt
# methods 10, as in the v1/v2 sweep; full fine-tuning 5 at its own learning rate (5e-5).
GROUPS: dict[str, tuple[str, ...]] = {
    "frontier": ("v1", "v2", "v2-noproj", "lora-5ep", "adapter-rf0.375-6ep", "adapter-rf16-6ep", "full-5ep"),
}
ENGINES = ("local", "ray")


MAX_SEED_COUNT = 10  # a bare number above it is more likely a seed than a count


def parse_seeds(seeds) -> list[int]:
    """Seeds from ``5`` (0..4), ``"0,1,7"``, ``"42,"`` (the one seed 42), or a list of whole numbers; ValueError
    otherwise. A bare number above ``MAX_SEED_COUNT`` is refused: ``--seeds 42`` meant for the seed 42 would
    otherwise train 42 seeds."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds: a count must be at least 1, got {seeds}")
        if seeds > MAX_SEED_COUNT:
            raise ValueError(f"seeds: {seeds} is read as a count of seeds (0 to {seeds - 1}); for the one seed "
                             f"{seeds} write {seeds}, (with a comma); for more than {MAX_SEED_COUNT} seeds, list them")
        return list(range(seeds))
    if isinstance(seeds, str) and seeds.strip().isdigit():
        return parse_seeds(int(seeds))
    if isinstance(seeds, str) and seeds.strip().endswith(","):  # "42,": a list of one
        seeds = seeds.strip()[:-1]
    try:
        out = [int(s) for s in (wconfig.split_list(seeds, "seeds") if isinstance(seeds, str) else seeds)]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be a count (5) or a list of whole numbers (0,1,2), got {seeds!r}") from None
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"seeds must be distinct whole numbers >= 0, got {seeds!r}")
    return out


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


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


def sweep(names, seeds=3, profile="auto", out_dir=None, *, model: str = "auto", data=None,
          out: str | os.PathLike | None = None, collect: bool = False, engine: str = "local",
          address: str | None = None, cpus_per_run: float | None = None, gpus_per_run: float | None = None,
          **overrides) -> Sweep:
    """Run every method or ``VARIANTS`` label in ``names`` (a list, or comma-separated) with every seed
    and return a ``Sweep``.

    Each run's ``RunResult`` is written to ``out_dir/<label>-seed<seed>.json`` as soon as it
    finishes; a run whose file is already there with the same settings is read, not retrained, so
    an interrupted sweep resumes. ``engine="ray"`` runs them as Ray tasks, each asking for ``cpus_per_run``
    CPUs and ``gpus_per_run`` of a GPU (``ray_engine.per_task``), on the cluster at ``address`` (or
    ``RAY_ADDRESS``) or a local instance. Everything is checked before anything trains. ``collect=True``
    trains nothing: the summary holds the runs finished so far, and its config lists the ``missing`` ones."""
    labels = sweep_labels(names)
    seed_list = parse_seeds(seeds)
    check_engine(engine)
    resources = None
    if engine == "ray":
        from .ray_engine import per_task

        resources = per_task(cpus_per_run, gpus_per_run)
    prof = wconfig.get_profile(profile).name
    for method, extra in labels.values():
        resolve_config(method, prof, **{**overrides, **extra})  # a bad override fails here, before training
    if out_dir is None:  # beside the summary (results/sweep_full.json -> results/sweep_full/), else outputs/
        out_dir = Path(out).with_suffix("") if out is not None else wconfig.OUTPUT_DIR / "sweeps" / prof
    out_dir = Path(out_dir)
    check_writable(out_dir)
    if out is not None:
        check_writable(Path(out).resolve().parent)
    if collect:  # trains nothing, so it takes no lock: it can report on a sweep still running
        return _sweep_locked(labels, seed_list, prof, out_dir, out, model, data, overrides, collect, address, resources)
    with folder_lock(out_dir, hint="wait for the other sweep to finish, or pass another --out (out=)"):
        return _sweep_locked(labels, seed_list, prof, out_dir, out, model, data, overrides, collect, address, resources)


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


def _train(item, prof, models: Path, model, data) -> str:
    """Train one run of a sweep (resuming from its checkpoint) and return its ``RunResult`` as JSON: in this
    process, or in a Ray task (threads as the task's CPUs)."""
    from .training import run

    label, method, seed, settings, path = item
    result = run(method, prof, seed, model=model, data=data, output_dir=models / f"{label}-seed{seed}",
                 resume=True, **settings)  # an interrupted run goes on from its checkpoint
    return result.to_json()


def _ray_train(item, prof, models, model, data) -> str:
    from .ray_engine import use_task_cpus

    use_task_cpus()
    return _train(item, prof, models, model, data)


def _sweep_locked(labels, seed_list, prof, out_dir, out, model, data, overrides, collect, address,
                  resources) -> Sweep:
    todo, files = _todo(labels, seed_list, prof, out_dir, overrides)
    engine = "ray" if resources else "local"
    print(f"sweep: {len(todo)} of {len(labels) * len(seed_list)} runs to do ({engine}), in {out_dir}", flush=True)
    models = wconfig.OUTPUT_DIR / "sweeps" / out_dir.name  # trained weights stay out of results/
    missing = [f"{label}-seed{seed}" for label, _, seed, _, _ in todo] if collect else []

    def write(item, text):
        save_json(text, item[4])  # the one writer, in this process; text is already a RunResult's JSON
        print(f"sweep: {item[0]} seed {item[2]} done -> {item[4]}", flush=True)

    if collect:
        print(f"sweep: collecting only; not run yet: {', '.join(missing) or 'none'}", flush=True)
        files = {label: [f for f in fs if Path(f).is_file()] for label, fs in files.items()}
        files = {label: fs for label, fs in files.items() if fs}
    elif engine == "local":
        for item in todo:
            write(item, _train(item, prof, models, model, data))
    elif todo:
        from .ray_engine import connect, map_tasks

        connect(address)
        failed = map_tasks(_ray_train, todo, write, resources=resources, describe=lambda i: f"{i[0]} seed {i[2]}",
                           kwargs=dict(prof=prof, models=models, model=model, data=data))
        if failed:
            raise RuntimeError(f"{len(failed)} run(s) failed: " + "; ".join(
                f"{item[0]} seed {item[2]}: {why}" for item, why in failed) + ". The finished runs are saved")
    runs = {label: [RunResult.from_json(f) for f in fs] for label, fs in files.items()}
    result = Sweep(runs, {"methods": list(labels), "seeds": seed_list, "profile": prof, "engine": engine,
                          **({"resources": resources} if resources else {}),
                          "overrides": overrides, "variants": {k: VARIANTS[k] for k in labels if k in VARIANTS},
                          **({"missing": missing} if collect else {})}, files)
    if out is not None:
        result.to_json(out)
    return result
