"""Hand ratings of stories, and how far the checker agrees with them.

``results/q3_ratings.jsonl`` holds one rating a line: the story in full with its spec and where it came from,
a 1-5 score per ``RUBRIC`` item, the reader's acceptable yes/no verdict, who rated and a note. ``add_rating``
appends one (the form in notebook 03 calls it); ``agreement`` splits the rated stories into a tuning half and a
held-out half, sets the checker's marks on the first (``tune``) and reports Cohen's kappa and the confusion matrix
of the checker's verdict (every check passed) against the readers' on the second.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import os
import time
from pathlib import Path

from .. import config
from .records import append_record, read_records
from .spec import StorySpec

RUBRIC = {
    "plot": "a coherent plot: a beginning, something that happens, an ending that follows (1: no plot, loops or "
            "contradictions; 3: events that follow but wander; 5: a clear little story)",
    "clues": "every clue used as a character or object that makes sense (1: none; 3: some, or named without a "
             "role; 5: all, each with a role)",
    "fit": "fit for a 5-year-old: words and sentences a child follows read aloud, nothing frightening or odd "
           "(1: not for a child; 5: a bedtime story)",
    "no_leaks": "no leaked text: no instructions, talk about the story or to its reader, titles, labels or lists "
                "(1: many; 5: none; cut sentences and invented words count under fit and plot)",
}
VERDICT = "acceptable: would you read it, as it is, to a 5-year-old who asked for this story? (yes/no)"
SCORE_RANGE = (1, 5)
# the marks ``tune`` tries on the tuning half (the rest of READER_LIMITS stay as they are)
GRID = {"easy_share_min": (0.75, 0.80, 0.85, 0.90), "nonwords_max": (0, 1, 2), "template_repeats": (3, 4, 5),
        "neighbour_min": (0.10, 0.15, 0.20, 0.25)}


def ratings_path() -> Path:
    """``results/q3_ratings.jsonl``: the committed ratings, which the form in notebook 03 appends to."""
    return config.RESULTS_DIR / "q3_ratings.jsonl"


def add_rating(text: str, spec: StorySpec | dict, scores: dict, acceptable: bool, rater: str, *, source: str = "",
               model: str = "", variant: str = "", seed: int | None = None, note: str = "",
               path: str | os.PathLike | None = None) -> dict:
    """Check one rating and append it (a whole line, flushed) to ``path`` (``ratings_path()``). ValueError names
    the field that is wrong and what it must be; nothing is written then."""
    spec = spec if isinstance(spec, StorySpec) else StorySpec(**spec)
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text: the story to rate is empty")
    if set(scores) != set(RUBRIC):
        raise ValueError(f"scores: give exactly the rubric's items {sorted(RUBRIC)}; got {sorted(scores)}")
    for item, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, int) or not SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:
            raise ValueError(f"scores[{item!r}]: {value!r} is not a whole number from {SCORE_RANGE[0]} to "
                             f"{SCORE_RANGE[1]}")
    if not isinstance(acceptable, bool):
        raise ValueError(f"acceptable: {acceptable!r} must be True or False")
    if not isinstance(rater, str) or not rater.strip():
        raise ValueError("rater: say who rated (a name or initials), so that raters can be compared")
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "rater": rater.strip(), "source": source, "model": model,
              "variant": variant, "seed": seed, "spec": spec.to_dict(), "text": text, **scores,
              "acceptable": acceptable, "note": note}
    append_record(record, path or ratings_path())
    return record


def load_ratings(path: str | os.PathLike | None = None) -> list[dict]:
    """Every whole rating in ``path`` (``ratings_path()``); a torn line is skipped with a warning naming it."""
    return read_records(path or ratings_path())


@dataclasses.dataclass
class Agreement:
    """The checker against the readers on one half: kappa, the confusion matrix, and the marks used."""

    half: str
    n: int
    kappa: float
    confusion: dict  # {"reader yes": {"checker yes": n, "checker no": n}, "reader no": {...}}
    limits: dict
    accuracy: float

    def table(self):
        import pandas as pd

        return pd.DataFrame(self.confusion).T[["checker yes", "checker no"]]

    def __str__(self) -> str:
        k = "undefined (one verdict only)" if math.isnan(self.kappa) else f"{self.kappa:.2f}"
        return f"{self.half} half: {self.n} stories, kappa {k}, agreement {self.accuracy:.2f}"


def cohen_kappa(a: list[bool], b: list[bool]) -> float:
    """Cohen's kappa of two yes/no ratings of the same items; NaN where chance agreement is 1 (both gave one
    verdict only), where kappa is not defined."""
    n = len(a)
    if n == 0 or n != len(b):
        raise ValueError(f"kappa needs two ratings of the same items: got {len(a)} and {len(b)}")
    observed = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    return float("nan") if chance == 1 else (observed - chance) / (1 - chance)


def halves(ratings: list[dict]) -> tuple[list[dict], list[dict]]:
    """The rated stories split in two, the same way every time: ordered by the reader's verdict, then by a hash of
    the text, and dealt alternately, so each half has as many acceptable stories as the other (give or take one)."""
    order = sorted(ratings, key=lambda r: (r["acceptable"], hashlib.sha1(r["text"].encode()).hexdigest()))
    return order[0::2], order[1::2]


def measured(ratings: list[dict]) -> list[dict]:
    """Each rating with the checker's report of its story (``check_story``, reader's checks included)."""
    from .checking import check_story

    return [{**r, "report": dataclasses.asdict(check_story(r["text"], StorySpec(**r["spec"])))} for r in ratings]


def checker_says(report: dict, limits: dict | None = None) -> bool:
    """The checker's verdict on a story from its report: every surface check and every reader's check (judged
    under ``limits``) passed."""
    from .checking import READER_CHECKS
    from .reading import judge

    surface = all(ok for k, ok in report["passed"].items() if k not in READER_CHECKS)
    reader = judge(report["reading"], report["words"] > 0, report["sentences"], limits)
    return surface and all(reader.values())


def score(rated: list[dict], limits: dict | None, half: str) -> Agreement:
    """Agreement of the checker (under ``limits``) with the readers on ``rated`` (from ``measured``)."""
    from .reading import READER_LIMITS

    reader = [r["acceptable"] for r in rated]
    checker = [checker_says(r["report"], limits) for r in rated]
    cells = {f"reader {a}": {f"checker {b}": sum(1 for x, y in zip(reader, checker)
                                                   if x == (a == "yes") and y == (b == "yes")) for b in ("yes", "no")}
             for a in ("yes", "no")}
    return Agreement(half, len(rated), cohen_kappa(reader, checker) if rated else float("nan"), cells,
                     {**READER_LIMITS, **(limits or {})},
                     sum(x == y for x, y in zip(reader, checker)) / len(rated) if rated else float("nan"))


def tune(rated: list[dict]) -> dict:
    """The marks of ``GRID`` under which the checker agrees best with the readers on ``rated`` (kappa, then
    agreement, then the marks nearest the defaults); the defaults where kappa is undefined for every choice."""
    from .reading import READER_LIMITS

    best, best_key = {}, None
    for values in itertools.product(*GRID.values()):
        limits = dict(zip(GRID, values))
        a = score(rated, limits, "tuning")
        distance = sum(abs(GRID[k].index(v) - GRID[k].index(READER_LIMITS[k])) if READER_LIMITS[k] in GRID[k] else 0
                       for k, v in limits.items())
        key = (-1.0 if math.isnan(a.kappa) else a.kappa, a.accuracy, -distance)
        if best_key is None or key > best_key:
            best, best_key = limits, key
    return best


def agreement(ratings: list[dict] | None = None, rated: list[dict] | None = None) -> tuple[Agreement, Agreement]:
    """Tune the checker's marks on one half of the rated stories and report both halves under those marks:
    (tuning, held-out). The held-out half is the one to quote. ``rated``: the ratings already ``measured``."""
    rated = rated if rated is not None else measured(ratings if ratings is not None else load_ratings())
    tuning, held_out = halves(rated)
    limits = tune(tuning)
    return score(tuning, limits, "tuning"), score(held_out, limits, "held-out")


# Each rubric item beside the checks that stand for it: (item, the score at or below which the reader objects,
# the checks of which one failing is the checker objecting).
ITEM_CHECKS = (("plot", 2, ("no_template", "coherence", "repetition")),
               ("clues", 2, ("clues",)),
               ("fit", 2, ("readability", "easy_words", "sentence_length")),
               ("no_leaks", 3, ("no_leaks",)))


def item_agreement(rated: list[dict]):
    """Per rubric item, how often the reader objects (score at or under the item's line), how often the checks
    that stand for it fail, and Cohen's kappa of the two, over ``rated`` (from ``measured``): which part of a
    reader's judgement the checker can see."""
    import pandas as pd

    rows = []
    for item, line, checks in ITEM_CHECKS:
        reader = [r[item] <= line for r in rated]
        checker = [not all(r["report"]["passed"][c] for c in checks) for r in rated]
        rows.append({"rubric item": f"{item} <= {line}", "checks": ", ".join(checks), "reader objects": sum(reader),
                     "checker objects": sum(checker), "both": sum(a and b for a, b in zip(reader, checker)),
                     "kappa": round(cohen_kappa(reader, checker), 2), "stories": len(rated)})
    return pd.DataFrame(rows).set_index("rubric item")
