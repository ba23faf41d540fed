"""Runs as Ray tasks: on a local Ray instance, or on a cluster joined by address (``ray start --head`` on one
machine, ``ray start --address=HEAD:6379`` on the others). Sweeps and recipe searches both go through ``map_tasks``.

Each task declares what it needs: CPUs, and a share of a GPU where there is one (0.25: four runs on a GPU), so Ray
places them. Results come back to the caller, which writes them (a worker on another machine needs no shared disk
for them). Ctrl-C cancels the tasks: a training task stops after its step with a complete checkpoint, so the same
command resumes. Whole-model data parallelism for one run stays ``torchrun``.
"""
from __future__ import annotations

import os
import time

# Settings a task on another process or machine needs as the caller has them.
PASSED_ENV = ("MRPC_DIR", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "TINYBERT_DIR",
              "WORKBOOK_OUTPUT_DIR", "WORKBOOK_ROOT", "WORKBOOK_HEADLESS")
CANCEL_WAIT_S = 120  # after Ctrl-C, how long the cancelled runs get to write their checkpoint


class Cancelled(KeyboardInterrupt):
    """Ctrl-C reached the tasks: the cancelled ones are named; finished results were already handed back."""


def connect(address: str | None = None, num_cpus: int | None = None):
    """Ray, initialised: joined to the cluster at ``address`` (or ``RAY_ADDRESS``), or else a local instance
    with ``num_cpus`` (default: this machine's cores) and no dashboard, which ends with this process."""
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    kw = dict(include_dashboard=False, logging_level="warning",
              runtime_env={"env_vars": {k: os.environ[k] for k in PASSED_ENV if k in os.environ}})
    try:
        if address:
            ray.init(address=address, **kw)
        else:  # a small object store: results are a few hundred kB of JSON each
            ray.init(num_cpus=num_cpus, object_store_memory=200 * 1024**2, **kw)
    except ConnectionError as e:
        raise ConnectionError(f"could not join the Ray cluster at {address}: {e}. Start it with `ray start --head` "
                              "there (and `ray start --address=...` on the other machines), or leave out --address "
                              "and RAY_ADDRESS for a local instance") from None
    return ray


def per_task(cpus: float | None = None, gpus: float | None = None) -> dict:
    """What one task asks Ray for: ``num_cpus`` (default 1 with a GPU share, else every core of this machine:
    one run a machine, using all its cores) and ``num_gpus`` (default 0; 0.25 packs four runs on a GPU).
    ValueError for a negative number, or a GPU share over 1 that is not whole."""
    gpus = 0.0 if gpus is None else float(gpus)
    cpus = (1.0 if gpus else float(os.cpu_count() or 1)) if cpus is None else float(cpus)
    if cpus <= 0 or gpus < 0 or (gpus > 1 and gpus != int(gpus)):
        raise ValueError(f"a task needs CPUs > 0 and a GPU share in [0, 1] or a whole number of GPUs; "
                         f"got cpus={cpus}, gpus={gpus}")
    return {"num_cpus": cpus, "num_gpus": gpus}


def use_task_cpus() -> int:
    """In a task: torch uses as many threads as the CPUs the task was given (a worker is reused by tasks)."""
    import ray
    import torch

    n = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    torch.set_num_threads(n)
    return n


def map_tasks(fn, items: list, on_done, *, resources: dict, kwargs: dict | None = None,
              describe=str) -> list[tuple[object, str]]:
    """Run ``fn(item, **kwargs)`` (a module-level function) for every item as a Ray task with ``resources``;
    ``on_done(item, value)`` is called in this process as each one finishes (in the order they finish). Returns the
    failures as (item, message); the other tasks go on. Ctrl-C cancels the tasks still running, waits up to
    ``CANCEL_WAIT_S`` for them to write their checkpoints, and raises ``Cancelled`` naming them."""
    ray = connect()
    remote = ray.remote(max_retries=0, **resources)(fn)
    pending = {remote.remote(item, **(kwargs or {})): item for item in items}
    failures = []
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                item = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayError as e:
                    failures.append((item, _cause(e)))
                    print(f"ray: {describe(item)} failed: {_cause(e)}", flush=True)
                    continue
                on_done(item, value)
    except KeyboardInterrupt:
        names = [describe(item) for item in pending.values()]
        for ref in pending:
            ray.cancel(ref)  # a KeyboardInterrupt in the task: training stops after its step with a checkpoint
        deadline = time.monotonic() + CANCEL_WAIT_S
        while pending and time.monotonic() < deadline:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=1)
            for ref in done:
                pending.pop(ref)
        raise Cancelled(f"interrupted: cancelled {', '.join(names) or 'nothing'}; their checkpoints are kept") from None
    return failures


def _cause(error) -> str:
    """The task's own exception, one line, from Ray's wrapper."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"
