"""The frontier: every method paired with v2, the headline difference with both intervals, the figure; the
sweep's groups and variants that define it."""
import math

import numpy as np
import pytest
from conftest import fake_result

from helpers import frontier, results, sweeps, training
from helpers.settings import resolve_config


def _sweep():
    rng = np.random.default_rng(3)
    base = [rng.random(300) < 0.7 for _ in range(3)]
    return results.Sweep({
        "v2": [fake_result("v2", s, base[s] | (rng.random(300) < 0.3), trainable=800_000) for s in range(3)],
        "v1": [fake_result("v1", s, base[s], trainable=120_000) for s in range(3)],
        "full-5ep": [fake_result("full", s, base[s] | (rng.random(300) < 0.31), trainable=22_000_000, epochs=5)
                     for s in range(3)],
    })


def test_table_pairs_every_method_with_v2():
    table = frontier.table(_sweep()).set_index("label")
    assert list(table.index) == ["v2", "v1", "full-5ep"] and table.loc["full-5ep", "method"] == "full fine-tuning"
    assert math.isnan(table.loc["v2", "- v2"])  # v2 is not paired with itself
    low, high = table.loc["v1", "- v2 CI"]
    assert table.loc["v1", "- v2"] < 0 and low < table.loc["v1", "- v2"] < high < 0  # v1 is worse on these pairs
    assert table.loc["v1", "kept epochs"] == [2, 2, 2] and table.loc["full-5ep", "epochs"] == 5
    assert len(table.loc["v1", "McNemar p per seed"]) == 3
    assert table.loc["full-5ep", "trainable"] == 22_000_000


def test_headline_gives_both_intervals_and_says_when_they_cannot_tell():
    out = frontier.headline(_sweep(), "v2", "full-5ep")
    assert out["diff"] == pytest.approx(out["a mean"] - out["b mean"])
    assert out["welch CI"][0] < out["diff"] < out["welch CI"][1] and out["paired seeds"] == [0, 1, 2]
    low, high = out["welch CI"]
    assert out["within_a_point"] is (-0.01 <= low and high <= 0.01)
    with pytest.raises(ValueError, match="no runs labelled 'lora-5ep': it has v2, v1, full-5ep"):
        frontier.headline(_sweep(), "v2", "lora-5ep")


def test_figure_draws_every_method_the_majority_and_the_band():
    sw = _sweep()
    assert frontier.majority_on_test(sw) == 1.0  # the fake labels are all 1
    ax = frontier.figure(sw, majority=0.665).axes[0]
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("full fine-tuning: 95% interval") and "majority class (0.665)" in labels
    assert {"P-Tuning v2 (n=3)", "P-Tuning v1 (n=3)"} <= set(labels)


def test_frontier_group_expands_and_a_variant_keeps_its_own_settings(tmp_path, monkeypatch):
    labels = sweeps.sweep_labels("frontier")
    assert list(labels) == list(sweeps.GROUPS["frontier"]) and len(labels) == 7
    assert labels["full-5ep"] == ("full", {"num_train_epochs": 5})
    monkeypatch.setattr(training, "run", lambda *a, **k: pytest.fail("trained"))
    todo, _ = sweeps._todo(sweeps.sweep_labels("v2,full-5ep"), [0], "smoke", tmp_path, {"num_train_epochs": 10})
    assert [(t[0], t[3]["num_train_epochs"]) for t in todo] == [("v2", 10), ("full-5ep", 5)]


def test_collect_writes_a_summary_of_the_finished_runs_and_names_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "run", lambda *a, **k: pytest.fail("trained"))
    done = fake_result("v2", 0, [True, False, True])
    done.config = {**resolve_config("v2", "smoke", num_train_epochs=10), "seed": 0}
    folder = tmp_path / "front"
    done.to_json(folder / "v2-seed0.json")
    out = sweeps.sweep("v2,v1", [0, 1], "smoke", out=folder.with_suffix(".json"), collect=True,
                       num_train_epochs=10)
    assert list(out.runs) == ["v2"] and len(out.runs["v2"]) == 1
    assert out.config["missing"] == ["v2-seed1", "v1-seed0", "v1-seed1"]
    assert results.Sweep.from_json(folder.with_suffix(".json")).config["missing"] == out.config["missing"]
