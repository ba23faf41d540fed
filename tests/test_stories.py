"""Q3 without a model: specs, prompts, the checker, diversity, the records file."""
import json
import math

import pytest

from helpers import stories
from helpers.stories import StorySpec

SPEC = stories.EXAMPLE_SPEC
GOOD = ("Mia walked into the magical forest. A talking squirrel said hello. "
        "Then a rainbow butterfly was flying over the trees. Two friendly dragons waved. "
        "They found the hidden treasure under a rock. It was a box of songs. Everyone sang. The end.")


@pytest.mark.parametrize("kwargs, message", [
    (dict(topic=" "), r"StorySpec.topic must be a non-empty string"),
    (dict(min_words=600), r"min_words \(600\) is above max_words \(500\)"),
    (dict(min_words=0), r"StorySpec.min_words must be a positive whole number"),
    (dict(max_words=-5), r"StorySpec.max_words must be a positive whole number"),
    (dict(clues=("a dragon", "  ")), r"StorySpec.clues\[1\] is blank"),
])
def test_spec_is_checked_when_built(kwargs, message):
    base = dict(topic="a forest", style="playful", min_words=100, max_words=500, clues=("a dragon",))
    with pytest.raises(ValueError, match=message):
        StorySpec(**{**base, **kwargs})


def test_scaffold_beats_carry_every_constraint_between_them():
    plan = stories.beats(SPEC, seed=3)
    assert [b["clue"] for b in plan] == [None, *SPEC.clues, None]
    assert sum(b["words"] for b in plan) <= (SPEC.min_words + SPEC.max_words) // 2
    texts = [" ".join(m["content"] for m in stories.build_messages(SPEC, "scaffold", beat=b)) for b in plan]
    for beat, text in zip(plan, texts):
        assert SPEC.style in text and "5-year-old" in text and (beat["clue"] is None or beat["clue"] in text)
    assert SPEC.topic in texts[0]
    with pytest.raises(ValueError, match="pass beat="):
        stories.build_messages(SPEC, "scaffold")


@pytest.mark.parametrize("strategy", [s for s in stories.STRATEGIES if not s.startswith("scaffold")])
def test_prompts_contain_every_constraint(strategy):
    msgs = stories.build_messages(SPEC, strategy, seed=3)
    text = " ".join(m["content"] for m in msgs)
    for part in [SPEC.topic, SPEC.style, str(SPEC.min_words), str(SPEC.max_words), "5-year-old", *SPEC.clues]:
        assert part in text, (strategy, part)
    assert msgs[-1]["role"] == "user"


def test_two_call_strategies_use_the_first_answer():
    second = stories.build_messages(SPEC, "outline", outline="1. Mia meets a squirrel")
    assert "Follow this outline" in second[-1]["content"] and "Mia meets a squirrel" in second[-1]["content"]
    report = stories.check_story("A short tale.", SPEC)
    revise = stories.build_messages(SPEC, "revise", draft="A short tale.", report=report)[-1]["content"]
    assert "A short tale." in revise and "never mentions a friendly dragon" in revise
    with pytest.raises(ValueError, match="needs the draft's report"):
        stories.build_messages(SPEC, "revise", draft="x")
    with pytest.raises(ValueError, match="unknown strategy 'poem'"):
        stories.build_messages(SPEC, "poem")


def test_seeded_strategy_is_reproducible_and_varies():
    assert stories.build_messages(SPEC, "seeded", seed=1) == stories.build_messages(SPEC, "seeded", seed=1)
    assert len({stories.build_messages(SPEC, "seeded", seed=s)[-1]["content"] for s in range(8)}) > 1


def test_checker_on_a_hand_written_story():
    r = stories.check_story(GOOD, StorySpec("a magical forest", "playful", 30, 60, SPEC.clues))
    assert r.words == len(GOOD.split())
    assert r.in_range and r.passed["length"]
    # inflections count: "dragons" for "a friendly dragon", "flying" for "a flying rainbow butterfly"
    assert r.clues == {c: True for c in SPEC.clues}
    assert r.sentences == 8 and r.mean_sentence_words == pytest.approx(r.words / 8, abs=0.01)
    assert r.fk_grade < stories.LIMITS["fk_grade_max"] and r.flesch_reading_ease > 70 and r.passed["readability"]
    assert r.repetition == 0 and r.score == 1.0


def test_checker_reports_missing_clues_and_length():
    r = stories.check_story("The squirrel talked. The dragon was friendly.", SPEC)
    assert r.clues["a talking squirrel"] and r.clues["a friendly dragon"]
    assert not r.clues["a hidden treasure"] and not r.passed["clues"] and not r.in_range
    assert 0 < r.score < 1 and "hidden treasure" in r.feedback()


def test_sentences_end_after_closing_quotes():
    r = stories.check_story('He said, "Be careful." Then he left! She said \u201cbye.\u201d\nThe end', SPEC)
    assert r.sentences == 4 and r.words == 12


def test_one_count_of_words_and_sentences_throughout():
    import textstat

    text = 'He said, "Be careful." Then Mr. Fox ran to Dr. Owl... The end'
    assert stories.sentences(text) == ['He said, "Be careful."', "Then Mr. Fox ran to Dr. Owl...", "The end"]
    r = stories.check_story(text, SPEC)
    toks = stories.words(text)
    assert r.words == len(toks) == 13 and r.sentences == 3 and r.mean_sentence_words == round(13 / 3, 2)
    syllables = sum(max(1, textstat.syllable_count(w)) for w in toks)
    # the grade is computed from the same 13 words and 3 sentences (textstat's own count says 4 sentences)
    assert r.fk_grade == round(0.39 * 13 / 3 + 11.8 * syllables / 13 - 15.59, 2)
    assert r.flesch_reading_ease == round(206.835 - 1.015 * 13 / 3 - 84.6 * syllables / 13, 2)


def test_repetition_share():
    r = stories.check_story("the cat sat the cat sat the cat sat", SPEC)
    # 7 word 3-grams, 3 distinct: 4/7 repeat
    assert r.repetition == pytest.approx(4 / 7, abs=1e-4) and not r.passed["repetition"]


@pytest.mark.parametrize("text", ["", "   ", "!!!! ???", "\x00\x01", "1234 5678"])
def test_garbage_gives_a_report_not_an_exception(text):
    r = stories.check_story(text, SPEC)
    assert r.words == 0 and r.score == 0 and not any(r.passed.values())


def test_distinct_n_by_hand():
    texts = ["a b a", "B c"]
    # unigrams: a b a b c -> 3 unique of 5; bigrams: (a b) (b a) (b c) -> 3 of 3
    assert stories.distinct_n(texts, 1) == pytest.approx(3 / 5)
    assert stories.distinct_n(texts, 2) == pytest.approx(1.0)
    assert stories.distinct_n(["x"], 2) == 0.0


def test_self_bleu_and_spread_extremes():
    same = ["the little fox ran home to see his mother today"] * 3
    assert stories.self_bleu(same) == pytest.approx(1.0)
    assert stories.semantic_spread(same) == pytest.approx(0.0, abs=1e-5)
    apart = ["the little fox ran home to see his mother today",
             "quarterly revenue figures exceeded analyst expectations considerably"]
    assert stories.self_bleu(apart) < 0.05
    assert stories.semantic_spread(apart) > 0.5
    d = stories.diversity(apart)
    assert set(d) == {"distinct_1", "distinct_2", "self_bleu", "semantic_spread"}
    assert math.isnan(stories.diversity(["one text"])["self_bleu"])


def test_records_survive_a_crash(tmp_path):
    path = tmp_path / "stories.jsonl"
    stories.append_record({"n": 1}, path)
    stories.append_record({"n": 2}, path)
    with open(path, "a") as f:  # a crash in the middle of a write leaves a torn last line
        f.write('{"n": 3, "text": "Once upon a ti')
    stories.append_record({"n": 4}, path)  # the next run appends after it, on its own line
    with pytest.warns(UserWarning, match=r"stories.jsonl, line 3: not a whole record"):
        got = stories.read_records(path)
    assert [r["n"] for r in got] == [1, 2, 4]
    assert path.read_text().count("\n") == 4 and json.loads(path.read_text().splitlines()[-1]) == {"n": 4}


def test_a_line_torn_inside_a_multibyte_character_is_skipped(tmp_path):
    path = tmp_path / "stories.jsonl"
    stories.append_record({"n": 1, "text": "caf\u00e9"}, path)
    with open(path, "ab") as f:  # torn between the two bytes of "\u00e9"
        f.write('{"n": 2, "text": "caf\u00e9'.encode()[:-1])
    with pytest.warns(UserWarning, match=r"line 2: not a whole record"):
        assert [r["n"] for r in stories.read_records(path)] == [1]
    stories.append_record({"n": 3}, path)
    with pytest.warns(UserWarning, match=r"line 2"):
        assert [r["n"] for r in stories.read_records(path)] == [1, 3]


def test_stemming_matches_inflections():
    for a, b in [("dragons", "dragon"), ("butterflies", "butterfly"), ("flying", "fly"), ("talked", "talk"),
                 ("treasures", "treasure"), ("squirrel's", "squirrel")]:
        assert stories.stem(a) == stories.stem(b), (a, b)


class ScriptedBackend:
    """Answers every call with the same story: for testing the form's wiring, not a model."""

    def generate(self, messages, **sampling):
        self.last = (messages, sampling)
        return stories.Generation(GOOD, 10, 40, 0.01, "scripted")


def test_form_generates_and_reports(capsys):
    backend = ScriptedBackend()
    form = stories.story_form({"scripted": backend}, StorySpec("a magical forest", "playful", 30, 60, SPEC.clues))
    fields = {getattr(c, "description", ""): c for c in form.children}
    fields["strategy"].value = "checklist"
    fields["temperature"].value = 0.3
    form.button.click()
    out = capsys.readouterr().out
    assert "Mia walked into the magical forest" in out and "score=1.0" in out
    assert backend.last[1]["temperature"] == 0.3 and "check every item" in backend.last[0][-1]["content"]
    assert stories.read_records()[-1]["strategy"] == "checklist"  # recorded like every other story
    fields["topic"].value = " "  # the slider keeps min <= max itself; a blank topic is the bad input here
    form.button.click()
    assert "error: StorySpec.topic must be a non-empty string" in capsys.readouterr().out


class SlowBackend:
    """Records whether the form's button was disabled while it was writing."""

    def __init__(self):
        self.form, self.seen = None, []

    def generate(self, messages, **sampling):
        self.seen.append((self.form.button.disabled, self.form.button.description))
        return stories.Generation(GOOD, 10, 40, 0.5, "slow")


def test_form_disables_generate_while_writing():
    backend = SlowBackend()
    backend.form = stories.story_form({"slow": backend}, StorySpec("a magical forest", "playful", 30, 60, SPEC.clues))
    backend.form.button.click()
    assert backend.seen == [(True, "writing…")]
    assert not backend.form.button.disabled and backend.form.button.description == "Generate"


def test_form_labels_fit_and_every_clue_line_shows():
    form = stories.story_form({"x": ScriptedBackend()}, SPEC)
    fields = {getattr(c, "description", ""): c for c in form.children}
    assert fields["temperature"].style.description_width == "110px"
    assert fields["clues"].rows >= len(SPEC.clues)


def test_form_range_fits_the_token_cap():
    assert stories.form_range(SPEC, 48) == (21, 43)  # smoke: 48 tokens hold up to about 43 words
    form = stories.story_form({"x": ScriptedBackend()}, SPEC, max_tokens=48)
    assert {getattr(c, "description", ""): c for c in form.children}["words"].value == (21, 43)  # not snapped
    assert stories.form_range(SPEC, 800) == (SPEC.min_words, SPEC.max_words)


def test_report_renders_a_row_per_constraint():
    r = stories.check_story("The squirrel talked. The dragon was friendly.", SPEC)
    html = r._repr_html_()
    assert html.count("<tr>") == 1 + len(r.passed)  # header + one per constraint
    for row in r.rows():
        assert row["constraint"] in html
    assert "✗" in html and "300 to 500 words" in html
    story = stories.Story("The squirrel talked to a dragon.", r, "persona", [], 0)
    assert "<mark>squirrel</mark>" in story._repr_html_() and "<mark>dragon</mark>" in story._repr_html_()


class Script:
    """A fake backend that answers with scripted texts in order, and counts calls."""

    def __init__(self, texts):
        self.texts, self.calls = list(texts), []

    def generate(self, messages, **sampling):
        self.calls.append(messages)
        return stories.Generation(self.texts.pop(0), 10, 20, 0.01, "script")


def test_best_of_n_keeps_the_story_the_checker_ranks_first():
    spec = StorySpec("a magical forest", "playful", 30, 60, SPEC.clues)
    texts = ["The end.", GOOD, "A squirrel. " * 3, "Once there was a dragon."]
    story = stories.write_story(Script(texts), spec, "best_of_n", seed=1, record=False)
    assert story.text == GOOD.strip() and len(story.calls) == stories.BEST_OF_N
    assert [c["seed"] for c in story.calls] == [1000, 1001, 1002, 1003]


def test_scaffold_names_every_clue_and_retries_a_beat_that_missed():
    spec = StorySpec("a pond", "gentle", 20, 200, ("a frog", "a red boat"))
    texts = ["Pip came to the pond. It was sunny.",      # opening
             "Pip saw a frog. The frog said hello.",      # clue 1: found
             "Pip sang a song.",                          # clue 2: missed, retried
             "Pip found a red boat. The boat was red.",   # clue 2: found on the retry
             "They all went home happy. The end."]        # ending
    backend = Script(texts)
    story = stories.write_story(backend, spec, "scaffold", seed=0, record=False)
    assert story.report.clues == {"a frog": True, "a red boat": True}
    assert len(backend.calls) == 5 and "a red boat" in backend.calls[2][-1]["content"]
    assert "sang a song" not in story.text and "a red boat" in backend.calls[3][-1]["content"]
    # each beat sees the last sentence of the story so far (the whole story made a small model repeat it)
    assert "Just before this part: The frog said hello." in backend.calls[3][-1]["content"]
    assert "Pip came to the pond" not in backend.calls[3][-1]["content"]


def test_fit_length_trims_sentences_without_clues():
    spec = StorySpec("a pond", "gentle", 5, 12, ("a frog",))
    text = stories.fit_length(["One two three. Four five six. Seven eight nine.", "A frog sat. Then it hopped."], spec)
    assert len(stories.words(text)) <= 12 and "frog" in text and text.startswith("One two three.")


def test_compare_reports_progress(capsys):
    spec = StorySpec("a magical forest", "playful", 30, 60, SPEC.clues)
    variants = [stories.Variant("a", "persona"), stories.Variant("b", "checklist")]
    rows, _ = stories.compare(Script([GOOD] * 4), spec, variants, n=2)
    out = capsys.readouterr()
    assert "a: pass rate" in out.out and "b: pass rate" in out.out  # one line per finished variant
    assert "4/4" in out.out and "stories" in out.out  # the bar: stories done of the total, with the time
    assert out.err == ""  # on stdout: one line redrawn in a notebook, no pink stderr boxes
    assert rows[0]["tokens per story"] == 20 and rows[0]["seconds per story"] == 0.01


def test_scaffold_extends_a_short_story_before_its_ending():
    spec = StorySpec("a pond", "gentle", 25, 200, ("a frog",))
    texts = ["Pip came to the pond.", "Pip saw a frog.", "They went home. The end.",   # 12 words: too short
             "They swam and sang and laughed in the warm sun all day long."]           # one more beat
    story = stories.write_story(Script(texts), spec, "scaffold", seed=0, record=False)
    assert story.report.words >= 25 and story.text.rstrip().endswith("The end.")
    assert story.text.index("swam") < story.text.index("went home")


class GrammarScript(Script):
    def generate(self, messages, grammar=None, **sampling):
        self.grammars = getattr(self, "grammars", []) + [grammar]
        return super().generate(messages, **sampling)


def test_scaffold_grammar_forces_each_clue_beat_to_name_its_clue():
    spec = StorySpec("a pond", "gentle", 10, 200, ("a frog",))
    backend = GrammarScript(["Pip came to the pond.", "Pip met a frog, and it hopped.", "They went home happy."])
    story = stories.write_story(backend, spec, "scaffold_grammar", seed=0, record=False)
    hero = stories.beats(spec, 0)[0]["hero"]
    assert backend.grammars[1].startswith(f'root ::= "{hero} met a frog"')
    assert backend.grammars[0].startswith("root ::= [A-Z]")
    assert ":" not in stories.PROSE and "\\n" not in stories.PROSE  # no "Name:" lines, no lists
    assert story.report.clues == {"a frog": True}


def test_scatter_labels_do_not_overlap():
    saved = stories.load_comparison()
    if not saved:
        pytest.skip("no committed comparison")
    fig = stories.compare_figure(saved["rows"])
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) == len(saved["rows"])
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_short_sentence_grammar_bounds_each_sentence():
    beat = stories.beats(SPEC, 0)[1]
    g = stories.beat_grammar(beat, short=True)
    assert g.startswith(f'root ::= "{beat["hero"]} met {beat["clue"]}" [.!] (" " sentence){{2,')
    assert "sentence ::= [A-Z] [a-z']* (\",\"? \" \" [A-Za-z'-]+){1,9} [.!?]" in g  # 2 to 10 words, no ",."


def test_recheck_reads_both_counts_off_the_stored_stories():
    saved = {"stories": {"a": [{"text": "A frog sat. It hopped. The end.", "report": {
        "score": 1.0, "passed": {"length": True, "clues": True, "readability": True, "sentence_length": True,
                                 "repetition": True}}}]}}
    table = stories.recheck(saved)
    assert table.loc[0, "pass rate"] == 1.0 and table.loc[0, "n"] == 1
    assert table.loc[0, "pass rate, textstat's FK grade"] in (0.0, 1.0)


class Continuer:
    """A fake plain-text backend: answers ``complete`` calls with scripted texts in order, keeping each prompt."""

    def __init__(self, texts):
        self.texts, self.prompts, self.kwargs = list(texts), [], []

    def complete(self, prompt, **kw):
        self.prompts.append(prompt)
        self.kwargs.append(kw)
        return stories.Generation(self.texts.pop(0), 30, 12, 0.01, "continuer")


def test_continuation_sees_the_whole_story_and_cuts_each_beat_at_a_sentence_end():
    spec = StorySpec("a pond", "gentle", 10, 400, ("a frog",))
    plan = stories.continuation_beats(spec, 0)
    assert [b["clue"] for b in plan] == [None, "a frog", None] and "a frog" in plan[1]["opens"]
    beat = " They sang a song by the water. Then they swam"  # the beat's tail is cut mid-sentence
    backend = Continuer([beat] * 12)
    story = stories.write_story(backend, spec, "continue", seed=0, record=False, temperature=0.7)
    frame = stories.story_frame(spec)
    assert all(p.startswith(frame) for p in backend.prompts)
    assert plan[0]["opens"] + beat.split(" Then")[0] in backend.prompts[-1]  # the first beat, in the last call
    assert "Then they swam" not in story.text and story.report.passed["whole_sentences"]
    assert story.text.count("\n\n") == 2 and plan[1]["opens"] in story.text
    assert backend.kwargs[0]["stop"] == stories.CONTINUE_STOP and backend.kwargs[0]["temperature"] == 0.7
    assert story.calls[0]["frame"] == frame and stories.prompt_text(story.calls) == frame  # the story is not "told"


def test_continuation_ranked_keeps_the_candidate_the_checker_prefers():
    spec = StorySpec("a pond", "gentle", 10, 120, ("a frog",))  # beats of 21 words: one call a candidate
    good = " They played by the water all day and had fun together in the sun."
    leaky = " Write about a frog in exactly those words. The story begins here."
    backend = Continuer([leaky, good, leaky] * 3)
    story = stories.write_story(backend, spec, "continue_ranked", seed=0, record=False)
    assert len(backend.prompts) == 9 and "exactly those words" not in story.text
    assert story.report.passed["no_leaks"] and story.text.count("played by the water") == 3


def test_continuation_grammar_allows_only_word_shapes():
    g = stories.WORD_GRAMMAR
    assert "{0,11}" in g and '"-"' not in g and "\\n" not in g and "0-9" not in g  # what it may write: test_stories_llm
    backend = Continuer([" A frog sang."] * 12)
    stories.write_story(backend, StorySpec("a pond", "gentle", 5, 400, ("a frog",)), "continue_grammar",
                        seed=0, record=False)
    assert backend.kwargs[0]["grammar"] == g


def test_continuation_needs_a_backend_that_continues_text():
    with pytest.raises(ValueError, match="need a backend that continues plain text.*ScriptedBackend"):
        stories.write_story(ScriptedBackend(), SPEC, "continue", record=False)


def test_whole_sentences_drops_an_unfinished_tail():
    assert stories.whole_sentences('He said, "Hi!" Then the') == 'He said, "Hi!"'
    assert stories.whole_sentences("no end here") == ""


def test_q3_resume_refuses_a_file_written_otherwise(tmp_path):
    path = tmp_path / "q3.json"
    fresh = {"seed": 0, "n": 12, "backend": "LocalLlama(model='x')", "spec": SPEC.to_dict(),
             "profile": {"story_max_tokens": 600}, "rows": [], "stories": {}}
    path.write_text(json.dumps({**fresh, "n": 6, "stories": {"baseline": []}}))
    with pytest.raises(ValueError, match=r"q3.json: field 'n' is 6 there and 12 in this run"):
        stories.resumable(path, fresh)
    path.write_text(json.dumps({**fresh, "stories": {"baseline": []}}))
    assert list(stories.resumable(path, fresh)["stories"]) == ["baseline"]
    path.write_text('{"rows": [\n oops')
    with pytest.raises(ValueError, match=r"q3.json: line 2: not JSON"):
        stories.resumable(path, fresh)


def test_variants_are_named_even_with_commas_inside():
    picked = stories.variants_named("baseline,persona, T=1.0,continuation, best of 3 a beat")
    assert [v.label for v in picked] == ["baseline", "persona, T=1.0", "continuation, best of 3 a beat"]
    assert picked[2].strategy == "continue_ranked"
    with pytest.raises(ValueError, match=r"unknown variants \['persona T=1'\]"):
        stories.variants_named("baseline,persona T=1")


def test_a_story_cut_by_the_token_cap_ends_at_its_last_sentence_end():
    spec = StorySpec("a pond", "gentle", 3, 100, ())
    story = stories.write_story(Script(['Mia went to the pond. "Hello, frog!" she said. She had no']), spec,
                                "persona", record=False)
    assert story.text == 'Mia went to the pond. "Hello, frog!" she said.' and story.report.passed["whole_sentences"]
    assert story.calls[0]["text"].endswith("She had no")  # the call keeps what the model wrote
    assert stories.write_story(Script(["no sentence end at all"]), spec, "persona", record=False).text == \
        "no sentence end at all"  # nothing to keep but the whole


def test_continuation_does_not_glue_onto_the_clue():
    spec = StorySpec("a pond", "gentle", 5, 400, ("a frog",))
    backend = Continuer(["fly flew by. It was green."] * 12)  # "a frog" + "fly ...": a frogfly
    story = stories.write_story(backend, spec, "continue", seed=0, record=False)
    assert "frogfly" not in story.text and story.report.clues == {"a frog": True}


def test_best_story_passes_the_checker_then_reads_best():
    def story(text, score, rep=0.0):
        return {"seed": 0, "text": text, "report": {"score": score, "repetition": rep}}

    comparison = {"source": "results/x.json", "backend": "m",
                  "stories": {"a": [story("A.", 1.0), story("B.", 1.0, 0.01)], "b": [story("C.", 0.9)]}}
    assert stories.best_story([comparison])["story"]["text"] == "A."  # no ratings: the least repetition
    rating = {"text": "B.", "plot": 4, "clues": 4, "fit": 4, "no_leaks": 5}
    best = stories.best_story([comparison, None], [rating, {**rating, "text": "C.", "plot": 5}])
    assert best["story"]["text"] == "B." and best["variant"] == "a" and best["rating"]["plot"] == 4
    assert stories.best_story([None]) is None
