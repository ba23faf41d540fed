"""Hand ratings (helpers.stories.ratings): the file, its checks, kappa, the halves and the committed ratings."""
import json
import math

import pytest

from helpers import stories
from helpers.stories import StorySpec, ratings

SPEC = StorySpec("a magical forest", "playful", 30, 80,
                 ["a talking squirrel", "a flying rainbow butterfly", "a friendly dragon", "a hidden treasure"])
GOOD = ("Mia walked into the magical forest. A talking squirrel said hello to her. It showed Mia a flying rainbow "
        "butterfly. The butterfly led them to a friendly dragon. The dragon smiled and dug under a big rock. There "
        "was a hidden treasure! It was a box full of songs. Mia, the squirrel and the dragon sang all day.")
SCORES = {"plot": 4, "clues": 5, "fit": 5, "no_leaks": 5}


def test_a_rating_is_appended_whole_and_read_back(tmp_path):
    path = tmp_path / "r.jsonl"
    ratings.add_rating(GOOD, SPEC, SCORES, True, "ab", source="test", variant="v", seed=3, path=path)
    ratings.add_rating("Bo met a. Write about", SPEC.to_dict(), {**SCORES, "plot": 1}, False, "cd", path=path)
    got = ratings.load_ratings(path)
    assert [r["rater"] for r in got] == ["ab", "cd"] and got[0]["text"] == GOOD and got[0]["acceptable"] is True
    assert got[0]["spec"]["clues"] == list(SPEC.clues) and got[1]["plot"] == 1


@pytest.mark.parametrize("change, message", [
    (dict(scores={**SCORES, "plot": 6}), r"scores\['plot'\]: 6 is not a whole number from 1 to 5"),
    (dict(scores={**SCORES, "fit": 2.5}), r"scores\['fit'\]: 2.5"),
    (dict(scores={"plot": 3}), r"scores: give exactly the rubric's items"),
    (dict(acceptable="yes"), r"acceptable: 'yes' must be True or False"),
    (dict(rater=" "), r"rater: say who rated"),
    (dict(text=""), r"text: the story to rate is empty"),
])
def test_a_bad_rating_names_its_field_and_writes_nothing(tmp_path, change, message):
    path = tmp_path / "r.jsonl"
    ratings.add_rating(GOOD, SPEC, SCORES, True, "ab", path=path)
    kw = dict(text=GOOD, spec=SPEC, scores=SCORES, acceptable=True, rater="ab", path=path) | change
    with pytest.raises(ValueError, match=message):
        ratings.add_rating(**kw)
    assert len(ratings.load_ratings(path)) == 1  # the rating already written is intact


def test_kappa_by_hand():
    assert ratings.cohen_kappa([True, False, True, False], [True, False, True, False]) == 1.0
    # observed 0.5, chance 0.5: no better than chance
    assert ratings.cohen_kappa([True, True, False, False], [True, False, True, False]) == 0.0
    # 8 of 10 agree; both say yes 6 times in 10, so chance is 0.6*0.6 + 0.4*0.4 = 0.52: (0.8 - 0.52) / 0.48
    a = [True] * 6 + [False] * 4
    b = [True] * 5 + [False] + [True] + [False] * 3
    assert ratings.cohen_kappa(a, b) == pytest.approx(0.28 / 0.48)
    assert math.isnan(ratings.cohen_kappa([False] * 5, [False] * 5))  # one verdict only: undefined
    with pytest.raises(ValueError, match="same items"):
        ratings.cohen_kappa([True], [True, False])


def test_halves_are_fixed_and_share_the_acceptable_stories():
    rs = [{"text": f"story {i}", "acceptable": i % 3 == 0} for i in range(21)]
    a, b = ratings.halves(rs)
    assert ratings.halves(list(reversed(rs))) == (a, b) and len(a) + len(b) == 21
    assert abs(sum(r["acceptable"] for r in a) - sum(r["acceptable"] for r in b)) <= 1


def test_the_checker_agrees_with_a_reader_who_accepts_only_the_clean_stories():
    bad = ["Bo met a talking squirrel. Write about a flying rainbow butterfly in just like this. Bo met a",
           "The story begins with a playful scene. A friendly dragon and tobuildatree for a hidden treasure.",
           "A talking squirrel said. A talking squirrel said. A talking squirrel said hi to a friendly dragon and"]
    good = [GOOD, GOOD.replace("Mia", "Leo"), GOOD.replace("songs", "shells"), GOOD.replace("all day", "at night")]
    rated = [{"text": t, "spec": SPEC.to_dict(), "acceptable": ok, **SCORES}
             for t, ok in [(t, True) for t in good] + [(t, False) for t in bad]]
    tuning, held_out = ratings.agreement(rated)
    assert held_out.n + tuning.n == 7 and held_out.kappa == 1.0 and tuning.kappa == 1.0
    assert held_out.table().loc["reader yes", "checker yes"] == sum(r["acceptable"] for r in ratings.halves(rated)[1])
    items = ratings.item_agreement(ratings.measured(rated))
    assert items.loc["no_leaks <= 3", "stories"] == 7


def test_the_committed_ratings_cover_the_committed_stories_and_follow_the_rubric():
    path = ratings.ratings_path()
    rs = ratings.load_ratings(path)
    assert len(rs) >= 40 and path.name == "q3_ratings.jsonl"
    sources = {r["source"] for r in rs}
    assert {"results/q3_compare.json", "results/q3_levers.json", "results/q3_levers_gemma.json"} <= sources
    for source in sources:  # each rated story is the one its file holds, under its variant and seed
        stored = {(label, s["seed"]): s["text"] for label, batch in
                  json.loads((path.parent.parent / source).read_text())["stories"].items() for s in batch}
        assert all(stored[r["variant"], r["seed"]] == r["text"] for r in rs if r["source"] == source), source
    for r in rs:
        assert all(1 <= r[k] <= 5 for k in ratings.RUBRIC) and isinstance(r["acceptable"], bool) and r["rater"]
        StorySpec(**r["spec"])  # each names a valid spec


def test_the_rating_form_appends_a_rating_and_names_a_missing_rater(tmp_path):
    from helpers.stories import load_comparison, rating_candidates, rating_form

    saved = load_comparison()
    candidates = rating_candidates(saved, None)
    assert len(candidates) == sum(len(b) for b in saved["stories"].values())
    label = "scaffold + grammar, seed 0"
    assert candidates[label]["source"] == "results/q3_compare.json" and candidates[label]["seed"] == 0
    path = tmp_path / "ratings.jsonl"
    form = rating_form(candidates, path=path)
    form.story.value = label
    form.sliders["plot"].value = 1
    form.button.click()
    assert form.status.value.startswith("not added: rater:") and not path.exists()
    form.rater.value, form.acceptable.value = "xy", False
    form.button.click()
    (r,) = ratings.load_ratings(path)
    assert "added to" in form.status.value and "(1 ratings)" in form.status.value
    assert r["variant"] == "scaffold + grammar" and r["plot"] == 1 and r["rater"] == "xy" and r["acceptable"] is False
    assert r["text"] == candidates[label]["text"]


def test_rating_candidates_keep_the_same_variant_from_two_files_apart():
    one = {"source": "results/a.json", "backend": "m1", "spec": SPEC.to_dict(),
           "stories": {"continuation": [{"seed": 0, "text": "One."}]}}
    two = {**one, "source": "results/b.json", "stories": {"continuation": [{"seed": 0, "text": "Two."}]}}
    got = stories.rating_candidates(one, two)
    assert got["continuation, seed 0"]["text"] == "One." and got["continuation, seed 0 (b)"]["text"] == "Two."
