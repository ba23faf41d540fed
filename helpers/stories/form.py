"""The form in notebook 03: pick the constraints, a strategy, a backend and a temperature; the story comes
back with its report."""
from __future__ import annotations

import random
import time
from pathlib import Path

from ..llm import BackendError
from .spec import EXAMPLE_SPEC, STRATEGIES, StorySpec
from .writing import write_story


def form_range(spec: StorySpec, max_tokens: int) -> tuple[int, int]:
    """The form's default word range: the spec's, narrowed to what ``max_tokens`` can hold (SmolLM2's stories in
    results/q3_compare.json ran 0.73 to 0.89 words a token), so a short profile does not ask for stories it
    cannot write, nor report a story the cap let through as too long."""
    most = max(10, int(max_tokens * 0.9))
    if spec.max_words <= most:
        return spec.min_words, spec.max_words
    return min(spec.min_words, max(5, most // 2)), most


def story_form(backends: dict, spec: StorySpec = EXAMPLE_SPEC, max_tokens: int = 600):
    """An ipywidgets form (topic, style, length, clues, strategy, backend, temperature, Generate)
    that writes a story with the chosen backend and shows it with its report. While it writes,
    Generate is disabled and a progress line says so."""
    import ipywidgets as w
    from IPython.display import display

    wide = {"style": {"description_width": "110px"}, "layout": w.Layout(width="560px")}
    low, high = form_range(spec, max_tokens)
    topic = w.Text(spec.topic, description="topic", **wide)
    style = w.Text(spec.style, description="style", **wide)
    length = w.IntRangeSlider(value=(low, high), min=5, max=1000, step=1, description="words", **wide)
    clues = w.Textarea("\n".join(spec.clues), description="clues", placeholder="one per line",
                       rows=max(4, len(spec.clues) + 1), **wide)
    strategy = w.Dropdown(options=list(STRATEGIES), value="persona", description="strategy", **wide)
    backend = w.Dropdown(options=list(backends), description="backend", **wide)
    temperature = w.FloatSlider(value=0.8, min=0.0, max=1.5, step=0.05, description="temperature", **wide)
    button = w.Button(description="Generate", button_style="primary", tooltip="write a story")
    status = w.HTML("")
    busy = w.IntProgress(value=0, min=0, max=1, bar_style="info", layout=w.Layout(width="200px", visibility="hidden"))
    out = w.Output()

    def on_click(_):
        out.clear_output()  # this form's own output area only
        button.disabled, button.description = True, "writing…"
        busy.layout.visibility, status.value = "visible", f"writing with {backend.value} ({strategy.value})…"
        start = time.perf_counter()
        try:
            with out:
                try:
                    s = StorySpec(topic.value, style.value, length.value[0], length.value[1],
                                  tuple(c.strip() for c in clues.value.splitlines() if c.strip()))
                    story = write_story(backends[backend.value], s, strategy.value, seed=random.randrange(10**6),
                                        temperature=temperature.value, max_tokens=max_tokens)
                except (ValueError, BackendError) as e:
                    print(f"error: {e}")
                    return
                display(story)
            status.value = f"done in {time.perf_counter() - start:.1f} s"
        finally:
            button.disabled, button.description = False, "Generate"
            busy.layout.visibility = "hidden"

    button.on_click(on_click)
    form = w.VBox([topic, style, length, clues, strategy, backend, temperature,
                   w.HBox([button, busy, status]), out])
    form.button, form.output = button, out  # for tests and for scripting the form
    return form


def rating_candidates(*comparisons: dict) -> dict:
    """The stories of saved comparisons (``load_comparison``) to rate, by a label ("variant, seed N", and the file's
    name where two files hold the same variant): each with its text, spec, and where it came from."""
    out = {}
    for saved in comparisons:
        if not saved:
            continue
        model = saved.get("backend", "")
        for variant, batch in saved["stories"].items():
            for s in batch:
                label = f"{variant}, seed {s['seed']}"
                if label in out:  # the same variant in another file (another model): say which
                    label += f" ({Path(saved.get('source', '')).stem or model})"
                out[label] = {"text": s["text"], "spec": saved["spec"], "variant": variant,
                                                       "seed": s["seed"], "model": model,
                                                       "source": saved.get("source", "")}
    return out


def rating_form(candidates: dict, path=None):
    """An ipywidgets form to rate a story by the rubric (``ratings.RUBRIC``: 1-5 per item and a yes/no verdict)
    and append the rating to ``path`` (``results/q3_ratings.jsonl``), so that a class can grow the rated set.
    The story is shown with its report; a wrong field is named in the status line and nothing is written."""
    import ipywidgets as w
    from IPython.display import display

    from .checking import check_story
    from .ratings import RUBRIC, VERDICT, add_rating, load_ratings, ratings_path
    from .spec import StorySpec
    from .writing import highlight

    wide = {"style": {"description_width": "110px"}, "layout": w.Layout(width="560px")}
    story = w.Dropdown(options=list(candidates), description="story", **wide)
    sliders = {item: w.IntSlider(value=3, min=1, max=5, description=item, tooltip=text, **wide)
               for item, text in RUBRIC.items()}
    acceptable = w.Checkbox(value=False, description="acceptable", tooltip=VERDICT)
    rater = w.Text("", description="rater", placeholder="your name or initials", **wide)
    note = w.Text("", description="note", placeholder="what decided it", **wide)
    button = w.Button(description="Add rating", button_style="primary")
    status = w.HTML("")
    shown = w.Output()
    target = path or ratings_path()

    def show(_=None):
        shown.clear_output()
        c = candidates[story.value]
        report = check_story(c["text"], StorySpec(**c["spec"]))
        with shown:
            display(w.HTML(f"<div style='white-space: pre-wrap; max-height: 320px; overflow-y: auto'>"
                           f"{highlight(c['text'], list(report.clues), report.spans())}</div>"))

    def on_click(_):
        c = candidates[story.value]
        try:
            add_rating(c["text"], c["spec"], {k: s.value for k, s in sliders.items()}, acceptable.value, rater.value,
                       source=c["source"], model=c["model"], variant=c["variant"], seed=c["seed"], note=note.value,
                       path=target)
        except ValueError as e:
            status.value = f"not added: {e}"
            return
        status.value = f"added to {target} ({len(load_ratings(target))} ratings)"

    story.observe(show, names="value")
    button.on_click(on_click)
    if candidates:
        show()
    form = w.VBox([story, shown, w.HTML("<i>" + "<br>".join(f"<b>{k}</b>: {v}" for k, v in RUBRIC.items()) +
                                        f"<br>{VERDICT}</i>"), *sliders.values(), acceptable, rater, note,
                   w.HBox([button, status])])
    form.button, form.status, form.sliders, form.acceptable, form.rater, form.story = \
        button, status, sliders, acceptable, rater, story  # for tests and for scripting the form
    return form
