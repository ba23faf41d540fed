"""Benchmarks: figures printed and written as JSON, never asserted by tests.

``python -m helpers bench [--quick] --json PATH``. Each comparison runs both sides in this one
process, alternating, and reports their ratio: these machines are shared and noisy.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import time

from . import config
from .results import save_json
from .timing import megabatch_steps, time_to_accuracy, timed_steps, trainer_vs_loop


def course_module():
    """The course notebook's set-up, reproduced in ``bench/course_setup.py``."""
    path = config.PROJ_ROOT / "bench" / "course_setup.py"
    spec = importlib.util.spec_from_file_location("course_setup", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_throughput(rounds: int, steps: int | None, eval_limit: int | None, fp32_side: bool = True) -> dict:
    """The workbook's set-up (``training.prepare``, its default precision) against the course's,
    method v2, same model and data, alternating ``rounds`` times ``steps`` optimizer steps each
    (``None``: one whole mega-batch of the workbook's length-grouped order, see
    ``megabatch_steps``); then validation accuracy. With ``fp32_side`` a third side, the workbook
    forced to fp32, shows how much of the gain is precision and how much padding and batching."""
    from . import methods, settings, training

    out = config.output_dir("bench")
    sides = {"workbook": training.prepare("v2", "quick", 0, output_dir=out / "workbook", eval_limit=eval_limit)}
    work = sides["workbook"]
    if fp32_side and work.cfg["precision_used"] != "fp32":
        sides["workbook_fp32"] = training.prepare("v2", "quick", 0, output_dir=out / "workbook_fp32",
                                                 eval_limit=eval_limit, precision="fp32")
    course_net = methods.get("v2").build(settings.resolve_config("v2", "quick"), work.choice)
    from .data import load_mrpc

    trainers = {name: p.trainer for name, p in sides.items()}
    trainers["course"] = course_module().course_trainer(course_net, work.tokenizer, load_mrpc(verbose=False),
                                                         out / "course", compute_metrics=training.compute_metrics,
                                                         eval_limit=eval_limit)
    mega = megabatch_steps(work.trainer)
    steps = steps or mega
    speeds = {name: [] for name in trainers}
    peaks = {name: 0.0 for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            sps, peak = timed_steps(trainer, steps)
            speeds[name].append(sps)
            peaks[name] = max(peaks[name], peak)
    total_steps = rounds * (steps + 1)  # each round: one warm-up step and the timed ones
    val = {name: trainer.evaluate()["eval_accuracy"] for name, trainer in trainers.items()}
    med = {k: statistics.median(v) for k, v in speeds.items()}
    res = {"train_samples_per_s": med, "train_throughput_ratio": med["workbook"] / med["course"],
           "train_samples_per_s_rounds": speeds, "train_peak_rss_mb": peaks["workbook"],
           "train_peak_rss_mb_course": peaks["course"], "val_accuracy_after_steps": val,
           "steps_each": total_steps, "train_precision": work.cfg["precision_used"],
           "train_window": {"steps": steps, "megabatch_steps": mega,
                            "whole_megabatches": steps % mega == 0},
           "batch": {"workbook": work.cfg["per_device_train_batch_size"], "course": 16}}
    if "workbook_fp32" in med:
        res["train_throughput_ratio_fp32"] = med["workbook_fp32"] / med["course"]
    return res


def gpu_figures(steps: int = 200) -> dict:
    """On a GPU: ``gpu_train_samples_per_s`` (the Trainer path, v2, full profile) and
    ``gpu_trainer_vs_loop`` (the plain loop's samples/s over the Trainer's). Empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return {}
    r = trainer_vs_loop("v2", steps)
    return {"gpu_train_samples_per_s": r["trainer_samples_per_s"], "gpu_trainer_vs_loop": r["trainer_vs_loop"],
            "gpu_loop_detail": r}


def generation(tokens: int, hf_tokens: int, rounds: int) -> dict:
    """``LocalLlama`` (llama-cpp-python, Q4_1 GGUF) against the same file through transformers
    (``gguf_file=``, dequantised to fp32): load seconds and tokens/s, alternating, greedy."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from . import stories

    gguf = stories.embedded_gguf()
    start = time.perf_counter()
    local = stories.LocalLlama()
    load_local = time.perf_counter() - start
    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    hf = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32)
    load_hf = time.perf_counter() - start
    messages = stories.build_messages(stories.EXAMPLE_SPEC, "persona")
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    speeds = {"llama_cpp": [], "transformers": []}
    for _ in range(rounds):
        gen = local.generate(messages, temperature=0.0, max_tokens=tokens)
        speeds["llama_cpp"].append(gen.tokens_per_s)
        start = time.perf_counter()
        with torch.no_grad():
            out = hf.generate(ids, max_new_tokens=hf_tokens, min_new_tokens=hf_tokens, do_sample=False)
        speeds["transformers"].append((out.shape[1] - ids.shape[1]) / (time.perf_counter() - start))
    med = {k: statistics.median(v) for k, v in speeds.items()}
    return {"gen_tokens_per_s": med["llama_cpp"], "gen_tokens_per_s_transformers": med["transformers"],
            "gen_ratio_vs_transformers": med["llama_cpp"] / med["transformers"],
            "gen_load_s": {"llama_cpp": load_local, "transformers": load_hf}, "gen_rounds": speeds}


def llama_build_figures(tokens: int = 256) -> dict:
    """The installed llama.cpp build (its flags, as ``make install`` recorded them) and its generation speed
    in a child process, as the self-check runs it (bench/llama_builds.py compares builds)."""

    from . import llama_build

    record = llama_build.installed_build() or {"flags": None, "note": "not installed by make install: flags unknown"}
    r = llama_build.check(tokens=tokens)
    return {"flags": record.get("flags"), "cpu": llama_build.cpu_model(), "tokens": r["tokens"],
            "tokens_per_s": round(r["tokens_per_s"], 1),
            "features": sorted(f for f, v in llama_build.system_features(r["system_info"]).items() if v)}


def notebook_seconds() -> dict:
    """Each notebook executed headless in the smoke profile, in a fresh kernel."""
    from . import notebooks

    out = config.output_dir("bench", "notebooks")
    before = os.environ.get("WORKBOOK_PROFILE")
    os.environ["WORKBOOK_PROFILE"] = "smoke"  # the kernels inherit it; put back afterwards
    try:
        return {p.name: round(notebooks.execute(p, out), 1) for p in notebooks.notebook_paths()}
    finally:
        if before is None:
            os.environ.pop("WORKBOOK_PROFILE", None)
        else:
            os.environ["WORKBOOK_PROFILE"] = before


def _machine() -> dict:
    import torch

    from .runinfo import environment

    env = environment()
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {**env, "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available()}


def run_all(quick: bool = False, json_path=None) -> dict:
    """Every benchmark; prints a table and returns (and writes) the figures."""
    t0 = time.perf_counter()
    res = {"quick": quick, "machine": _machine()}
    # Under group_by_length an epoch starts with the longest batches of a mega-batch: the full run
    # times one whole mega-batch per round; --quick times 3 steps, a lower bound for the workbook.
    res.update(train_throughput(rounds=2, steps=3 if quick else None, eval_limit=64 if quick else None,
                                fp32_side=not quick))
    if quick:
        res.update({"time_to_val_075_s": None, "time_to_val_075_note": "skipped in --quick"})
    else:
        res.update(time_to_accuracy())
    res.update(gpu_figures(steps=50 if quick else 200))
    res.update(generation(tokens=48 if quick else 200, hf_tokens=8 if quick else 32, rounds=2))
    res["llama_build"] = llama_build_figures(tokens=64 if quick else 256)
    res["notebook_seconds"] = {} if quick else notebook_seconds()
    res["bench_seconds"] = round(time.perf_counter() - t0, 1)
    _print(res)
    if json_path:
        save_json(res, json_path)
        print(f"wrote {json_path}")
    return res


def _print(r: dict) -> None:
    sps = r["train_samples_per_s"]
    lines = [
        ("training, v2: workbook samples/s", f"{sps['workbook']:.1f}"),
        ("training, v2: course set-up samples/s", f"{sps['course']:.1f}"),
        (f"training throughput ratio, workbook in {r['train_precision']} (target >= 2)",
         f"{r['train_throughput_ratio']:.2f}"),
        *([("training, v2: workbook forced to fp32 samples/s, ratio",
            f"{sps['workbook_fp32']:.1f}, {r['train_throughput_ratio_fp32']:.2f}")] if "workbook_fp32" in sps else []),
        ("peak RSS, workbook training (MB)", f"{r['train_peak_rss_mb']:.0f}"),
        ("timed steps a round (a mega-batch is)",
         f"{r['train_window']['steps']} ({r['train_window']['megabatch_steps']})"
         + ("" if r["train_window"]["whole_megabatches"] else ": the longest batches, a lower bound for the workbook")),
        (f"val accuracy after {r['steps_each']} steps ({' / '.join(r['val_accuracy_after_steps'])})",
         " / ".join(f"{v:.4f}" for v in r["val_accuracy_after_steps"].values())),
        ("time to val accuracy 0.75, v2 quick (s) (target <= 300)",
         "not reached" if r.get("time_to_val_075_s") is None
         else f"{r['time_to_val_075_s']:.0f} (epoch {r['time_to_val_075_epoch']}, "
              f"{r['time_to_val_075_train_s']:.0f} s without the evaluations)"),
        ("v2 quick profile, best val accuracy (target >= 0.75)", f"{r.get('quick_profile_val_acc')}"),
        *([("GPU: Trainer samples/s, loop / Trainer (target <= 1.5)",
            f"{r['gpu_train_samples_per_s']:.0f}, {r['gpu_trainer_vs_loop']:.2f}")]
          if "gpu_trainer_vs_loop" in r else []),
        ("generation, llama-cpp tokens/s (target >= 80)", f"{r['gen_tokens_per_s']:.1f}"),
        ("generation, transformers tokens/s", f"{r['gen_tokens_per_s_transformers']:.1f}"),
        ("generation ratio", f"{r['gen_ratio_vs_transformers']:.1f}"),
        ("generation, installed llama.cpp build in a child, tokens/s", f"{r['llama_build']['tokens_per_s']:.1f}"),
        ("load s (llama-cpp / transformers)",
         f"{r['gen_load_s']['llama_cpp']:.2f} / {r['gen_load_s']['transformers']:.1f}"),
    ]
    for name, secs in r["notebook_seconds"].items():
        lines.append((f"notebook {name}, smoke (s)", f"{secs:.0f}"))
    if r["notebook_seconds"]:
        lines.append(("notebooks together (target <= 600 s)", f"{sum(r['notebook_seconds'].values()):.0f}"))
    width = max(len(k) for k, _ in lines)
    print(f"\nBenchmarks on {r['machine']['cpu']} ({r['machine']['cores']} cores), torch {r['machine']['torch']}, "
          f"commit {r['machine']['git_commit']}")
    for k, v in lines:
        print(f"  {k:{width}s}  {v}")


def trials_table(path, majority: float | None = None):
    """One row per v2 recipe trial (the JSON Lines of the hand-made trials, made before ``python -m helpers search``
    replaced their script; kept as history): what was changed,
    the best validation accuracy and where, how many evaluations sat on the ``majority`` line, and
    when 0.75 was reached (None: not within the cap)."""
    import json

    import pandas as pd

    rows = []
    for line in open(path, encoding="utf-8"):
        t = json.loads(line)
        changed = {**t["over"], **({"dropout": t["dropout"]} if t.get("dropout") is not None else {})}
        best = max(t["evals"], key=lambda e: e[3])
        rows.append({"recipe": t["name"], "changed": changed, "seed": t["seed"], "evals": len(t["evals"]),
                     "epochs trained": t["evals"][-1][0], "best val acc": best[3], "at epoch": best[0],
                     **({"evals on the majority line": sum(abs(e[3] - majority) < 1e-4 for e in t["evals"])}
                        if majority is not None else {}),
                     "reached 0.75 at s": t["reached"][1] if t["reached"] else None})
    return pd.DataFrame(rows)
