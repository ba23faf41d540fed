"""Provenance and run plumbing shared by every question: the environment and git commit a result
records, the precision a run trains in, and checks that an output folder can be written.

Nothing here imports a question's module: Q1 (``ptuning``), Q3 (``stories``) and the benchmarks
all record their runs through these functions.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import socket
import subprocess
import time
import warnings
from pathlib import Path

from . import config

# "auto": bf16 autocast on a GPU that has it, else fp16 on a GPU, and fp32 on a CPU: on the 2-core
# AMD EPYC (avx512_bf16) these notebooks were built on, bf16 autocast trained no faster than fp32
# under the Trainer (results/bench_cpu.json). "bf16" on a CPU is an opt-in. Weights stay fp32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The libraries a result names, by their distribution names (read without importing them).
LIBRARIES = ("torch", "transformers", "peft", "adapters", "datasets", "llama_cpp_python", "openai")


def check_precision(precision) -> None:
    """Raise ValueError unless ``precision`` is one of ``PRECISIONS``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def cpu_has_bf16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """True when the CPU has native bf16 arithmetic (avx512_bf16, or AMX tiles), read from the
    Linux cpuinfo flags; False where they cannot be read (then bf16 would be emulated, and slower)."""
    from .llama_build import cpu_flags

    return bool(cpu_flags(cpuinfo) & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str = "auto") -> str:
    """The precision a run will train in on this machine: "fp32", "bf16" or "fp16". Raises
    ValueError for a choice the device cannot do (fp16 on a CPU)."""
    import torch

    check_precision(precision)
    cuda = torch.cuda.is_available()
    if precision == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and not cuda:
        raise ValueError("precision='fp16' needs a CUDA GPU; on a CPU use 'bf16' or 'fp32'")
    if precision == "bf16" and not cuda and not cpu_has_bf16():
        warnings.warn("precision='bf16' on a CPU without bf16 instructions (avx512_bf16, AMX): "
                      "it is emulated and slower than fp32", stacklevel=2)
    return precision


def check_writable(path: str | os.PathLike) -> None:
    """Raise ValueError, naming the folder, when ``path`` cannot be created or written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"output folder {path} cannot be written ({e.strerror}); "
                         "pass a folder you can write to") from None


def git(*args: str) -> str | None:
    """The output of a git command in the repository, or None where git or the repository is missing."""
    try:
        return subprocess.run(["git", *args], cwd=config.PROJ_ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_rank_zero() -> bool:
    """True in a single process, and in the first of a ``torchrun`` job (``RANK`` 0): the one that writes."""
    return int(os.environ.get("RANK", "0")) == 0


def device_name() -> str:
    """The GPU's name, or ``cpu (N cores)``."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"


def environment(device: bool = True) -> dict:
    """Device and CPU model, library versions and git commit, recorded with every result (a timing means
    little without the CPU it ran on). Read when a run starts, so the commit recorded is the code that ran
    (``git_dirty``: tracked files had changes)."""
    from .llama_build import cpu_model

    env = {"device": device_name(), "cpu": cpu_model()} if device else {}
    env.update({name.replace("_python", ""): version(name.replace("_", "-")) for name in LIBRARIES})
    env.update(git_commit=git("rev-parse", "HEAD") or None,
               git_dirty=bool(git("status", "--porcelain", "--untracked-files=no")))
    return env


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, hint: str = "wait for it to finish, or pass another output_dir "
                                                         "(--output-dir)"):
    """Hold an exclusive lock on ``folder`` (its ``.lock`` file names the holder) while the block
    runs. A second holder fails at once with ValueError naming the process that has it, and ``hint``
    (what to do). The lock goes with the process, so a crash never leaves a stale one."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        raise ValueError(f"output folder {folder} is in use by {holder}; {hint}") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}, since {time.strftime('%H:%M:%S')}\n"
                  .encode(), 0)
        yield path
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
