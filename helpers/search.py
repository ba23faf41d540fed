"""Recipe searches with Optuna: ``python -m helpers search --method M --trials N --profile P --out DIR``.

An Optuna study around the workbook's own ``training.run`` (so a trial keeps the method's optimizer, its head
learning rate and its checkpoints), over the search space its spec declares (``methods.MethodSpec.search_space``).
Each trial trains one run per seed; the objective is the minimum (or mean) over those seeds of the best
validation accuracy, so a recipe must hold on every seed, not on one. A pruner stops a hopeless trial on its
validation accuracy at the end of a seed. The study lives in SQLite, ``DIR/study.db``: ``--trials N`` is the
study's total, so a rerun adds only the missing trials, and a rerun with other settings is refused.
``--engine ray`` runs workers as Ray tasks that draw trials from the same study.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
import zlib
from pathlib import Path

from transformers import TrainerCallback

from .methods import get as get_method
from .settings import resolve_config

OBJECTIVES = ("min", "mean")
STUDY_FILE = "study.db"
SUMMARY_FILE = "search.json"


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is reported by the caller, once
    return optuna


def sample(trial, space: dict) -> dict:
    """One value per setting of ``space``: ``("log", low, high)`` a float on a log scale, a list a choice."""
    params = {}
    for name, domain in space.items():
        if isinstance(domain, tuple) and len(domain) == 3 and domain[0] == "log":
            params[name] = trial.suggest_float(name, domain[1], domain[2], log=True)
        elif isinstance(domain, list) and domain:
            params[name] = trial.suggest_categorical(name, domain)
        else:
            raise ValueError(f"search space of {name!r}: expected ('log', low, high) or a list of choices, "
                             f"got {domain!r}")
    return params


class PruneOnValidation(TrainerCallback):
    """Reports each validation accuracy to the trial at step ``offset + epoch`` (the seeds of a trial follow one
    another, so the same step means the same seed and epoch in every trial) and stops a trial the pruner calls
    hopeless by raising ``optuna.TrialPruned``. At ``last_step`` (the last seed's last epoch) the trial has
    finished its training, so it is not judged there: it ends with its objective, not as pruned."""

    def __init__(self, trial, offset: int = 0, last_step: int | None = None):
        self.trial, self.offset, self.last_step = trial, offset, last_step

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or "eval_accuracy" not in metrics:
            return
        step = self.offset + math.ceil(state.epoch - 1e-6)
        self.trial.report(metrics["eval_accuracy"], step)
        if (self.last_step is None or step < self.last_step) and self.trial.should_prune():
            raise _optuna().TrialPruned(f"validation accuracy {metrics['eval_accuracy']:.4f} at step {step}")


def _settings(method: str, profile: str, seeds: list[int], objective: str, fixed: dict) -> dict:
    """What a study is: the method, profile, seeds, objective, the settings held fixed (``--set``, left out of
    the space) and the space searched."""
    resolve_config(method, profile, **fixed)  # a bad fixed setting fails here
    space = {k: list(v) for k, v in get_method(method).search_space.items() if k not in fixed}
    if not space:
        raise ValueError(f"nothing left to search for {method}: --set fixes every setting of its search space")
    return {"method": method, "profile": profile, "seeds": list(seeds), "objective": objective,
            "fixed": dict(fixed), "space": space}


def _objective(trial, settings: dict, runs_dir: str, model: str, data, keep: bool) -> float:
    """Train one run per seed with the trial's parameters; the best validation accuracies' min or mean. A run's
    folder is named by its trial, and a trial interrupted by Ctrl-C is queued again under its old number, so it
    resumes from its checkpoint; a finished or pruned run's folder is removed (the study keeps its numbers)
    unless ``keep``."""
    from .callbacks import RunInterrupted
    from .training import run

    method, profile = settings["method"], settings["profile"]
    space = {k: tuple(v) if v and v[0] == "log" else v for k, v in settings["space"].items()}
    params = {**settings["fixed"], **sample(trial, space)}
    epochs = seed_epochs(settings)
    per_seed, start = [], time.perf_counter()
    try:
        for k, seed in enumerate(settings["seeds"]):
            out = Path(runs_dir) / f"trial{trial.user_attrs.get('resumes_trial', trial.number)}-seed{seed}"
            interrupted = False
            try:
                r = run(method, profile, seed, model=model, data=data, output_dir=out, resume=True,
                        callbacks=[PruneOnValidation(trial, k * epochs, epochs * len(settings["seeds"]))], **params)
            except RunInterrupted:
                interrupted = True  # its checkpoint stays; the next run of the study resumes it
                trial.set_user_attr("interrupted", True)
                raise
            finally:
                if not keep and not interrupted:
                    shutil.rmtree(out, ignore_errors=True)
            per_seed.append({"seed": seed, "best_val": round(r.best["eval_accuracy"], 4),
                             "best_epoch": r.best["epoch"], "train_s": r.train_seconds,
                             "val_by_epoch": [round(e["eval_accuracy"], 4) for e in r.evals()]})
            trial.set_user_attr("seeds", per_seed)
    finally:
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
    values = [s["best_val"] for s in per_seed]
    return min(values) if settings["objective"] == "min" else sum(values) / len(values)


def recipe_trial(settings: dict) -> dict:
    """The method's current recipe as a point of the space: each searched setting at the value a run takes
    with no overrides (the profile's and the method's defaults, ``fixed`` applied), where that value lies in its
    domain. A study starts from it, so its table says whether the search beat the recipe it would replace."""
    cfg = resolve_config(settings["method"], settings["profile"], **settings["fixed"])
    point = {}
    for name, domain in settings["space"].items():
        value = cfg.get(name)
        if domain and domain[0] == "log":
            if isinstance(value, (int, float)) and domain[1] <= value <= domain[2]:
                point[name] = value
        elif value in domain:
            point[name] = value
    return point


def _check_point(point: dict, settings: dict) -> dict:
    """``point`` if each of its settings is searched and its value lies in the setting's domain; else a ValueError
    naming the setting."""
    for name, value in point.items():
        domain = settings["space"].get(name)
        if domain is None:
            raise ValueError(f"--ask {name}={value!r}: not a searched setting of {settings['method']} (searched: "
                             f"{', '.join(settings['space'])}; a setting held with --set is not searched)")
        inside = (isinstance(value, (int, float)) and domain[1] <= value <= domain[2]) if domain[0] == "log" \
            else value in domain
        if not inside:
            raise ValueError(f"--ask {name}={value!r}: outside its domain {domain}")
    return point


def _tried(study, point: dict) -> bool:
    """Whether a trial of the study (queued, running or done) has the settings of ``point``."""
    def has(params: dict) -> bool:
        return all(k in params and (math.isclose(params[k], v, rel_tol=1e-9) if isinstance(v, float) else
                                    params[k] == v) for k, v in point.items())

    # a queued trial has no params yet: Optuna keeps the ones it was queued with in its system attributes
    return any(has(t.params or t.system_attrs.get("fixed_params", {})) for t in study.get_trials(deepcopy=False))


def requeue_interrupted(study) -> list[int]:
    """Queue again, once, the parameters of each trial stopped by Ctrl-C (its runs resume from their
    checkpoints); returns their numbers."""
    optuna = _optuna()
    done = set(study.user_attrs.get("requeued", []))
    again = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
             if t.user_attrs.get("interrupted") and t.number not in done]
    for t in again:
        study.enqueue_trial(t.params, user_attrs={"resumes_trial": t.number,
                                                  **({"recipe": True} if t.user_attrs.get("recipe") else {})})
    if again:
        study.set_user_attr("requeued", sorted(done | {t.number for t in again}))
    return [t.number for t in again]


def open_study(out: str | os.PathLike, settings: dict, storage: str | None = None, sampler_seed: int = 0):
    """The study in ``storage`` (default ``sqlite:///DIR/study.db``), created or loaded; a study made with other
    settings is a ValueError listing them. The TPE sampler is seeded by the settings, ``sampler_seed`` (one per
    worker) and the trials already there, so a rerun draws new parameters. The pruner judges at each seed's end:
    judged at epoch 1, where v2 still swings, it stopped trials that might have learned (search_v2_quick, 2-5)."""
    optuna = _optuna()
    url = storage or f"sqlite:///{Path(out).resolve() / STUDY_FILE}"
    rdb = optuna.storages.RDBStorage(
        url, heartbeat_interval=60, grace_period=180,  # a trial whose process died is failed, then retried once
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
    name = f"{settings['method']}-{settings['profile']}"
    epochs = seed_epochs(settings)
    study = optuna.create_study(study_name=name, storage=rdb, direction="maximize", load_if_exists=True,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=epochs,
                                                                   interval_steps=epochs))
    # with one seed for all, the two adapter sizes' studies drew the same learning rates
    base = zlib.crc32(json.dumps(settings, sort_keys=True).encode())
    study.sampler = optuna.samplers.TPESampler(seed=(base + sampler_seed + 1009 * len(study.trials)) % 2**32)
    saved = study.user_attrs.get("settings")
    if saved is None:
        study.set_user_attr("settings", settings)
    elif saved != settings:
        diff = [f"{k}: {saved.get(k)!r} in the study, {settings.get(k)!r} now" for k in settings
                if saved.get(k) != settings.get(k)]
        raise ValueError(f"the study in {url} was made with other settings ({'; '.join(diff)}); "
                         "use another --out, or the study's settings")
    return study


def seed_epochs(settings: dict) -> int:
    """Epochs a seed trains in a trial: steps ``k * epochs + 1 .. (k + 1) * epochs`` are seed ``k``'s."""
    return math.ceil(resolve_config(settings["method"], settings["profile"], **settings["fixed"])["num_train_epochs"])


def counted(study) -> list:
    """The trials that count towards ``--trials``: finished or pruned."""
    optuna = _optuna()
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def _optimize(study, total: int, settings: dict, runs_dir: str, model: str, data, keep: bool,
              share: int | None = None) -> None:
    """Trials until the study holds ``total`` (``share``: at most this many here, one worker's part)."""
    optuna = _optuna()
    todo = total - len(counted(study))
    todo = todo if share is None else min(todo, share)
    if todo > 0:
        study.optimize(lambda t: _objective(t, settings, runs_dir, model, data, keep), n_trials=todo,
                       callbacks=[optuna.study.MaxTrialsCallback(total, states=(
                           optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))])


def _ray_worker(worker: tuple[int, int], out: str, storage: str | None, total: int, settings: dict, runs_dir: str,
                model: str, data) -> int:
    """A Ray task, ``worker`` = (number, share): runs its share of the missing trials in the shared study."""
    from .ray_engine import use_task_cpus

    use_task_cpus()
    study = open_study(out, settings, storage, sampler_seed=worker[0])
    _optimize(study, total, settings, runs_dir, model, data, keep=False, share=worker[1])
    return worker[0]


def search(method: str, trials: int, profile: str = "quick", out: str | os.PathLike = "outputs/search",
           seeds=(0, 1), objective: str = "min", *, model: str = "auto", data=None, storage: str | None = None,
           engine: str = "local", address: str | None = None, workers: int | None = None,
           cpus_per_run: float | None = None, gpus_per_run: float | None = None, keep: bool = False,
           ask: dict | None = None, **fixed) -> dict:
    """Run the study up to ``trials`` counted trials (``fixed``: settings held, not searched) and write
    ``DIR/search.json`` (settings, the trial table, the best parameters, the importances) and
    ``DIR/importance.png``; returns the summary. ``ask``: a point of the space to try next (its other settings
    drawn), queued once: a study that has tried it already does not again."""
    from . import config as wconfig
    from .sweeps import check_engine, parse_seeds

    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a whole number >= 1 (the study's total), got {trials!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    check_engine(engine)
    prof = wconfig.get_profile(profile).name
    settings = _settings(method, prof, parse_seeds(seeds), objective, fixed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(out, settings, storage)
    runs_dir = str(wconfig.OUTPUT_DIR / "searches" / out.name)
    if not study.trials:  # a new study: its first trial is the recipe in use
        study.enqueue_trial(recipe_trial(settings), user_attrs={"recipe": True})
    if ask and not _tried(study, _check_point(ask, settings)):
        study.enqueue_trial(dict(ask), user_attrs={"asked": True})
    again = requeue_interrupted(study)
    if again:
        print(f"search: trial(s) {', '.join(map(str, again))} were interrupted; queued again, resuming their runs",
              flush=True)
    before = len(counted(study))
    print(f"search: {settings['method']} ({prof}, seeds {settings['seeds']}, objective {objective}): "
          f"{before} of {trials} trials in the study, {max(0, trials - before)} to run ({engine})", flush=True)
    if engine == "local":
        _optimize(study, trials, settings, runs_dir, model, data, keep)
    elif trials > before:
        from .ray_engine import connect, map_tasks, per_task

        resources = per_task(cpus_per_run, gpus_per_run)
        ray = connect(address)
        todo = trials - before  # shared out so that the study ends with exactly `trials`
        # The queued trials (the recipe, trials interrupted before) go first, all to one worker: workers that start
        # together on SQLite, which has no row locks, can both claim one queued trial (seen: two on one folder).
        queued = min(todo, len(study.get_trials(deepcopy=False, states=(_optuna().trial.TrialState.WAITING,))))
        rest = todo - queued
        if workers is None:
            have = ray.cluster_resources()
            slots = have.get("GPU", 0) / resources["num_gpus"] if resources["num_gpus"] else \
                have.get("CPU", 1) / resources["num_cpus"]
            workers = max(1, min(rest, int(slots)))
        rounds = [[(0, queued)]] if queued else []
        if rest:
            rounds.append([(w, rest // workers + (w < rest % workers)) for w in range(workers)])
        for shares in rounds:
            failed = map_tasks(_ray_worker, [s for s in shares if s[1]], lambda *a: None, resources=resources,
                               describe=lambda w: f"search worker {w[0]}",
                               kwargs=dict(out=str(out), storage=storage, total=trials, settings=settings,
                                           runs_dir=runs_dir, model=model, data=data))
            if failed:
                raise RuntimeError("; ".join(f"search worker {w[0]}: {why}" for w, why in failed) +
                                   ". The finished trials are in the study: run the same command again to go on")
    return write_summary(study, out)


def trials_table(study):
    """One row per trial: its number and state, whether it is the recipe in use (the study's first), the
    parameters, the objective, each seed's best validation accuracy and the epoch it came at, where a pruned trial
    stopped, and seconds."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        seeds = t.user_attrs.get("seeds", [])
        reported = t.intermediate_values  # {step: validation accuracy}, step = seed position x epochs + epoch
        top = max(reported, key=reported.get) if reported else None
        rows.append({"trial": t.number, "state": t.state.name.lower(),
                     "recipe in use": bool(t.user_attrs.get("recipe")), "asked for": bool(t.user_attrs.get("asked")),
                     **t.params,
                     "objective": None if t.value is None or t.state.name != "COMPLETE" else round(t.value, 4),
                     "best val by seed": [s["best_val"] for s in seeds],
                     "best epoch by seed": [s["best_epoch"] for s in seeds],
                     "best val reported": None if top is None else round(reported[top], 4), "at step": top,
                     "pruned at step": max(reported) if t.state.name == "PRUNED" and reported else None,
                     "seconds": t.user_attrs.get("seconds")})
    return pd.DataFrame(rows)


def importances(study) -> dict:
    """Each parameter's importance to the objective (Optuna's default evaluator, PED-ANOVA in Optuna 5); empty with
    too few finished trials."""
    optuna = _optuna()
    try:
        return {k: round(float(v), 4) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # fewer than two finished trials, or nothing varied
        return {}


def importance_figure(scores: dict, title: str = "parameter importance"):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 0.5 + 0.4 * max(1, len(scores))), layout="constrained")
    ax = fig.subplots()
    names = list(scores)[::-1]
    ax.barh(names, [scores[n] for n in names], color="C0")
    ax.set(title=title if scores else f"{title}: too few finished trials", xlabel="importance (PED-ANOVA)")
    return fig


def write_summary(study, out: str | os.PathLike) -> dict:
    """``DIR/search.json`` and ``DIR/importance.png`` from the study as it is now; returns the summary."""
    from .results import save_json
    from .runinfo import environment

    out = Path(out)
    table = trials_table(study)
    done = [t for t in study.trials if t.state == _optuna().trial.TrialState.COMPLETE]  # a pruned one has a value too
    best = max(done, key=lambda t: t.value) if done else None
    scores = importances(study)
    summary = {"settings": study.user_attrs.get("settings"), "environment": environment(),
               "trials": table.to_dict(orient="records"), "counted": len(counted(study)),
               "best": None if best is None else {"trial": best.number, "objective": best.value,
                                                  "params": best.params, "seeds": best.user_attrs.get("seeds")},
               "importances": scores}
    save_json(summary, out / SUMMARY_FILE)
    importance_figure(scores, f"{study.study_name}: parameter importance ({len(done)} finished trials)").savefig(
        out / "importance.png", dpi=100)
    return summary


def read_summary(folder: str | os.PathLike) -> dict:
    """A finished search's ``search.json`` as written by ``write_summary``, with ``table``, its trials as a
    DataFrame; a folder without one is a FileNotFoundError saying how to make it."""
    import pandas as pd

    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no search summary here; make it with "
                                f"python -m helpers search --method M --trials N --out {Path(folder)}")
    summary = json.loads(path.read_text(encoding="utf-8"))
    return {**summary, "table": pd.DataFrame(summary["trials"])}


def describe(found: dict) -> str:
    """A search's summary (``read_summary``) in a few lines: what was searched, on what CPU, the recipe in use's
    objective and the best trial's, with its parameters."""
    s, table = found["settings"], found["table"]
    fixed = ", ".join(f"{k}={v}" for k, v in s["fixed"].items()) or "nothing"
    lines = [f"{s['method']}, {s['profile']} profile, seeds {s['seeds']}, objective: the {s['objective']} of the "
             f"seeds' best validation accuracies; held fixed: {fixed}",
             f"{found['counted']} trials counted "
             f"({', '.join(f'{n} {k}' for k, n in table['state'].value_counts().items())}) on "
             f"{found['environment'].get('cpu')}"]
    recipe = table[table["recipe in use"]]
    if len(recipe):  # an interrupted recipe trial is queued again: the row that ran to the end, if any
        ran = recipe[recipe["state"] != "fail"]
        r = (ran if len(ran) else recipe).iloc[0]
        lines.append(f"the recipe in use (trial {r['trial']}): objective {r['objective']}, {r['state']}")
    best = found.get("best")
    if best:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items())
        lines.append(f"best: trial {best['trial']}, objective {best['objective']:.4f}: {params}")
    return "\n".join(lines)
