"""Q3: stories for a 5-year-old under constraints, from a local or an OpenAI-compatible LLM.

* ``StorySpec`` (checked when built) and ``build_messages(spec, strategy)``: the prompts.
* Backends with one interface, ``generate(messages, **sampling) -> Generation``: ``LocalLlama``
  (llama-cpp-python on a GGUF file; by default the embedded SmolLM2-135M-Instruct) and
  ``OpenAICompatible`` (the official ``openai`` client: ChatGPT, Ollama, vLLM, llama.cpp's server).
* ``check_story(text, spec) -> StoryReport``: length, clues, readability, repetition, pass/fail.
* ``diversity(texts)``: distinct-n, self-BLEU, semantic spread.
* ``write_story`` runs a strategy end to end and appends the record to ``outputs/stories.jsonl``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import time
import warnings
from pathlib import Path

from . import config
from .llm import BackendError, Generation, LocalLlama, OpenAICompatible, embedded_gguf  # noqa: F401 (public names)

# ----------------------------------------------------------------------------------------------
# The specification and the prompts
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StorySpec:
    """What the story must be: topic, style, length in words, clues to include, reader's age."""

    topic: str
    style: str
    min_words: int
    max_words: int
    clues: tuple[str, ...] = ()
    age: int = 5

    def __post_init__(self):
        object.__setattr__(self, "clues", tuple(self.clues))
        for field in ("topic", "style"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field).strip():
                raise ValueError(f"StorySpec.{field} must be a non-empty string, got {getattr(self, field)!r}")
        for field in ("min_words", "max_words", "age"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"StorySpec.{field} must be a positive whole number, got {value!r}")
        if self.min_words > self.max_words:
            raise ValueError(f"StorySpec.min_words ({self.min_words}) is above max_words ({self.max_words})")
        for i, clue in enumerate(self.clues):
            if not isinstance(clue, str) or not clue.strip():
                raise ValueError(f"StorySpec.clues[{i}] is blank: every clue must be a non-empty string")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The assignment's example.
EXAMPLE_SPEC = StorySpec(topic="a magical forest", style="playful", min_words=300, max_words=500,
                         clues=("a talking squirrel", "a flying rainbow butterfly", "a friendly dragon",
                                "a hidden treasure"))

STRATEGIES = {
    "baseline": "one plain request with the constraints",
    "persona": "a children's author persona with rules for a 5-year-old reader",
    "checklist": "persona plus an explicit constraint checklist to tick off",
    "outline": "outline first, then write from the outline (two calls)",
    "revise": "persona draft, then one revision from the checker's report (two calls)",
    "seeded": "persona plus a random story seed (names, setting, twist) from a seeded generator",
}

PERSONA = (
    "You are an award-winning author of picture books for {age}-year-old children. You write "
    "short sentences (mostly under 12 words) with familiar, concrete words, a clear beginning, "
    "middle and end, gentle repetition a child can join in with, no scary or violent scenes, and a "
    "warm, gentle ending. You write only the story: no title page, no notes, no questions."
)
NAMES = ["Pip", "Mila", "Theo", "Rosa", "Kofi", "Luna", "Bo", "Ada", "Juno", "Sami", "Ivy", "Nico"]
SETTINGS = ["at sunrise", "on a rainy afternoon", "during a windy autumn day", "under a full moon",
            "on the first snowy morning", "on a hot summer day"]
TWISTS = ["someone is shy and needs a friend", "a map gets blown away by the wind",
          "the treasure is not what anyone expected", "a little one gets lost and is found",
          "everyone must work together to cross a river", "a lost song has to be remembered"]


def story_seed(seed: int) -> dict:
    """Random story ingredients (a hero's name, a setting, a twist), the same for the same seed."""
    rng = random.Random(seed)
    return {"hero": rng.choice(NAMES), "setting": rng.choice(SETTINGS), "twist": rng.choice(TWISTS)}


def _constraints(spec: StorySpec) -> str:
    clues = "; ".join(spec.clues) if spec.clues else "none"
    return (f"Topic: {spec.topic}. Style: {spec.style}. Length: {spec.min_words} to {spec.max_words} words. "
            f"Include all of these: {clues}.")


def build_messages(spec: StorySpec, strategy: str = "baseline", *, seed: int | None = None,
                   outline: str | None = None, draft: str | None = None, report: "StoryReport | None" = None
                   ) -> list[dict]:
    """Chat messages for one call of ``strategy``. Two-call strategies take what the first call
    produced: ``outline`` (then write from it) or ``draft`` and its ``report`` (then revise)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    ask = f"Write a story for a {spec.age}-year-old child. {_constraints(spec)}"
    if strategy == "baseline":
        return [{"role": "user", "content": ask}]
    system = {"role": "system", "content": PERSONA.format(age=spec.age)}
    if strategy == "checklist":
        ticks = [f"- between {spec.min_words} and {spec.max_words} words",
                 f"- about {spec.topic}, told in a {spec.style} style"]
        ticks += [f"- {clue} appears in the story, named in those words" for clue in spec.clues]
        ticks += ["- short sentences and words a 5-year-old knows", "- a gentle, happy ending"]
        checks = "\nBefore you finish, check every item:\n" + "\n".join(ticks)
        return [system, {"role": "user", "content": ask + checks}]
    if strategy == "seeded":
        s = story_seed(0 if seed is None else seed)
        return [system, {"role": "user", "content": ask + f" The hero is called {s['hero']}. It happens "
                                                          f"{s['setting']}, and {s['twist']}."}]
    if strategy == "outline":
        if outline is None:
            return [system, {"role": "user", "content": f"Plan a story for a {spec.age}-year-old child. "
                             f"{_constraints(spec)} Write a numbered outline of 5 short steps "
                             "(beginning, problem, three events, happy ending), one line each, naming "
                             "where each of the things to include appears."}]
        return [system, {"role": "user", "content": f"{ask}\nFollow this outline:\n{outline.strip()}"}]
    if strategy == "revise" and draft is not None:
        if report is None:
            raise ValueError("the revise strategy's second call needs the draft's report (check_story)")
        return [system, {"role": "user", "content": f"{ask}\nHere is a draft:\n\n{draft.strip()}\n\n"
                         f"A checker found these problems:\n{report.feedback()}\n"
                         "Rewrite the whole story so that it fixes them. Write only the story."}]
    return [system, {"role": "user", "content": ask}]  # persona, and revise's first call


# ----------------------------------------------------------------------------------------------
# The checker
# ----------------------------------------------------------------------------------------------

STOPWORDS = set("a an the of with and or in on at to for from by that who which is are was were be his her "
                "its their some very little big".split())
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# A sentence ends at . ! or ?, perhaps followed by closing quotes or a bracket, then space; or at a line break.
SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+|\n+")
# Pass marks. A story read aloud to a 5-year-old sits around grade 1-3, but the clues themselves
# ("magical", "butterfly", "treasure") are long words, so grade 5 is the line a good story clears.
LIMITS = {"fk_grade_max": 5.0, "mean_sentence_words_max": 14.0, "repetition_max": 0.10}


def words(text: str) -> list[str]:
    """Lower-cased words (letters and inner apostrophes)."""
    return [w.lower() for w in WORD.findall(text or "")]


def stem(word: str) -> str:
    """A light stemmer, enough to match a clue's words in their other forms (dragons, flying, flies)."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"),
                         ("ing", ""), ("ed", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not (suffix == "s" and w.endswith("ss")):
            w = w[: len(w) - len(suffix)] + repl
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":  # running -> runn -> run
        w = w[:-1]
    return w


def clue_words(clue: str) -> list[str]:
    """The content words of a clue, stemmed ("a friendly dragon" -> friendly, dragon)."""
    content = [w for w in words(clue) if w not in STOPWORDS]
    return [stem(w) for w in (content or words(clue))]


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
    import textstat

    toks = words(text)
    stems = {stem(w) for w in toks}
    clues = {clue: all(w in stems for w in clue_words(clue)) for clue in spec.clues}
    sentences = [s for s in SENTENCE_END.split((text or "").strip()) if words(s)]
    mean_len = len(toks) / len(sentences) if sentences else 0.0
    trigrams = list(zip(toks, toks[1:], toks[2:]))
    repetition = 1 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0
    if toks:
        ease, grade = float(textstat.flesch_reading_ease(text)), float(textstat.flesch_kincaid_grade(text))
    else:
        ease, grade = 0.0, float("nan")
    passed = {
        "length": spec.min_words <= len(toks) <= spec.max_words,
        "clues": all(clues.values()),
        "readability": bool(toks) and grade <= LIMITS["fk_grade_max"],
        "sentence_length": bool(sentences) and mean_len <= LIMITS["mean_sentence_words_max"],
        "repetition": bool(trigrams) and repetition <= LIMITS["repetition_max"],
    }
    return StoryReport(len(toks), passed["length"], clues, round(ease, 2), round(grade, 2), len(sentences),
                       round(mean_len, 2), round(repetition, 4), passed, sum(passed.values()) / len(passed))


# ----------------------------------------------------------------------------------------------
# Diversity
# ----------------------------------------------------------------------------------------------

_EMBEDDER = None


def _embedder():
    """The embedded MiniLM as a sentence-transformers model (loaded once, from the installed package)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        from sentence_transformers import SentenceTransformer

        from .models import embedded_model_dir

        _EMBEDDER = SentenceTransformer(str(embedded_model_dir()), device="cpu")
    return _EMBEDDER


def distinct_n(texts: list[str], n: int) -> float:
    """Unique lower-cased word n-grams over all n-grams, across all the texts (corpus level)."""
    grams = [g for t in texts for g in zip(*(words(t)[i:] for i in range(n)))]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_bleu(texts: list[str]) -> float:
    """Mean BLEU (0-1, sacrebleu) of each text against all the others: high means alike."""
    import sacrebleu

    if len(texts) < 2:
        return float("nan")
    scores = [sacrebleu.sentence_bleu(t, [o for j, o in enumerate(texts) if j != i]).score / 100
              for i, t in enumerate(texts)]
    return sum(scores) / len(scores)


def semantic_spread(texts: list[str]) -> float:
    """Mean pairwise cosine distance of the texts' MiniLM sentence embeddings: high means varied."""
    if len(texts) < 2:
        return float("nan")
    emb = _embedder().encode(list(texts), normalize_embeddings=True, convert_to_tensor=True)
    sims = emb @ emb.T
    n = len(texts)
    return float((n * n - sims.sum()) / (n * (n - 1)))  # mean of 1 - cos over pairs i != j


def diversity(texts: list[str]) -> dict:
    """``distinct_1``, ``distinct_2``, ``self_bleu`` and ``semantic_spread`` of a set of texts."""
    texts = [t or "" for t in texts]
    return {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "self_bleu": self_bleu(texts), "semantic_spread": semantic_spread(texts)}


# ----------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------


def records_path() -> Path:
    return config.output_dir() / "stories.jsonl"


def append_record(record: dict, path: str | os.PathLike | None = None) -> Path:
    """Append one record as one JSON line, written whole by a single ``write`` on a file opened for
    appending, then flushed to disk: a crash loses at most the line being written. A torn last
    line left by an earlier crash is closed off first, so it cannot swallow this one."""
    path = Path(path) if path else records_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_records(path: str | os.PathLike | None = None) -> list[dict]:
    """All whole records, decoded line by line. A line that is not UTF-8 or not a JSON object (a
    torn line from a crash) is skipped with a warning naming the file and line; the rest are read."""
    path = Path(path) if path else records_path()
    if not path.is_file():
        return []
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
            except (UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
                warnings.warn(f"{path}, line {lineno}: not a whole record (torn by a crash?); skipped", stacklevel=2)
                continue
            out.append(rec)
    return out


# ----------------------------------------------------------------------------------------------
# Writing stories, and comparing strategies
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Story:
    """A finished story: its text, its report, and every call that made it."""

    text: str
    report: StoryReport
    strategy: str
    calls: list[dict]
    seed: int


def write_story(backend, spec: StorySpec, strategy: str = "baseline", seed: int = 0, record: bool = True,
                records: str | os.PathLike | None = None, **sampling) -> Story:
    """Run ``strategy`` (one or two calls) and check the result; append it to the records file."""
    calls = []

    def call(messages):
        gen = backend.generate(messages, seed=seed, **sampling)
        calls.append({"messages": messages, "text": gen.text, "prompt_tokens": gen.prompt_tokens,
                      "completion_tokens": gen.completion_tokens, "seconds": round(gen.seconds, 3),
                      "model": gen.model})
        return gen.text

    if strategy == "outline":
        text = call(build_messages(spec, "outline", outline=call(build_messages(spec, "outline"))))
    elif strategy == "revise":
        draft = call(build_messages(spec, "revise"))
        text = call(build_messages(spec, "revise", draft=draft, report=check_story(draft, spec)))
    else:
        text = call(build_messages(spec, strategy, seed=seed))
    text = text.strip()
    story = Story(text, check_story(text, spec), strategy, calls, seed)
    if record:
        append_record({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "spec": spec.to_dict(), "strategy": strategy,
                       "backend": type(backend).__name__, "model": calls[-1]["model"], "sampling": sampling,
                       "seed": seed, "calls": calls, "text": text, "report": dataclasses.asdict(story.report),
                       "seconds": round(sum(c["seconds"] for c in calls), 3)}, records)
    return story


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
)


def compare(backend, spec: StorySpec, variants=DEFAULT_VARIANTS, n: int = 4, seed: int = 0,
            max_tokens: int = 600, records=None) -> tuple[list[dict], dict[str, list[Story]]]:
    """Write ``n`` stories per variant (seeds ``seed .. seed+n-1``) and measure each set: diversity,
    constraint pass rate, mean score and readability. Returns (rows, stories by variant)."""
    rows, stories = [], {}
    for v in variants:
        batch = [write_story(backend, spec, v.strategy, seed + i, records=records, max_tokens=max_tokens, **v.sampling)
                 for i in range(n)]
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
                     "repetition": round(_mean([r.repetition for r in reports]), 4)})
    return rows, stories


def _mean(xs):
    xs = [x for x in xs if x == x]  # drop NaN
    return sum(xs) / len(xs) if xs else float("nan")


def compare_figure(rows: list[dict], x: str = "semantic_spread", y: str = "mean score"):
    """Diversity against constraint satisfaction, one labelled point per variant."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for r in rows:
        ax.scatter(r[x], r[y], s=40)
        ax.annotate(r["variant"], (r[x], r[y]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xlabel=f"{x} (higher: more varied)", ylabel=f"{y} (share of constraints met)",
           title="Story diversity against constraint satisfaction")
    ax.grid(alpha=0.3)
    return fig


def story_form(backends: dict, spec: StorySpec = EXAMPLE_SPEC, max_tokens: int = 600):
    """An ipywidgets form (topic, style, length, clues, strategy, backend, temperature, Generate)
    that writes a story with the chosen backend and shows it with its report."""
    import ipywidgets as w
    from IPython.display import display

    topic = w.Text(spec.topic, description="topic")
    style = w.Text(spec.style, description="style")
    length = w.IntRangeSlider(value=(spec.min_words, spec.max_words), min=20, max=1000, step=10, description="words")
    clues = w.Textarea("\n".join(spec.clues), description="clues", placeholder="one per line")
    strategy = w.Dropdown(options=list(STRATEGIES), value="persona", description="strategy")
    backend = w.Dropdown(options=list(backends), description="backend")
    temperature = w.FloatSlider(value=0.8, min=0.0, max=1.5, step=0.05, description="temperature")
    button = w.Button(description="Generate", button_style="primary", tooltip="write a story")
    out = w.Output()

    def on_click(_):
        out.clear_output()  # this form's own output area only
        with out:
            try:
                s = StorySpec(topic.value, style.value, length.value[0], length.value[1],
                              tuple(c.strip() for c in clues.value.splitlines() if c.strip()))
                story = write_story(backends[backend.value], s, strategy.value, seed=random.randrange(10**6),
                                    temperature=temperature.value, max_tokens=max_tokens)
            except (ValueError, BackendError) as e:
                print(f"error: {e}")
                return
            print(story.text, "\n")
            display(story.report)

    button.on_click(on_click)
    return w.VBox([topic, style, length, clues, strategy, backend, temperature, button, out])
