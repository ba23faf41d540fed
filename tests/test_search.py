"""Recipe searches with Optuna: the study's total is --trials, a rerun adds only what is missing, other settings
are refused, hopeless trials are pruned, and Ray workers draw from the same study."""
import json

import pytest

from helpers import search
from helpers.__main__ import main
from helpers.methods import get as get_method


def _args(out, trials, *extra):
    return ["search", "--method", "v2", "--trials", str(trials), "--profile", "smoke", "--seeds", "1",
            "--set", "num_train_epochs=1", "--out", str(out), *extra]


@pytest.mark.slow
def test_a_rerun_adds_only_the_missing_trials_and_other_settings_are_refused(mrpc_dir, tmp_path, monkeypatch,
                                                                             capsys):
    monkeypatch.setenv("MRPC_DIR", str(mrpc_dir))
    out = tmp_path / "v2"
    assert main(_args(out, 3)) == 0
    assert main(_args(out, 4)) == 0
    printed = capsys.readouterr().out
    assert "3 of 4 trials in the study, 1 to run" in printed
    summary = json.loads((out / "search.json").read_text())
    assert summary["counted"] == 4 and len(summary["trials"]) == 4
    assert summary["settings"]["fixed"] == {"num_train_epochs": 1} and "num_train_epochs" not in summary["settings"][
        "space"]
    first = summary["trials"][0]  # the recipe in use comes first
    assert first["recipe in use"] and not any(t["recipe in use"] for t in summary["trials"][1:])
    assert {k: first[k] for k in summary["settings"]["space"]} == search.recipe_trial(summary["settings"])
    assert first["state"] in ("complete", "pruned") and first["seconds"] > 0 and "learning_rate" in first
    assert summary["best"]["params"] and (out / "study.db").is_file() and (out / "importance.png").is_file()
    assert search.read_summary(out)["table"]["trial"].tolist() == [0, 1, 2, 3]
    assert main(_args(out, 4)) == 0  # nothing missing: nothing trained
    assert "4 of 4 trials in the study, 0 to run" in capsys.readouterr().out
    assert main(_args(out, 5)[:-2] + ["--seeds", "2", "--out", str(out)]) == 2
    assert "made with other settings (seeds: [0] in the study, [0, 1] now)" in capsys.readouterr().err


class _Trial:
    def __init__(self, prune):
        self.reports, self.prune = [], prune

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune


class _State:
    epoch = 2.0


def test_a_trial_is_pruned_on_its_validation_accuracy_at_the_seed_and_epoch_step():
    import optuna

    keep = _Trial(prune=False)
    search.PruneOnValidation(keep, offset=3).on_evaluate(None, _State(), None, metrics={"eval_accuracy": 0.7})
    assert keep.reports == [(5, 0.7)]  # the second seed of a 3-epoch profile, epoch 2
    with pytest.raises(optuna.TrialPruned, match="validation accuracy 0.6838 at step 2"):
        search.PruneOnValidation(_Trial(prune=True)).on_evaluate(None, _State(), None,
                                                                  metrics={"eval_accuracy": 0.6838})
    done = _Trial(prune=True)  # the last seed's last epoch: the training is over, so it is not judged
    search.PruneOnValidation(done, offset=0, last_step=2).on_evaluate(None, _State(), None,
                                                                       metrics={"eval_accuracy": 0.6838})
    assert done.reports == [(2, 0.6838)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(trials=0), "trials must be a whole number >= 1"),
    (dict(objective="max"), "objective must be one of min, mean"),
    (dict(method="v9"), "unknown method 'v9'"),
    (dict(engine="threads"), "engine must be one of local, ray"),
    (dict(learning_rate=1e-3, head_learning_rate=1e-2, per_device_train_batch_size=16, warmup_ratio=0.0,
          num_virtual_tokens=20, dropout=0.0), "nothing left to search for v2"),
])
def test_bad_searches_fail_before_training(kwargs, message, tmp_path):
    args = dict(method="v2", trials=2, profile="smoke", out=tmp_path / "s") | kwargs
    with pytest.raises(ValueError, match=message):
        search.search(args.pop("method"), args.pop("trials"), args.pop("profile"), args.pop("out"), **args)


def test_the_recipe_trial_is_the_method_s_defaults_where_they_lie_in_the_space():
    settings = search._settings("v2", "quick", [0], "min", {"num_virtual_tokens": 10})
    assert search.recipe_trial(settings) == {"learning_rate": 1e-3, "head_learning_rate": 1e-2,
                                             "per_device_train_batch_size": 16, "warmup_ratio": 0.06, "dropout": 0.0}
    settings["space"]["learning_rate"] = ["log", 1e-2, 3e-2]  # the default outside the domain: left to the sampler
    assert "learning_rate" not in search.recipe_trial(settings)


def test_a_folder_without_a_summary_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="no search summary here; make it with python -m helpers search"):
        search.read_summary(tmp_path)


def test_a_space_of_an_unknown_shape_is_named():
    import optuna

    trial = optuna.create_study().ask()
    assert 1e-4 <= search.sample(trial, {"learning_rate": ("log", 1e-4, 1e-2)})["learning_rate"] <= 1e-2
    with pytest.raises(ValueError, match="search space of 'dropout': expected"):
        search.sample(trial, {"dropout": (0.0, 0.1)})


@pytest.mark.slow
def test_ray_workers_draw_trials_from_the_same_study(mrpc_dir, tmp_path, monkeypatch):
    from helpers import ray_engine

    monkeypatch.setenv("MRPC_DIR", str(mrpc_dir))
    ray = ray_engine.connect(num_cpus=2)
    try:
        summary = search.search("v2", 3, "smoke", tmp_path / "r", 1, engine="ray", cpus_per_run=1,
                                num_train_epochs=1)
    finally:
        ray.shutdown()
    assert summary["counted"] == 3 and {t["state"] for t in summary["trials"]} <= {"complete", "pruned"}
    # the queued recipe ran once, by one worker (two claiming it would collide on its folder), then two workers
    # drew a trial each, each with its own sampler seed
    recipe, *drawn = summary["trials"]
    assert recipe["recipe in use"] and not any(t["recipe in use"] for t in drawn)
    assert recipe["learning_rate"] == get_method("v2").defaults["learning_rate"]
    assert drawn[0]["learning_rate"] != drawn[1]["learning_rate"]


def test_a_trial_stopped_by_ctrl_c_is_queued_again_and_resumes_its_run(tmp_path, monkeypatch):
    from conftest import fake_result

    from helpers import training
    from helpers.callbacks import RunInterrupted

    calls = []

    def fake_run(method, profile, seed, output_dir=None, resume=False, callbacks=(), **params):
        calls.append((output_dir, resume, params))
        if len(calls) == 1:
            raise RunInterrupted("interrupted: run stopped at step 3", "checkpoint-3")
        return fake_result(method, seed, [True, False, True])

    monkeypatch.setattr(training, "run", fake_run)
    with pytest.raises(RunInterrupted):
        search.search("v2", 2, "smoke", tmp_path / "s", 1)
    summary = search.search("v2", 2, "smoke", tmp_path / "s", 1)
    states = [t["state"] for t in summary["trials"]]
    assert states == ["fail", "complete", "complete"] and summary["counted"] == 2
    assert calls[0][0] == calls[1][0] and all(resume for _, resume, _ in calls)  # the same folder, resumed
    assert calls[1][2] == calls[0][2]  # with the interrupted trial's parameters
    told = search.describe(search.read_summary(tmp_path / "s"))
    assert "2 trials counted (2 complete, 1 fail)" in told
    assert "the recipe in use (trial 1): objective 0.6667, complete" in told  # trial 0 was the recipe, interrupted
    assert "best: trial 1, objective 0.6667: learning_rate=0.001" in told
    again = search.search("v2", 2, "smoke", tmp_path / "s", 1)
    assert len(again["trials"]) == 3  # queued again only once


def test_the_pruner_judges_a_trial_at_the_end_of_each_seed_only(tmp_path):
    settings = search._settings("v2", "quick", [0, 42], "min", {})  # 3 epochs a seed: steps 1-3, then 4-6
    study = search.open_study(tmp_path, settings)
    for _ in range(2):  # two good trials, the pruner's start-up
        good = study.ask()
        for step in range(1, 7):
            good.report(0.80, step)
        study.tell(good, 0.80)
    low = study.ask()
    judged = []
    for step in range(1, 7):
        low.report(0.60, step)
        judged.append(low.should_prune())
    assert judged == [False, False, True, False, False, True]  # never at epoch 1 or 2, where v2 still swings


def test_a_rerun_draws_new_parameters_not_the_first_run_s_again(tmp_path, monkeypatch):
    from conftest import fake_result

    from helpers import training

    monkeypatch.setattr(training, "run", lambda method, profile, seed, **k: fake_result(method, seed, [True, False]))
    search.search("v2", 2, "smoke", tmp_path / "s", 1)
    summary = search.search("v2", 3, "smoke", tmp_path / "s", 1)
    drawn = [tuple(t[k] for k in summary["settings"]["space"]) for t in summary["trials"][1:]]
    assert len(drawn) == 2 and drawn[0] != drawn[1]
    sizes = [search.search("adapter", 2, "smoke", tmp_path / f"rf{rf}", 1, reduction_factor=rf)["trials"][1]
             for rf in (16, 0.375)]  # studies with other settings draw other parameters
    assert sizes[0]["learning_rate"] != sizes[1]["learning_rate"]


def test_a_point_asked_for_is_tried_once_and_a_bad_one_is_named(tmp_path, monkeypatch):
    from conftest import fake_result

    from helpers import training

    monkeypatch.setattr(training, "run", lambda method, profile, seed, **k: fake_result(method, seed, [True, False]))
    out = tmp_path / "rf0.375"
    search.search("adapter", 2, "smoke", out, 1, reduction_factor=0.375)
    summary = search.search("adapter", 3, "smoke", out, 1, reduction_factor=0.375, ask={"learning_rate": 1e-4})
    asked = summary["trials"][2]
    assert asked["asked for"] and asked["learning_rate"] == 1e-4
    again = search.search("adapter", 4, "smoke", out, 1, reduction_factor=0.375, ask={"learning_rate": 1e-4})
    assert not again["trials"][3]["asked for"] and again["trials"][3]["learning_rate"] != 1e-4  # tried already
    with pytest.raises(ValueError, match="--ask reduction_factor=16: not a searched setting of adapter"):
        search.search("adapter", 5, "smoke", out, 1, reduction_factor=0.375, ask={"reduction_factor": 16})
    with pytest.raises(ValueError, match=r"--ask learning_rate=1.0: outside its domain \['log', 1e-05, 0.03\]"):
        search.search("adapter", 5, "smoke", out, 1, reduction_factor=0.375, ask={"learning_rate": 1.0})
