"""The story checker: length, clues, readability and repetition (surface counts), and what a reader catches
(``reading``: leaked instructions, sentences cut off, non-words, template openings, easy words, coherence),
each a named check with a pass mark."""
from __future__ import annotations

import dataclasses

from .reading import READER_LIMITS, Reading, read
from .spec import StorySpec
from .text import clue_words, readability, sentences, stem, words

# Pass marks. A story read aloud to a 5-year-old sits around grade 1-3, but the clues themselves
# ("magical", "butterfly", "treasure") are long words, so grade 5 is the line a good story clears.
LIMITS = {"fk_grade_max": 5.0, "mean_sentence_words_max": 14.0, "repetition_max": 0.10}
READER_CHECKS = ("no_leaks", "whole_sentences", "real_words", "no_template", "easy_words", "coherence")


@dataclasses.dataclass
class StoryReport:
    """How a story meets its spec: each measure, each constraint's pass or fail, and a score (the
    share of constraints passed)."""

    words: int
    in_range: bool
    clues: dict[str, bool]
    flesch_reading_ease: float
    fk_grade: float
    sentences: int
    mean_sentence_words: float
    repetition: float
    passed: dict[str, bool]
    score: float
    min_words: int | None = None  # the spec's range, for the report
    max_words: int | None = None
    reading: dict | None = None  # ``reading.Reading`` as a dict: spans and measures of the reader's checks

    def spans(self) -> list[tuple[int, int, str]]:
        """The reader's checks' offending spans, ``(start, end, check)`` in text order."""
        return Reading(**self.reading).spans() if self.reading else []

    def rows(self) -> list[dict]:
        """One row per constraint: passed, what was measured, and the limit."""
        clues_found = sum(self.clues.values())
        return [
            {"constraint": "length", "passed": self.passed["length"], "measured": f"{self.words} words",
             "limit": f"{self.min_words} to {self.max_words} words"},
            {"constraint": "clues", "passed": self.passed["clues"], "measured": f"{clues_found} of {len(self.clues)}",
             "limit": "every clue, in its own words: " + "; ".join(
                 f"{c} {'✓' if ok else '✗'}" for c, ok in self.clues.items())},
            {"constraint": "readability", "passed": self.passed["readability"],
             "measured": f"grade {self.fk_grade:.1f} (reading ease {self.flesch_reading_ease:.0f})",
             "limit": f"Flesch-Kincaid grade <= {LIMITS['fk_grade_max']:g}"},
            {"constraint": "sentence_length", "passed": self.passed["sentence_length"],
             "measured": f"{self.mean_sentence_words:.1f} words a sentence ({self.sentences} sentences)",
             "limit": f"<= {LIMITS['mean_sentence_words_max']:g}"},
            {"constraint": "repetition", "passed": self.passed["repetition"],
             "measured": f"{100 * self.repetition:.1f} % of 3-word phrases repeat",
             "limit": f"<= {100 * LIMITS['repetition_max']:g} %"},
        ] + self._reader_rows()

    def _reader_rows(self) -> list[dict]:
        r, lim = self.reading, READER_LIMITS
        if not r:
            return []

        def quoted(spans, k=3):
            shown = "; ".join(f"\u201c{t[:40]}\u201d" for *_, t in spans[:k])
            return f"{len(spans)}: {shown}" + (" ..." if len(spans) > k else "") if spans else "none"

        return [
            {"constraint": "no_leaks", "passed": self.passed["no_leaks"], "measured": quoted(r["leaks"]),
             "limit": "no instructions, meta-talk, labels or lists"},
            {"constraint": "whole_sentences", "passed": self.passed["whole_sentences"], "measured": quoted(r["cuts"]),
             "limit": "every paragraph ends at a sentence end"},
            {"constraint": "real_words", "passed": self.passed["real_words"], "measured": quoted(r["nonwords"]),
             "limit": f"<= {lim['nonwords_max']} non-words (wordfreq Zipf < {lim['nonword_zipf']:g}; names allowed)"},
            {"constraint": "no_template", "passed": self.passed["no_template"], "measured": quoted(r["templates"]),
             "limit": f"no sentence opening {lim['template_repeats']} times or more"},
            {"constraint": "easy_words", "passed": self.passed["easy_words"],
             "measured": f"{100 * r['easy_share']:.0f} % on the Dale-Chall easy list",
             "limit": f">= {100 * lim['easy_share_min']:g} %"},
            {"constraint": "coherence", "passed": self.passed["coherence"],
             "measured": f"neighbours {r['neighbour_similarity']:.2f}, topic {r['topic_similarity']:.2f}, "
                         f"{len(r['breaks'])} breaks",
             "limit": f"neighbours >= {lim['neighbour_min']:g}, topic >= {lim['topic_min']:g}, "
                      f"<= {lim['breaks_max']} breaks (cosine < {lim['break_below']:g})"},
        ]

    def _repr_html_(self) -> str:
        """A table in a notebook: ✓ or ✗ per constraint, with the measured value and the limit."""
        import html

        body = "".join(f"<tr><td>{'✓' if r['passed'] else '✗'}</td><td>{r['constraint']}</td>"
                       f"<td>{html.escape(r['measured'])}</td><td>{html.escape(r['limit'])}</td></tr>"
                       for r in self.rows())
        return (f"<table><thead><tr><th></th><th>constraint</th><th>measured</th><th>limit</th></tr></thead>"
                f"<tbody>{body}</tbody></table><p>score {self.score:.2f}: {sum(self.passed.values())} of "
                f"{len(self.passed)} constraints met</p>")

    def feedback(self) -> str:
        """The failed constraints, in words a model can act on."""
        lines = []
        if not self.passed["length"]:
            lines.append(f"- It has {self.words} words; it must have between the asked numbers of words.")
        for clue, found in self.clues.items():
            if not found:
                lines.append(f"- It never mentions {clue}; include {clue} by name.")
        if not self.passed["readability"]:
            lines.append(f"- It reads at grade {self.fk_grade:.1f}; use shorter, simpler words and sentences.")
        if not self.passed["sentence_length"]:
            lines.append(f"- Sentences average {self.mean_sentence_words:.1f} words; keep them under 12.")
        if not self.passed["repetition"]:
            lines.append(f"- {100 * self.repetition:.0f}% of its three-word phrases repeat; vary the wording.")
        r = self.reading or {}
        if r and not self.passed["no_leaks"]:
            lines.append("- It contains instructions or talk about the story (" +
                         "; ".join(t for *_, t in r["leaks"][:3]) + "); tell only the story itself.")
        if r and not self.passed["whole_sentences"]:
            lines.append("- A paragraph stops in the middle of a sentence; finish every sentence.")
        if r and not self.passed["real_words"]:
            lines.append("- It has words that are not English (" + ", ".join(t for *_, t in r["nonwords"][:3]) +
                         "); use real, simple words.")
        if r and not self.passed["no_template"]:
            lines.append("- Sentences keep starting the same way; vary how they begin.")
        if r and not self.passed["easy_words"]:
            lines.append("- Too many words a young child does not know; use easier ones.")
        if r and not self.passed["coherence"]:
            lines.append("- The story jumps between ideas; let each sentence follow from the one before.")
        return "\n".join(lines) or "- No problems found; polish the story."


def check_story(text: str, spec: StorySpec, prompt: str | None = None, reader: bool = True) -> StoryReport:
    """Measure a story against its spec: the surface counts, then (``reader``) the reader's checks of
    ``reading.read``, with ``prompt`` (what the model was asked) for the copied-prompt check. Empty or garbage
    text gives a failing report, never an error."""
    toks = words(text)
    clues = clues_found(toks, spec.clues)
    n_sentences = len(sentences(text))
    mean_len = len(toks) / n_sentences if n_sentences else 0.0
    trigrams = list(zip(toks, toks[1:], toks[2:]))
    repetition = 1 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0
    ease, grade = readability(toks, n_sentences)
    passed = {
        "length": spec.min_words <= len(toks) <= spec.max_words,
        "clues": all(clues.values()),
        "readability": bool(toks) and grade <= LIMITS["fk_grade_max"],
        "sentence_length": bool(n_sentences) and mean_len <= LIMITS["mean_sentence_words_max"],
        "repetition": bool(trigrams) and repetition <= LIMITS["repetition_max"],
    }
    reading = read(text, spec, prompt) if reader else None
    if reading:
        passed.update(reading.passed)
    return StoryReport(len(toks), passed["length"], clues, round(ease, 2), round(grade, 2), n_sentences,
                       round(mean_len, 2), round(repetition, 4), passed, sum(passed.values()) / len(passed),
                       spec.min_words, spec.max_words, dataclasses.asdict(reading) if reading else None)



def rank_key(report: StoryReport, spec: StorySpec) -> tuple:
    """How the checker ranks stories: constraints passed, then clues found, then closeness to the
    word range. Higher is better."""
    off = max(spec.min_words - report.words, report.words - spec.max_words, 0)
    return (report.score, sum(report.clues.values()), -off)


def clues_found(toks: list[str], clues) -> dict[str, bool]:
    """For each clue, whether all its content words occur (stemmed) among the words ``toks``."""
    stems = {stem(w) for w in toks}
    return {clue: all(w in stems for w in clue_words(clue)) for clue in clues}


def has_clue(text: str, clue: str) -> bool:
    return clues_found(words(text), [clue])[clue]
