"""Generation speed of llama.cpp builds made with different flags, each in a child process.

    python bench/llama_builds.py WHEEL [WHEEL ...] [--tokens 128] [--rounds 5] [--json FILE]

Each WHEEL is a llama-cpp-python wheel (its ``build.json`` beside it names the flags); its libraries are
unpacked into a temporary folder and loaded through ``LLAMA_CPP_LIB_PATH``, so the same Python package runs
every build on the same prompt (greedy). Prints the median tokens/s per build with the CPU model. Run it on
an idle machine: a second job on 2 cores changes the figures by orders of magnitude.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from helpers import llama_build
from helpers.results import save_json


def measure(wheel: Path, tokens: int, rounds: int) -> dict:
    """Median tokens/s of ``rounds`` child processes, each generating ``tokens`` tokens with ``wheel``'s libraries."""
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp, [n for n in z.namelist() if n.startswith("llama_cpp/lib/")])
        lib = Path(tmp) / "llama_cpp" / "lib"
        runs = [llama_build.check(tokens=tokens, lib_path=lib, forbid=("AMX",)) for _ in range(rounds)]
    record = wheel.parent / "build.json"
    flags = json.loads(record.read_text())["flags"] if record.is_file() else None
    features = llama_build.system_features(runs[0]["system_info"])
    return {"wheel": wheel.name, "flags": flags, "features": sorted(f for f, v in features.items() if v),
            "tokens": runs[0]["tokens"], "tokens_per_s": [round(r["tokens_per_s"], 1) for r in runs],
            "median_tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in runs), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheels", nargs="+", type=Path)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    out = {"cpu": llama_build.cpu_model(), "cpu_flags": sorted(llama_build.cpu_flags() & set(
        ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi", "amx_int8"))),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "builds": []}
    for wheel in args.wheels:
        r = measure(wheel, args.tokens, args.rounds)
        out["builds"].append(r)
        print(f"{r['wheel']} {' '.join(r['flags'] or [])}\n  {r['median_tokens_per_s']} tokens/s (median of "
              f"{args.rounds}: {r['tokens_per_s']}) on {out['cpu']}", flush=True)
    if args.json:
        save_json(out, args.json)
    sys.exit(0)


if __name__ == "__main__":
    main()
