"""The story checker: length, clues, readability and repetition, each a named check with a pass mark."""
from __future__ import annotations

import dataclasses

from .spec import StorySpec
from .text import clue_words, readability, sentences, stem, words

# Pass marks. A story read aloud to a 5-year-old sits around grade 1-3, but the clues themselves
# ("magical", "butterfly", "treasure") are long words, so grade 5 is the line a good story clears.
LIMITS = {"fk_grade_max": 5.0, "mean_sentence_words_max": 14.0, "repetition_max": 0.10}



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
        return "\n".join(lines) or "- No problems found; polish the story."


def check_story(text: str, spec: StorySpec) -> StoryReport:
    """Measure a story against its spec. Empty or garbage text gives a failing report, never an error."""
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
    return StoryReport(len(toks), passed["length"], clues, round(ease, 2), round(grade, 2), n_sentences,
                       round(mean_len, 2), round(repetition, 4), passed, sum(passed.values()) / len(passed),
                       spec.min_words, spec.max_words)



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
