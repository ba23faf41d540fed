"""Benchmarks: figures printed and written as JSON, never asserted by tests.

``python -m helpers bench [--quick] --json PATH``. Each comparison runs both sides in this one
process, alternating, and reports their ratio: these machines are shared and noisy.
"""
from __future__ import annotations

import importlib.util
import math
import os
import platform
import statistics
import threading
import time

from . import config
from .results import save_json


class _PeakRSS:
    """The highest resident memory of this process while the block runs (sampled every 50 ms)."""

    def __enter__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _step_timer():
    """A TrainerCallback that times optimizer steps, from the start of the first to the end of the last."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.start = self.end = None
            self.steps = 0

        def on_step_begin(self, args, state, control, **kw):
            if self.start is None:
                self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.steps, self.end = self.steps + 1, time.perf_counter()

    return StepTimer()


def train_steps(trainer, steps: int, callbacks=()) -> None:
    """Train ``steps`` optimizer steps from the start of an epoch, without evaluating, with
    ``callbacks`` attached for this call only."""
    from transformers.trainer_utils import IntervalStrategy

    for cb in callbacks:
        trainer.add_callback(cb)
    trainer.args.max_steps = steps
    trainer.args.eval_strategy = IntervalStrategy.NO
    trainer.args.save_strategy = IntervalStrategy.NO  # no checkpoints inside a timing
    try:
        trainer.train()
    finally:
        for cb in callbacks:
            trainer.remove_callback(cb)


def _timed_steps(trainer, steps: int) -> tuple[float, float]:
    """(samples/s, peak RSS in MB) over the first ``steps`` optimizer steps of an epoch, after one
    untimed warm-up step. Every call replays the same (seeded) batch order."""
    train_steps(trainer, 1)  # warm-up: allocator, first kernels
    timer = _step_timer()
    with _PeakRSS() as mem:
        train_steps(trainer, steps, [timer])
    batch = trainer.args.per_device_train_batch_size * trainer.args.world_size
    return timer.steps * batch / (timer.end - timer.start), mem.peak / 2**20


def megabatch_steps(trainer) -> int:
    """How many batches ``group_by_length`` sorts together (transformers'
    ``get_length_grouped_indices``: a shuffled mega-batch, longest first). A timing window of
    whole mega-batches sees the epoch's mix of lengths; a shorter one sees its longest batches."""
    batch = trainer.args.per_device_train_batch_size * trainer.args.world_size
    return max(1, min(len(trainer.train_dataset) // (batch * 4), 50))


def _course_module():
    path = config.PROJ_ROOT / "bench" / "course_setup.py"
    spec = importlib.util.spec_from_file_location("course_setup", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_throughput(rounds: int, steps: int | None, eval_limit: int | None, fp32_side: bool = True) -> dict:
    """The workbook's set-up (``ptuning.prepare``, its default precision) against the course's,
    method v2, same model and data, alternating ``rounds`` times ``steps`` optimizer steps each
    (``None``: one whole mega-batch of the workbook's length-grouped order, see
    ``megabatch_steps``); then validation accuracy. With ``fp32_side`` a third side, the workbook
    forced to fp32, shows how much of the gain is precision and how much padding and batching."""
    from . import ptuning

    out = config.output_dir("bench")
    sides = {"workbook": ptuning.prepare("v2", "quick", 0, output_dir=out / "workbook", eval_limit=eval_limit)}
    work = sides["workbook"]
    if fp32_side and work.cfg["precision_used"] != "fp32":
        sides["workbook_fp32"] = ptuning.prepare("v2", "quick", 0, output_dir=out / "workbook_fp32",
                                                 eval_limit=eval_limit, precision="fp32")
    course_net = ptuning.build_model("v2", ptuning.resolve_config("v2", "quick"), work.choice)
    from .data import load_mrpc

    trainers = {name: p.trainer for name, p in sides.items()}
    trainers["course"] = _course_module().course_trainer(course_net, work.tokenizer, load_mrpc(verbose=False),
                                                         out / "course", compute_metrics=ptuning.compute_metrics,
                                                         eval_limit=eval_limit)
    mega = megabatch_steps(work.trainer)
    steps = steps or mega
    speeds = {name: [] for name in trainers}
    peaks = {name: 0.0 for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            sps, peak = _timed_steps(trainer, steps)
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


def time_to_accuracy(target: float = 0.75, *, method: str = "v2", profile: str = "quick", seed: int = 0,
                     evals_per_epoch: int = 1, cap_s: float | None = None, output_dir=None, **overrides) -> dict:
    """Wall seconds of training (``method`` in ``profile``, its defaults unless ``overrides``) until
    validation accuracy first reaches ``target``; training stops there, or after ``cap_s`` seconds,
    or at the profile's end. Validation runs ``evals_per_epoch`` times an epoch (its seconds count:
    they are part of getting there; ``train_s`` in each evaluation leaves them out). No checkpoints
    are written. Every evaluation is kept: ``(epoch, wall_s, train_s, accuracy)``."""
    from transformers import TrainerCallback
    from transformers.trainer_utils import IntervalStrategy

    from . import ptuning

    if evals_per_epoch < 1:
        raise ValueError(f"evals_per_epoch must be 1 or more, got {evals_per_epoch!r}")

    class StopAt(TrainerCallback):
        def __init__(self):
            self.reached, self.stopped, self.evals, self.eval_s = None, "end", [], 0.0

        def on_train_begin(self, args, state, control, **kw):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if cap_s is not None and time.perf_counter() - self.start > cap_s:
                self.stopped, control.should_training_stop = "cap", True

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            wall = time.perf_counter() - self.start
            self.eval_s += metrics.get("eval_runtime", 0.0)
            acc = metrics["eval_accuracy"]
            self.evals.append((round(state.epoch, 2), round(wall, 1), round(wall - self.eval_s, 1), round(acc, 4)))
            if self.reached is None and acc >= target:
                self.reached, self.stopped = self.evals[-1], "target"
                control.should_training_stop = True

    stop = StopAt()
    out = output_dir or config.output_dir("bench", "tta")
    p = ptuning.prepare(method, profile, seed, output_dir=out, callbacks=[stop], **overrides)
    args = p.trainer.args
    args.save_strategy = IntervalStrategy.NO
    if evals_per_epoch > 1:
        steps_per_epoch = math.ceil(len(p.splits["train"]) / (args.per_device_train_batch_size * args.world_size))
        args.eval_strategy, args.eval_steps = IntervalStrategy.STEPS, max(1, steps_per_epoch // evals_per_epoch)
    p.trainer.train()
    return {"time_to_val_075_s": stop.reached[1] if stop.reached else None,
            "time_to_val_075_train_s": stop.reached[2] if stop.reached else None,
            "time_to_val_075_epoch": stop.reached[0] if stop.reached else None,
            # the best validation accuracy seen (the run stops early once it reaches the target)
            f"{profile}_profile_val_acc": max((e[3] for e in stop.evals), default=None),
            "time_to_val_075_stopped": stop.stopped,
            "time_to_val_075_evals": stop.evals,
            "time_to_val_075_config": {"method": method, "profile": profile, "seed": seed,
                                       "evals_per_epoch": evals_per_epoch, "cap_s": cap_s, "target": target,
                                       "overrides": overrides,
                                       **{k: v for k, v in p.cfg.items() if k not in ("environment", "data")}}}


def trainer_vs_loop(method: str = "v2", steps: int = 50, profile: str = "full", **overrides) -> dict:
    """Samples/s of ``steps`` optimizer steps through the workbook's Trainer against a plain PyTorch
    loop over the same model (built afresh), batches (the Trainer's own dataloader), optimizer and
    precision, after one untimed warm-up step each. On a GPU the gap is the Trainer's per-step
    overhead (launch-bound for a 22M-parameter model); the issue's target is a ratio within 1.5."""
    import torch

    from . import ptuning

    p = ptuning.prepare(method, profile, 0, output_dir=config.output_dir("bench", "loop"), eval_limit=64,
                        **overrides)
    trainer = p.trainer
    batch = trainer.args.per_device_train_batch_size * trainer.args.world_size
    train_steps(trainer, 1)
    timer = _step_timer()
    train_steps(trainer, steps, [timer])
    trainer_sps = timer.steps * batch / (timer.end - timer.start)

    device = trainer.args.device
    net = ptuning.build_model(method, p.cfg, p.choice).to(device).train()
    optimizer, schedule = ptuning.make_optimizer(net, p.cfg, steps + 1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p.cfg["precision_used"])
    batches = iter(trainer.get_train_dataloader())

    def step():
        inputs = {k: v.to(device, non_blocking=True) for k, v in next(batches).items()}
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = net(**inputs).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    loop_sps = steps * batch / (time.perf_counter() - start)
    return {"trainer_samples_per_s": round(trainer_sps, 1), "loop_samples_per_s": round(loop_sps, 1),
            "trainer_vs_loop": round(loop_sps / trainer_sps, 3), "steps": steps, "batch": batch,
            "device": str(device), "precision": p.cfg["precision_used"]}


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
    import json

    from . import llama_build

    try:
        record = json.loads(llama_build.venv_marker().read_text())
    except (OSError, ValueError):
        record = {"flags": None, "note": "not installed by make install: flags unknown"}
    r = llama_build.check(tokens=tokens)
    return {"flags": record.get("flags"), "cpu": llama_build.cpu_model(), "tokens": r["tokens"],
            "tokens_per_s": round(r["tokens_per_s"], 1),
            "features": sorted(f for f, v in llama_build.system_features(r["system_info"]).items() if v)}


def notebook_seconds() -> dict:
    """Each notebook executed headless in the smoke profile, in a fresh kernel."""
    from . import notebooks

    os.environ["WORKBOOK_PROFILE"] = "smoke"
    out = config.output_dir("bench", "notebooks")
    return {p.name: round(notebooks.execute(p, out), 1) for p in notebooks.notebook_paths()}


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
    """One row per v2 recipe trial (``bench/v2_recipe_trials.py``'s JSON Lines): what was changed,
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
