"""The reader's checks (helpers.stories.reading) on the failures a reader found in committed SmolLM2 stories."""
import re

import pytest

from helpers import stories
from helpers.stories import StorySpec, reading

SPEC = StorySpec("a magical forest", "playful", 30, 80,
                 ["a talking squirrel", "a flying rainbow butterfly", "a friendly dragon", "a hidden treasure"])
CLEAN = ("Mia walked into the magical forest. A talking squirrel said hello to her. It showed Mia a flying rainbow "
         "butterfly. The butterfly led them to a friendly dragon. The dragon smiled and dug under a big rock. There "
         "was a hidden treasure! It was a box full of songs. Mia, the squirrel and the dragon sang all day.")


def failed(text, prompt=None):
    r = stories.check_story(text, SPEC, prompt)
    return {k for k in stories.READER_CHECKS if not r.passed[k]}, r


def test_a_clean_story_passes_every_reader_check():
    bad, r = failed(CLEAN)
    assert bad == set() and r.score == 1.0 and r.spans() == []
    assert r.reading["easy_share"] > 0.9 and r.reading["breaks"] == []


@pytest.mark.parametrize("leak", [
    "Write about a flying rainbow butterfly in just like this.",
    "The story begins with a playful scene in the forest.",
    "A playful story for a five-year-old about a friendly dragon.",
    "No title page, no notes, no questions.",
    "Bo: under the moonlit glow, in a magical forest.",
    "1. Mia meets a talking squirrel.",
    "This magical story is about the princess and her dragon.",
])
def test_leaked_instructions_and_meta_talk_are_caught_and_named(leak):
    bad, r = failed(CLEAN + "\n" + leak)
    assert "no_leaks" in bad and r.reading["leaks"]
    start, end, check = next(s for s in r.spans() if s[2] == "no_leaks")
    assert (CLEAN + "\n" + leak)[start:end] in leak


def test_a_run_of_the_prompts_own_words_is_a_leak_but_the_clues_are_not():
    prompt = "Write a playful story about a magical forest. Keep every sentence short and kind for a small child."
    assert not failed(CLEAN, prompt)[0]
    bad, r = failed(CLEAN + " Keep every sentence short and kind, they said.", prompt)
    assert "no_leaks" in bad and r.reading["leaks"][0][2] == "Keep every sentence short and kind"


def test_a_paragraph_cut_mid_sentence_is_caught_with_its_tail():
    bad, r = failed(CLEAN.replace("It was a box", "It was a box\nThen they went home."))
    assert "whole_sentences" in bad and [t for *_, t in r.reading["cuts"]] == ["It was a box"]
    assert "whole_sentences" in failed(CLEAN + " You can")[0]
    # a closing quote after the full stop, or an exclamation, ends a paragraph
    assert not failed(CLEAN + '\nShe said, "Bye."\nThe end!')[0]


def test_glued_and_invented_words_are_non_words_but_names_are_not():
    bad, r = failed(CLEAN + " They saw tobuildatree and themallbutterflys. He'dve-never-taught-them-to-be-himself.")
    found = [t for *_, t in r.reading["nonwords"]]
    assert "real_words" in bad and "tobuildatree" in found and "themallbutterflys" in found
    assert "He'dve-never-taught-them-to-be-himself" in found  # a hyphen chain of 7 words
    # invented names are written capitalised; possessives and the clues' own words are words
    assert not failed(CLEAN + " Then Zephethrus and Kylothis came. Zephethrus's hat was red.")[0]


def test_a_sentence_opening_used_as_a_template_is_caught():
    text = ("Bo met a talking squirrel. Bo met a flying rainbow butterfly. Bo met a friendly dragon. "
            "Bo met a hidden treasure. They were in a magical forest and they played all day.")
    bad, r = failed(text)
    assert "no_template" in bad and len(r.reading["templates"]) == 3  # every use after the first
    twice = text.replace("Bo met a hidden", "At last they found a hidden").replace("Bo met a friendly", "A friendly")
    assert "no_template" not in failed(twice)[0]


def test_hard_words_lower_the_easy_share():
    hard = ("Ultimately, the magical forest's photosynthetic canopy facilitated extraordinary biodiversity; "
            "a talking squirrel contemplated epistemological quandaries while a friendly dragon deliberated.")
    bad, r = failed(hard)
    assert "easy_words" in bad and r.reading["easy_share"] < reading.READER_LIMITS["easy_share_min"]
    assert reading.is_easy("running") and reading.is_easy("bigger") and reading.is_easy("ponies")


def test_unrelated_sentences_are_incoherent():
    jumble = ("Tax returns are due in April. The carburettor needs a new gasket. Parliament passed the budget vote. "
              "Sodium reacts with water. The stock market fell sharply today. Quantum fields permeate spacetime.")
    bad, r = failed(jumble)
    assert "coherence" in bad and r.reading["topic_similarity"] < reading.READER_LIMITS["topic_min"]


@pytest.mark.parametrize("text", ["", "   ", "!!!! ???", "1234 5678"])
def test_no_words_fails_every_reader_check(text):
    bad, _ = failed(text)
    assert bad == set(stories.READER_CHECKS)


def test_the_report_lists_and_highlights_each_reader_check():
    text = CLEAN + " Bo: write about tobuildatree"
    r = stories.check_story(text, SPEC)
    rows = {row["constraint"]: row for row in r.rows()}
    assert set(stories.READER_CHECKS) <= set(rows) and not rows["real_words"]["passed"]
    assert "tobuildatree" in rows["real_words"]["measured"]
    html = stories.highlight(text, SPEC.clues, r.spans())
    titles = [set(t.split(", ")) for t in re.findall(r"title='([^']*)'", html)]
    assert titles == [{"no_leaks", "real_words", "whole_sentences"}]  # overlapping spans: one, with each check
    assert "<mark>dragon</mark>" in html
    assert "finish every sentence" in r.feedback() and "not English (tobuildatree)" in r.feedback()
    # the surface counts alone, as the committed comparisons were scored
    assert set(stories.check_story(text, SPEC, reader=False).passed) == {
        "length", "clues", "readability", "sentence_length", "repetition"}


DRIFT = ["What are these examples of?", "What was the most important part of this article?",
         "This is just one example of a many stories about Sami.", "The happy ending, and the end of Sami's story.",
         "The main story, 3 different stories are very similar.", "This is a very short story, no more than 150 words.",
         "For example: Story 3: The Lost Kite and Story 2: A Magical Forest.",
         "I am an AI that helps you write your own story.", "It might not be the last one in this blog post.",
         "I hope you enjoyed this story and I hope you didn't miss any part of the video.",
         "In these short stories, we have taken some things from the original story.",
         'The ending: "I will find my treasure."', "Translate that to English!",
         "What do you think of this piece of art? A: The child's imagination.", "The story ends with a happy ending.",
         "Write a short story about a fairy tale.", "How would you make the above text more appealing?",
         "Ack! Your story was edited. Please improve it again.", "What's the most popular bedtime story for kids?",
         "What was the most interesting story and why?", "What could be the most interesting thing you could do?"]
STORY = ["Grandma told a story. Bo was happy.", '"What do you think?" asked Bo.', "They posted a letter.",
         "The fox ate 3 berries.", "Bo had a big happy smile at the end of the day.",
         "They read stories under the tree.", "They told each other a story.", "They found a secret passage.",
         "It was the most beautiful tree in the forest.", "Bo wrote a letter to Grandma."]


@pytest.mark.parametrize("text", DRIFT)
def test_a_model_drifting_out_of_the_story_is_a_leak(text):
    """Seen in the planned-plot stories of results/q3_levers.json (SmolLM2), which the first checker passed."""
    assert reading.leaked(text, SPEC)


@pytest.mark.parametrize("text", STORY)
def test_story_talk_is_not_a_leak(text):
    assert not reading.leaked(text, SPEC)


def test_a_verse_a_quotation_and_a_short_exclamation_are_not_faults():
    """From hand-written control stories that the checker first rejected (results/q3_ratings.jsonl, "control")."""
    assert reading.cut_off("Up, up,\ndown we go.") == [] and reading.cut_off('They sang:\n\n"La la."') == []
    assert reading.cut_off("They sang:\n\nand then") and reading.cut_off("Up, up,\n\nThe end.")
    assert not reading.leaked("We play it with a clue.", SPEC) and reading.leaked("Use all the clues.", SPEC)
    text = ("Mia walked into the magical forest to find her friend. A talking squirrel sat on a log. \"Sorry!\" said "
            "Mia. The squirrel laughed. \"A dragon!\" A friendly dragon came to play with Mia and the squirrel.")
    assert stories.check_story(text, SPEC).reading["breaks"] == []
