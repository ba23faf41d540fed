"""A portable llama-cpp-python, built once per set of flags, and a check that it runs here.

pip compiles llama-cpp-python from source with llama.cpp's default ``GGML_NATIVE=ON``
(``-march=native``), and caches the wheel under its version only. A wheel built on one CPU then dies
with SIGILL on another, and on Intel CPUs with AMX the native build takes ggml's AMX path, which
faults on OpenMP worker threads (the kernel grants the tile permission to the main thread only).

So the install builds the wheel itself, with fixed flags and never the AMX path, into a folder keyed
on the version, the flags, the Python tag and the platform (``wheel_dir``), with pip's own cache off
for that one package. A second install with a good wheel there reuses it; a wheel built with other
flags lives under another key and is never picked up. ``check`` then generates a few tokens in a
child process, so that a bad build gives one line that says what to run, not a dead interpreter.

Standard library only: ``python -m helpers.llama_build install`` runs before anything else is installed.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"  # pyproject.toml pins the same (tests/test_llama_build.py keeps the two equal)
# x86-64 with AVX2, FMA, F16C and BMI2 (x86-64-v3): Intel Haswell (2013) and later, AMD Zen and later.
# AVX-512 and AMX stay off: AMX faults on worker threads (see above), and an AVX-512 build dies on
# CPUs without it. LLAVA (multimodal) is not built: the workbook does not use it, and it costs minutes.
FLAGS = ("-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",
         "-DGGML_BMI2=ON", "-DGGML_AVX512=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF",
         "-DGGML_AMX_BF16=OFF", "-DLLAVA_BUILD=OFF")
# What llama_print_system_info() must not show for a build made with FLAGS.
FORBIDDEN_FEATURES = ("AMX_INT8", "AVX512")
MARKER = "llama-build.json"  # written into the virtual environment once the wheel is installed
CHECK_TIMEOUT_S = 120


def cmake_args(flags=FLAGS) -> str:
    """The CMAKE_ARGS string that builds with ``flags``."""
    return " ".join(flags)


def build_key(version: str = VERSION, flags=FLAGS, python_tag: str | None = None,
              platform: str | None = None) -> str:
    """A short hash of everything that makes two builds differ: version, flags, Python and platform."""
    python_tag = python_tag or f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = platform or sysconfig.get_platform()
    blob = json.dumps([PACKAGE, version, list(flags), python_tag, platform])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def wheel_root() -> Path:
    """Where built wheels are kept: ``WORKBOOK_WHEELS``, else ``$XDG_CACHE_HOME/peft-workbook/wheels``."""
    if os.environ.get("WORKBOOK_WHEELS"):
        return Path(os.environ["WORKBOOK_WHEELS"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "peft-workbook" / "wheels"


def wheel_dir(root: Path | None = None, key: str | None = None) -> Path:
    """The folder for the build keyed ``key`` (default: this Python's build with ``FLAGS``)."""
    return (root or wheel_root()) / f"{PACKAGE}-{VERSION}-{key or build_key()}"


def find_wheel(folder: Path, flags=FLAGS, version: str = VERSION) -> Path | None:
    """The wheel in ``folder`` if its recorded build (``build.json``) is ``version`` with ``flags``;
    None if the folder is missing, incomplete, or holds a build made otherwise."""
    try:
        record = json.loads((folder / "build.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("version") != version or record.get("flags") != list(flags):
        return None
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    return wheels[0] if len(wheels) == 1 else None


def build_wheel(python: str = sys.executable, root: Path | None = None, flags=FLAGS) -> Path:
    """The wheel for ``flags``: reused when built before, else compiled (minutes) with pip's cache
    off, so that no wheel built with other flags can stand in for it."""
    folder = wheel_dir(root, build_key(flags=flags))
    found = find_wheel(folder, flags)
    if found:
        print(f"llama-cpp-python {VERSION}: reusing {found} (built with the same flags)")
        return found
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    env = dict(os.environ, CMAKE_ARGS=cmake_args(flags), FORCE_CMAKE="1")
    print(f"llama-cpp-python {VERSION}: compiling with {cmake_args(flags)} (3 to 7 minutes on 2 cores)", flush=True)
    start = time.perf_counter()
    cmd = [python, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "--no-deps", "--no-binary", PACKAGE,
           f"{PACKAGE}=={VERSION}", "-w", str(staging)]
    try:
        subprocess.run(cmd, env=env, check=True)
        seconds = time.perf_counter() - start
        (staging / "build.json").write_text(json.dumps(
            {"version": VERSION, "flags": list(flags), "build_seconds": round(seconds, 1),
             "built_on": cpu_model(), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1))
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder from an earlier, killed build
        os.replace(staging, folder)  # whole or absent: a killed build leaves only a staging folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = find_wheel(folder, flags)
    if found is None:
        raise RuntimeError(f"pip built no single llama-cpp-python wheel into {folder}")
    print(f"llama-cpp-python {VERSION}: built in {seconds:.0f} s -> {found}")
    return found


def venv_marker(python: str = sys.executable) -> Path:
    """The file in ``python``'s environment that records which build is installed there."""
    prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return Path(prefix) / MARKER


def installed_build(python: str = sys.executable) -> dict | None:
    """The build record ``install`` wrote into ``python``'s environment (key, version, flags), or None."""
    try:
        return json.loads(venv_marker(python).read_text())
    except (OSError, ValueError):
        return None


def install(python: str = sys.executable, root: Path | None = None, flags=FLAGS) -> bool:
    """Install the portable wheel into ``python``'s environment, unless that build is there already.
    Returns True when it installed something."""
    marker = venv_marker(python)
    key = build_key(flags=flags)
    if (installed_build(python) or {}).get("key") == key:
        return False
    wheel = build_wheel(python, root, flags)
    # --force-reinstall: the same version built with other flags may be installed already.
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True)
    marker.write_text(json.dumps({"key": key, "version": VERSION, "flags": list(flags), "wheel": str(wheel)},
                                 indent=1))
    return True


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux), or the platform's processor string."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``), empty where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def system_features(info: str) -> dict[str, int]:
    """``llama_print_system_info()``'s ``NAME = 1`` pairs, e.g. ``{"AVX2": 1, "AMX_INT8": 1}``."""
    features = {}
    for part in info.replace("|", "\n").splitlines():
        name, sep, value = part.partition("=")
        if sep and value.strip().isdigit():
            features[name.split(":")[-1].strip()] = int(value.strip())  # "CPU : SSE3 = 1" -> SSE3
    return features


def forbidden(info: str, forbid=FORBIDDEN_FEATURES) -> list[str]:
    """The features in ``info`` that start with one of ``forbid`` (by default what a build with ``FLAGS``
    must not have: AMX, AVX-512)."""
    return [f for f, v in system_features(info).items() if v and any(f.startswith(x) for x in forbid)]


# Run in the child: load the model, generate, print one JSON line. Nothing here can kill the parent.
CHILD = r"""
import json, sys, time
import llama_cpp
from llama_cpp import Llama
info = llama_cpp.llama_print_system_info().decode()
llm = Llama(model_path=sys.argv[1], n_ctx=512, seed=0, verbose=False)
start = time.perf_counter()
out = llm.create_completion("Once upon a time, a little fox", max_tokens=int(sys.argv[2]), temperature=0.0)
seconds = time.perf_counter() - start
n = out["usage"]["completion_tokens"]
print(json.dumps({"system_info": info, "tokens": n, "seconds": seconds, "tokens_per_s": n / seconds,
                  "text": out["choices"][0]["text"]}))
"""


class CheckFailed(RuntimeError):
    """The generation check failed; the message is one line that says what to run."""


FIX = "make reinstall-llama   (rebuilds llama-cpp-python with portable flags: no -march=native, no AMX)"


def explain(returncode: int, stderr: str = "", what: str = "llama.cpp generation check", fix: str = FIX) -> str:
    """One line for a child that ended with ``returncode`` (negative: killed by that signal)."""
    if returncode < 0:
        sig = signal.Signals(-returncode)
        why = {signal.SIGILL: "an instruction this CPU cannot run: the build does not fit this CPU",
               signal.SIGSEGV: "a memory fault", signal.SIGBUS: "a bus error",
               signal.SIGKILL: "killed: out of memory, or by hand"}.get(sig, sig.name)
        return f"{what}: the child process died by {sig.name} ({why}) on {cpu_model()}. Fix: {fix}"
    last = (stderr.strip().splitlines() or ["no message"])[-1]
    return f"{what}: the child process exited with code {returncode} ({last}). Fix: {fix}"


def check(model_path: str | os.PathLike | None = None, tokens: int = 32, python: str = sys.executable,
          timeout: float = CHECK_TIMEOUT_S, child: str = CHILD, lib_path: str | os.PathLike | None = None,
          forbid=FORBIDDEN_FEATURES) -> dict:
    """Generate ``tokens`` tokens in a child process. Returns its figures (system info, tokens/s);
    raises CheckFailed with one line if the child dies, hangs, or runs a build with AMX or AVX-512.
    ``lib_path``: a folder of other llama.cpp libraries to load (``LLAMA_CPP_LIB_PATH``); ``forbid``: the
    features that fail the check."""
    if model_path is None:
        from .llm import embedded_gguf  # stdlib-only too

        model_path = embedded_gguf()
    try:
        env = dict(os.environ, **({"LLAMA_CPP_LIB_PATH": str(lib_path)} if lib_path else {}))
        proc = subprocess.run([python, "-c", child, str(model_path), str(tokens)], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"llama.cpp generation check: no answer within {timeout:.0f} s "
                          f"(is another job using every core?). Fix: {FIX}") from None
    if proc.returncode != 0:
        raise CheckFailed(explain(proc.returncode, proc.stderr))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = forbidden(result["system_info"], forbid)
    if bad:
        raise CheckFailed(f"llama.cpp generation check: the installed build uses {', '.join(bad)}, which the "
                          f"workbook's portable build leaves out. Fix: {FIX}")
    return result


@functools.cache
def ensure_works() -> str:
    """The generation check, once per process (a failure is not cached): one line on success,
    ``CheckFailed`` with the fix otherwise. ``LocalLlama`` calls it before it loads a model in-process."""
    r = check()
    return (f"llama.cpp check: {r['tokens']} tokens at {r['tokens_per_s']:.0f} tokens/s in a child process "
            f"({cpu_model()})")


def main(argv: list[str] | None = None) -> int:
    """``install``: build (or reuse) and install the wheel; ``check``: the generation check;
    ``key``: print the wheel folder for this build."""
    parser = argparse.ArgumentParser(prog="python -m helpers.llama_build", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["install", "check", "key"])
    parser.add_argument("--python", default=sys.executable, help="the environment to install into")
    parser.add_argument("--force", action="store_true", help="install: rebuild even if a wheel is kept")
    args = parser.parse_args(argv)
    if args.action == "key":
        print(wheel_dir())
        return 0
    if args.action == "install":
        if args.force:
            shutil.rmtree(wheel_dir(), ignore_errors=True)
            venv_marker(args.python).unlink(missing_ok=True)
        install(args.python)
        return 0
    try:
        r = check(python=args.python)
    except CheckFailed as e:
        print(e, file=sys.stderr)
        return 1
    print(f"llama.cpp generation check: {r['tokens']} tokens at {r['tokens_per_s']:.1f} tokens/s on {cpu_model()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
