"""The comparison study: variants (a strategy and its sampling), their stories measured side by side, the
summary, the recheck of stored stories, and the figure."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from .. import config
from .checking import LIMITS
from .diversity import diversity
from .ratings import RUBRIC
from .spec import StorySpec
from .writing import Story, write_story


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of the comparison: a prompting strategy and its sampling settings."""

    label: str
    strategy: str
    sampling: dict = dataclasses.field(default_factory=dict)


DEFAULT_VARIANTS = (
    Variant("baseline", "baseline", {"temperature": 0.7}),
    Variant("persona", "persona", {"temperature": 0.7}),
    Variant("checklist", "checklist", {"temperature": 0.7}),
    Variant("outline", "outline", {"temperature": 0.7}),
    Variant("revise", "revise", {"temperature": 0.7}),
    Variant("seeded", "seeded", {"temperature": 0.7}),
    Variant("persona, T=1.0", "persona", {"temperature": 1.0, "top_p": 0.95}),
    Variant("seeded, T=1.0", "seeded", {"temperature": 1.0, "top_p": 0.95}),
    Variant("best of 4", "best_of_n", {"temperature": 0.7}),
    Variant("scaffold", "scaffold", {"temperature": 0.7}),
    Variant("scaffold + grammar", "scaffold_grammar", {"temperature": 0.7}),
    Variant("scaffold + short sentences", "scaffold_short", {"temperature": 0.7}),
    Variant("continuation", "continue", {"temperature": 0.7}),
    Variant("continuation, best of 3 a beat", "continue_ranked", {"temperature": 0.7}),
    Variant("continuation + word grammar", "continue_grammar", {"temperature": 0.7}),
    Variant("planned plot, best of 3 a beat", "continue_plot", {"temperature": 0.7}),
)


def variants_named(labels=None) -> tuple[Variant, ...]:
    """The ``DEFAULT_VARIANTS`` with these labels (a list, or a comma-separated string), in that order;
    every one for None. ValueError names the unknown labels and the known ones."""
    if labels is None:
        return DEFAULT_VARIANTS
    known = {v.label: v for v in DEFAULT_VARIANTS}
    wanted = config.split_list(labels, "variants")
    if isinstance(labels, str):  # a label may hold a comma ("persona, T=1.0"): the longest known run of pieces
        pieces, wanted, i = wanted, [], 0
        while i < len(pieces):
            j = next((j for j in range(len(pieces), i, -1) if ", ".join(pieces[i:j]) in known), i + 1)
            wanted.append(", ".join(pieces[i:j]))
            i = j
    unknown = [v for v in wanted if v not in known]
    if unknown:
        raise ValueError(f"unknown variants {unknown}: choose from {', '.join(known)}")
    return tuple(known[v] for v in wanted)


def compare(backend, spec: StorySpec, variants=DEFAULT_VARIANTS, n: int = 4, seed: int = 0,
            max_tokens: int = 600, records=None, progress: bool = True) -> tuple[list[dict], dict[str, list[Story]]]:
    """Write ``n`` stories per variant (seeds ``seed .. seed+n-1``) and measure each set: diversity,
    constraint pass rate, mean score, readability and cost (tokens and seconds per story). A progress
    bar counts stories, and one line is printed per finished variant. Returns (rows, stories by variant)."""
    import sys

    from tqdm import tqdm  # text, not a widget: a saved notebook reopens without "model not found"

    rows, stories = [], {}
    start = time.perf_counter()
    # on stdout: one line redrawn in place in a notebook, not a pink stderr box for each update
    bar = tqdm(total=n * len(variants), desc="stories", unit="story", disable=not progress, file=sys.stdout)
    for v in variants:
        batch = []
        for i in range(n):
            batch.append(write_story(backend, spec, v.strategy, seed + i, records=records, max_tokens=max_tokens,
                                     **v.sampling))
            bar.update(1)
        stories[v.label] = batch
        reports = [s.report for s in batch]
        div = diversity([s.text for s in batch])
        rows.append({"variant": v.label, "strategy": v.strategy, **v.sampling, "n": n,
                     **{k: round(x, 4) for k, x in div.items()},
                     "pass rate": round(sum(r.score == 1 for r in reports) / n, 3),
                     "mean score": round(sum(r.score for r in reports) / n, 3),
                     "clues found": round(sum(sum(r.clues.values()) for r in reports) / max(1, n * len(spec.clues)), 3),
                     "length ok": round(sum(r.in_range for r in reports) / n, 3),
                     "mean words": round(sum(r.words for r in reports) / n, 1),
                     "FK grade": round(_mean([r.fk_grade for r in reports]), 2),
                     "repetition": round(_mean([r.repetition for r in reports]), 4),
                     "tokens per story": round(sum(s.completion_tokens for s in batch) / n, 1),
                     "seconds per story": round(sum(s.seconds for s in batch) / n, 2),
                     **fail_shares(reports, 3)})
        row = rows[-1]
        bar.write(f"{v.label}: pass rate {row['pass rate']:.2f}, mean score {row['mean score']:.2f}, "
                  f"{row['seconds per story']:.1f} s a story ({time.perf_counter() - start:.0f} s so far)")
    bar.close()
    return rows, stories


def fail_shares(reports, digits: int = 3) -> dict:
    """``{"fails <check>": share of reports failing it}`` for every check the reports carry."""
    return {f"fails {check}": round(sum(not r.passed[check] for r in reports) / len(reports), digits)
            for check in reports[0].passed}


def _mean(xs):
    xs = [x for x in xs if x == x]  # drop NaN
    return sum(xs) / len(xs) if xs else float("nan")


def summarize(rows: list[dict], baseline: str = "baseline"):
    """What a comparison says, as a DataFrame: the most varied variant (semantic spread), the least
    alike (self-BLEU), the best constraint score, each against the baseline."""
    import pandas as pd

    table = pd.DataFrame(rows).set_index("variant")
    base = table.loc[baseline]
    picks = [("most varied (semantic spread)", "semantic_spread", table["semantic_spread"].idxmax()),
             ("least alike (self-BLEU)", "self_bleu", table["self_bleu"].idxmin()),
             ("best constraint score", "mean score", table["mean score"].idxmax()),
             ("best pass rate", "pass rate", table["pass rate"].idxmax())]
    return pd.DataFrame([{"what": what, "variant": name, "value": table.loc[name, col], "baseline": base[col]}
                         for what, col, name in picks])


def recheck(saved: dict):
    """Per variant of a saved comparison (``load_comparison``): the pass rate as recorded, and the pass
    rate had readability been judged by textstat's own Flesch-Kincaid grade of the whole text (textstat
    leaves sentences of under three words out of its count, so its grade runs higher on stories full
    of short sentences). Both are read off the stored stories."""
    import pandas as pd
    import textstat

    rows = []
    for label, batch in saved["stories"].items():
        textstat_pass = [all(ok for k, ok in s["report"]["passed"].items() if k != "readability")
                         and textstat.flesch_kincaid_grade(s["text"]) <= LIMITS["fk_grade_max"] for s in batch]
        rows.append({"variant": label, "n": len(batch),
                     "pass rate": sum(s["report"]["score"] == 1 for s in batch) / len(batch),
                     "pass rate, textstat's FK grade": sum(textstat_pass) / len(batch)})
    return pd.DataFrame(rows)


def load_comparison(path: str | os.PathLike | None = None) -> dict | None:
    """A committed comparison (``results/q3_compare.json`` by default), or None when there is none."""
    path = Path(path) if path else config.RESULTS_DIR / "q3_compare.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    inside = path.resolve().is_relative_to(config.PROJ_ROOT)
    saved["source"] = str(path.resolve().relative_to(config.PROJ_ROOT)) if inside else str(path)  # where it was read
    return saved


def compare_figure(rows: list[dict], x: str = "semantic_spread", y: str = "mean score"):
    """Diversity against constraint satisfaction, one labelled point per variant."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(fig)  # a renderer, to measure the labels
    ax = fig.subplots()
    for r in rows:
        ax.scatter(r[x], r[y], s=40)
    ax.set(xlabel=f"{x} (higher: more varied)", ylabel=f"{y} (share of constraints met)",
           title="Story diversity against constraint satisfaction")
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    fig.canvas.draw()
    renderer, placed = fig.canvas.get_renderer(), []
    # each label takes the first offset where it overlaps no label placed before it
    offsets = [(5, 5), (5, -12), (-5, 5), (-5, -12), (5, 16), (-5, 16), (5, -24), (-5, -24)]
    for r in sorted(rows, key=lambda r: (r[y], r[x])):
        for dx, dy in offsets:
            text = ax.annotate(r["variant"], (r[x], r[y]), textcoords="offset points", xytext=(dx, dy), fontsize=8,
                               ha="left" if dx > 0 else "right")
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            text.remove()
        else:
            text = ax.annotate(r["variant"], (r[x], r[y]), textcoords="offset points", xytext=(5, 5), fontsize=8)
            box = text.get_window_extent(renderer)
        placed.append(box)
    return fig


def kept_stories(written: dict, max_tokens: int) -> dict:
    """Every story of a comparison in full, by variant, as the committed JSON keeps it: seed, strategy,
    sampling, text, report and cost."""
    variants = {v.label: v for v in DEFAULT_VARIANTS}
    return {label: [{"seed": s.seed, "strategy": s.strategy, "sampling": variants[label].sampling,
                     "max_tokens": max_tokens, "text": s.text, "report": dataclasses.asdict(s.report),
                     "completion_tokens": s.completion_tokens, "seconds": round(s.seconds, 2), "calls": len(s.calls)}
                    for s in batch] for label, batch in written.items()}


def rescore(saved: dict):
    """Per variant of a saved comparison (``load_comparison``): the pass rate as recorded (the surface counts it
    was scored with) and under today's checker, reader's checks included, read off the stored stories (the
    prompts are not stored, so the copied-prompt check is left out); then the share of stories failing each check."""
    import pandas as pd

    from .checking import check_story

    spec = StorySpec(**saved["spec"])
    rows = []
    for label, batch in saved["stories"].items():
        reports = [check_story(s["text"], spec) for s in batch]
        row = {"variant": label, "n": len(batch),
               "pass rate, as recorded": sum(s["report"]["score"] == 1 for s in batch) / len(batch),
               "pass rate, now": sum(r.score == 1 for r in reports) / len(batch),
               "mean score, now": round(sum(r.score for r in reports) / len(batch), 3)}
        row.update(fail_shares(reports, 2))
        rows.append(row)
    return pd.DataFrame(rows).set_index("variant")


def resumable(path: str | os.PathLike, fresh: dict) -> dict:
    """A comparison file to add variants to: its content, when it was written with the settings of ``fresh``
    (seed, stories per variant, backend, the length cap and the spec); ValueError names the first that differs,
    the file, and what to do. Its rows and stories are kept as written."""
    path = Path(path)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: not JSON ({e.msg}); move it away or choose another --out") from None
    saved.setdefault("n", saved["rows"][0]["n"] if saved.get("rows") else fresh["n"])
    checks = {"seed": (saved.get("seed"), fresh["seed"]), "n": (saved["n"], fresh["n"]),
              "backend": (saved.get("backend"), fresh["backend"]), "spec": (saved.get("spec"), fresh["spec"]),
              "profile.story_max_tokens": (saved.get("profile", {}).get("story_max_tokens"),
                                           fresh["profile"]["story_max_tokens"])}
    for field, (was, now) in checks.items():
        if was != json.loads(json.dumps(now)):  # as the file holds it: a tuple is a list there
            raise ValueError(f"{path}: field {field!r} is {was!r} there and {now!r} in this run, so its stories "
                             "cannot sit in one table with the new ones; run with the same settings, or choose "
                             "another --out")
    saved.setdefault("written_by", {})
    saved.setdefault("stories", {})
    return saved


def best_story(comparisons, ratings=()) -> dict | None:
    """The story to show of saved comparisons (``load_comparison``): among those the checker passes on every check
    (or, where none does, those passing the most), the one a reader rated highest (plot + clues + fit + no_leaks of
    its rating in ``ratings``, an unrated story counting 0), then the least repetition. A dict: the comparison's
    source and backend, the variant, the stored story and its rating (or None); None when there are no stories."""
    rated = {r["text"]: r for r in ratings}
    pool = [{"source": c.get("source", ""), "backend": c.get("backend", ""), "variant": label, "story": s,
             "rating": rated.get(s["text"])}
            for c in comparisons if c for label, batch in c["stories"].items() for s in batch]
    if not pool:
        return None

    def key(p):
        r = p["rating"]
        return (p["story"]["report"]["score"], sum(r[k] for k in RUBRIC) if r else 0,
                -p["story"]["report"]["repetition"])

    return max(pool, key=key)
