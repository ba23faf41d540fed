"""Results I/O and tables: atomic writes that never collide, committed files still read, sweeps."""
import json
import multiprocessing

import numpy as np
import pytest
from conftest import fake_result

from helpers import config, results


def _write_many(args):
    path, n = args
    for i in range(n):
        results.save_json({"writer": i, "data": list(range(200))}, path)


def test_concurrent_writers_never_collide_and_readers_never_see_half_a_file(tmp_path):
    path = tmp_path / "r.json"
    results.save_json({"writer": -1, "data": []}, path)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pending = pool.map_async(_write_many, [(path, 40)] * 4)
        while not pending.ready():
            assert "writer" in json.loads(path.read_text())  # whole, every time
        pending.get()  # no FileNotFoundError in any writer
    assert not list(tmp_path.glob(".r.json.*"))  # no temporary file left behind


def test_committed_results_still_read():
    runs = results.load_results("q1_*.json")
    if not runs:
        pytest.skip("no committed results")
    for r in runs.values():
        assert r.test["accuracy"] > 0 and r.evals()


def test_sweep_table_comparisons_figure_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    base = [rng.random(200) < 0.7 for _ in range(3)]
    sw = results.Sweep({"v2": [fake_result("v2", s, base[s] | (rng.random(200) < 0.2)) for s in range(3)],
                        "v1": [fake_result("v1", s, base[s]) for s in range(3)]})
    table = sw.table().set_index("method")
    assert table.loc["v2", "n"] == 3 and table.loc["v2", "test acc mean"] > table.loc["v1", "test acc mean"]
    low, high = table.loc["v1", "test acc CI"]
    assert low < table.loc["v1", "test acc mean"] < high
    comp = sw.comparisons()
    assert list(comp["b"]) == ["v1"] and comp.loc[0, "acc diff (a - b)"] > 0
    assert comp.loc[0, "diff CI"][0] > 0 and comp.loc[0, "seeds with p < 0.05"] >= 2
    sw.figure(majority=0.68)
    files = {}
    for label, runs in sw.runs.items():
        files[label] = [str(r.to_json(tmp_path / f"{label}-{r.seed}.json") and tmp_path / f"{label}-{r.seed}.json")
                        for r in runs]
    sw.files = files
    sw.to_json(tmp_path / "summary.json")
    back = results.Sweep.from_json(tmp_path / "summary.json")
    assert back.table().equals(sw.table())
    before = results.Sweep({"v2-before": [fake_result("v2", s, base[s]) for s in range(3)]}, {"note": "old"})
    both = results.Sweep.merge(back, before)
    assert list(both.runs) == ["v2", "v1", "v2-before"] and both.config["merged"][1] == {"note": "old"}
    pair = both.comparisons(pairs=[("v2", "v2-before")])
    assert pair.loc[0, "acc diff (a - b)"] > 0 and pair.loc[0, "seeds"] == [0, 1, 2]
    with pytest.raises(ValueError, match="label.s. v1 are in more than one sweep"):
        results.Sweep.merge(back, results.Sweep({"v1": []}))


def test_learned_table_and_compare_runs():
    runs = {p.stem: r for p, r in results.load_results().items()}
    if "q1_quick4_v2_lr1e-3" not in runs:
        pytest.skip("the committed exploration runs are not in results/")
    table = results.learned_table(runs, 0.6838235294117647).set_index("run")
    assert table.loc["q1_quick4_v2_lr1e-3", "verdict"] == "collapsed"
    assert table.loc["q1_quick4_v2_head1e-2", "verdict"] == "learned"
    comp = results.compare_runs(runs, {"x": ("q1_v2", "q1_v1"), "missing": ("q1_v2", "nope")})
    assert comp.loc[0, "a test"] == round(runs["q1_v2"].test["accuracy"], 4) and np.isnan(comp.loc[1, "a test"])


def test_reached_table_says_when_each_run_first_reached_the_threshold():
    late, never = fake_result("v2", 0, [True] * 8 + [False] * 2), fake_result("v2", 1, [True] * 7 + [False] * 3)
    late.history[0]["train_s"], late.history[1]["train_s"] = 40.0, 81.5  # 0.79 at epoch 1, 0.8 at epoch 2
    late.config["environment"] = never.config["environment"] = {"cpu": "AMD EPYC"}
    late.config["profile"] = never.config["profile"] = "quick"
    table = results.reached_table([late, never], threshold=0.795).set_index("seed")
    assert table.loc[0, "reached 0.795"] and table.loc[0, "at epoch"] == 2.0 and table.loc[0, "at s"] == 81.5
    assert not table.loc[1, "reached 0.795"] and np.isnan(table.loc[1, "at s"])
    assert table.loc[1, "val acc by epoch"] == [0.69, 0.7] and table.loc[0, "cpu"] == "AMD EPYC"


def test_results_dir_is_the_repository_folder():
    assert config.RESULTS_DIR.name == "results" and config.RESULTS_DIR.parent == config.PROJ_ROOT


def test_results_are_readable_by_everyone(tmp_path):
    path = results.save_json({"a": 1}, tmp_path / "r.json")
    assert path.stat().st_mode & 0o777 == 0o644
