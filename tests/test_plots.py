"""The planned plot: what the program writes, and how the continuation writes on from it."""
import pytest
from test_stories import Continuer  # the fake plain-text backend

from helpers import stories
from helpers.stories import StorySpec
from helpers.stories.plots import PLOTS, definite, is_creature, plot_beats
from helpers.stories.reading import _sentence_spans, leaked, templates
from helpers.stories.spec import TWISTS, story_seed
from helpers.stories.text import words


def test_every_twist_has_a_plot_with_an_ask_for_each_of_three_creatures():
    assert set(PLOTS) == set(TWISTS)
    for plot in PLOTS.values():
        assert len(set(plot["ask"])) == 3 and all(a.endswith('"') for a in plot["ask"])


def test_clues_are_told_apart_as_creatures_or_things():
    assert is_creature("a talking squirrel") and is_creature("two friendly dragons")
    assert not is_creature("a hidden treasure") and not is_creature("a golden key")
    assert definite("a talking squirrel") == "the talking squirrel" and definite("Grandma's hat") == "Grandma's hat"


@pytest.mark.parametrize("seed", range(6))
def test_the_plan_names_every_clue_states_the_problem_and_resolves_it(seed):
    spec = stories.EXAMPLE_SPEC
    plan = plot_beats(spec, seed)
    plot = PLOTS[story_seed(seed)["twist"]]
    assert [b["clue"] for b in plan[1:-2]] == list(spec.clues)
    assert all(b["clue"] in b["opens"] for b in plan[1:-2])
    assert plan[0]["goal"] in plan[0]["opens"] and all(b["goal"] == plan[0]["goal"] for b in plan)
    assert plot["solve"].format(hero=plan[0]["hero"]) == plan[-2]["opens"]
    assert sum(b["words"] for b in plan) >= spec.min_words
    program = "\n\n".join(b["opens"] for b in plan)
    _, most = templates(_sentence_spans(program))
    assert most < 3  # the program's own lines are not a template
    assert not leaked(program, spec)


def test_a_planned_beat_that_the_model_closes_early_goes_on_in_a_new_paragraph():
    spec = StorySpec("a pond", "gentle", 300, 500, ("a frog",))  # beats of 85 words: more calls a beat
    backend = Continuer([" It was a sunny day."] + [' "Yes!" said Bo.'] * 200)
    story = stories.write_story(backend, spec, "continue_plot", seed=1, record=False)
    first = [c for c in story.calls if c["opens"] == story.calls[0]["opens"]]
    assert not first[0]["prompt"].endswith("\n\n") and first[1]["prompt"].endswith("\n\n")
    assert '"Yes!" said Bo.' in story.text  # the closing quote stays with its sentence
    assert story.report.passed["whole_sentences"] and len(words(story.text)) > 100


def test_candidates_that_stay_on_the_plot_rank_first():
    from helpers.stories.writing import _continuation_key

    spec = StorySpec("a pond", "gentle", 10, 400, ("a frog",))
    goal = plot_beats(spec, 3)[0]["goal"]  # the river: Grandma is across it
    opens = "Soon Rosa met a frog."
    on = " The frog showed Rosa a row of stones across the wide river, so she could reach Grandma."
    off = " The frog liked to eat cake and watch the clouds in the sky all day long."
    frame = stories.story_frame(spec)
    key_on, key_off = (_continuation_key(opens + t, spec, frame, (t, goal)) for t in (on, off))
    assert "river" in goal and key_on[:2] == key_off[:2] and key_on > key_off


def test_talk_about_the_story_is_a_leak():
    assert leaked("Bo was happy. The story is a happy tale.", stories.EXAMPLE_SPEC)
    assert not leaked("Grandma told a story. Bo was happy.", stories.EXAMPLE_SPEC)

