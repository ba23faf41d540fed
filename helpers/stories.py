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
    "best_of_n": "checklist prompt sampled n times; the checker keeps the best-scoring story",
    "scaffold": "a program-driven plan in beats (opening, one per clue, ending), each checked for its clue "
                "and retried, then fitted to the word range",
    "scaffold_grammar": "scaffold, decoded under a GBNF grammar: plain prose only (no lists, no 'Name:' lines), and "
                        "each clue beat starts by naming its clue (llama.cpp backends only)",
    "scaffold_short": "scaffold_grammar with sentences of at most 10 words, built into the grammar",
}
# How many samples best_of_n draws, and how often scaffold retries a beat that misses its clue.
BEST_OF_N, BEAT_RETRIES = 4, 2

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


def beats(spec: StorySpec, seed: int = 0) -> list[dict]:
    """The scaffold's plan: an opening, one beat per clue, an ending. Each beat has an instruction,
    the clue it must contain (or None) and a word budget; the budgets add up to the middle of the range."""
    s = story_seed(seed)
    plan = [{"name": "opening", "clue": None, "hero": s["hero"],
             "what": f"Begin the story: introduce {s['hero']}, {s['setting']}, in {spec.topic}."}]
    plan += [{"name": f"clue {i + 1}", "clue": clue, "hero": s["hero"],
              "what": f"Continue the story: {s['hero']} meets {clue}. Name {clue} in exactly those words."}
             for i, clue in enumerate(spec.clues)]
    plan.append({"name": "ending", "clue": None, "hero": s["hero"],
                 "what": f"End the story warmly: {s['twist'].split(' and ')[0]} is resolved, and everyone is happy."})
    budget = (spec.min_words + spec.max_words) // 2 // len(plan)
    return [{**b, "words": max(8, budget)} for b in plan]


def build_messages(spec: StorySpec, strategy: str = "baseline", *, seed: int | None = None,
                   outline: str | None = None, draft: str | None = None, report: "StoryReport | None" = None,
                   beat: dict | None = None, so_far: str = "") -> list[dict]:
    """Chat messages for one call of ``strategy``. Two-call strategies take what the first call
    produced: ``outline`` (then write from it) or ``draft`` and its ``report`` (then revise);
    ``scaffold`` takes the ``beat`` to write and the story ``so_far``; ``best_of_n`` is ``checklist``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    ask = f"Write a story for a {spec.age}-year-old child. {_constraints(spec)}"
    if strategy.startswith("scaffold"):
        if beat is None:
            raise ValueError("the scaffold strategy writes one beat per call: pass beat= (see beats())")
        # Only the last sentence of the story so far: a small model given the whole story repeats it.
        last = sentences(so_far)[-1:] if so_far.strip() else []
        before = f"Just before this part: {last[0]}\n" if last else ""
        return [{"role": "system", "content": PERSONA.format(age=spec.age)},
                {"role": "user", "content": f"A {spec.style} story for a {spec.age}-year-old about {spec.topic}. "
                                            f"{before}{beat['what']} Write about {beat['words']} words, in short "
                                            "sentences. Write only this part."}]
    if strategy == "best_of_n":
        strategy = "checklist"
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
# A sentence ends at . ! or ?, perhaps followed by closing quotes or a bracket, then space; or at a line break;
# but not after a title or an abbreviation ("Mr. Fox", "Dr. Owl").
SENTENCE_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+|\n+")
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "mt", "prof", "sr", "jr", "vs", "etc", "eg", "ie", "no"}
# Pass marks. A story read aloud to a 5-year-old sits around grade 1-3, but the clues themselves
# ("magical", "butterfly", "treasure") are long words, so grade 5 is the line a good story clears.
LIMITS = {"fk_grade_max": 5.0, "mean_sentence_words_max": 14.0, "repetition_max": 0.10}


def words(text: str) -> list[str]:
    """Lower-cased words (letters and inner apostrophes)."""
    return [w.lower() for w in WORD.findall(text or "")]


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` that hold at least one word: split at ``SENTENCE_END``, then a piece
    that ends in an abbreviation ("Mr.") is joined to the next. The one sentence count of the checker."""
    pieces = [p for p in SENTENCE_END.split((text or "").strip()) if p]
    out: list[str] = []
    for piece in pieces:
        if out and out[-1].endswith(".") and words(out[-1]) and \
                words(out[-1])[-1].replace(".", "") in ABBREVIATIONS and not out[-1].endswith(".."):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return [s for s in out if words(s)]


def readability(toks: list[str], n_sentences: int) -> tuple[float, float]:
    """(Flesch reading ease, Flesch-Kincaid grade) from the checker's own word and sentence counts,
    with textstat's syllable count per word, so every measure counts the same words and sentences."""
    import textstat

    if not toks or not n_sentences:
        return 0.0, float("nan")
    syllables = sum(max(1, textstat.syllable_count(w)) for w in toks)
    per_sentence, per_word = len(toks) / n_sentences, syllables / len(toks)
    return 206.835 - 1.015 * per_sentence - 84.6 * per_word, 0.39 * per_sentence + 11.8 * per_word - 15.59


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
    """``outputs/stories.jsonl``: where every story is appended."""
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

    def _repr_html_(self) -> str:
        """The story with each clue's words highlighted, then its report."""
        return f"<div style='white-space: pre-wrap'>{highlight(self.text, list(self.report.clues))}</div>" + \
            self.report._repr_html_()


def highlight(text: str, clues: list[str]) -> str:
    """``text`` as HTML with every word that matches a clue's content words marked (``<mark>``)."""
    import html

    wanted = {w for c in clues for w in clue_words(c)}

    def mark(m):
        word = m.group(0)
        return f"<mark>{html.escape(word)}</mark>" if stem(word) in wanted else html.escape(word)

    out, last = [], 0
    for m in WORD.finditer(text or ""):
        out.append(html.escape(text[last:m.start()]))
        out.append(mark(m))
        last = m.end()
    out.append(html.escape((text or "")[last:]))
    return "".join(out)


def write_story(backend, spec: StorySpec, strategy: str = "baseline", seed: int = 0, record: bool = True,
                records: str | os.PathLike | None = None, **sampling) -> Story:
    """Run ``strategy`` (one or two calls) and check the result; append it to the records file."""
    calls = []

    def call(messages):
        return _call(backend, messages, seed, calls, sampling)

    if strategy == "best_of_n":
        text = _best_of_n(backend, spec, seed, calls, sampling)
    elif strategy.startswith("scaffold"):
        text = _scaffold(backend, spec, seed, calls, sampling, grammar=strategy != "scaffold",
                         short=strategy == "scaffold_short")
    elif strategy == "outline":
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


def _call(backend, messages, seed, calls, sampling, max_tokens=None, grammar=None) -> str:
    kw = dict(sampling, **({"max_tokens": max_tokens} if max_tokens else {}))
    if grammar is not None:
        kw["grammar"] = grammar
    gen = backend.generate(messages, seed=seed, **kw)
    calls.append({"messages": messages, "text": gen.text, "prompt_tokens": gen.prompt_tokens,
                  "completion_tokens": gen.completion_tokens, "seconds": round(gen.seconds, 3), "model": gen.model,
                  "seed": seed})
    return gen.text


def rank_key(report: StoryReport, spec: StorySpec) -> tuple:
    """How the checker ranks stories: constraints passed, then clues found, then closeness to the
    word range. Higher is better."""
    off = max(spec.min_words - report.words, report.words - spec.max_words, 0)
    return (report.score, sum(report.clues.values()), -off)


def _best_of_n(backend, spec, seed, calls, sampling, n: int = BEST_OF_N) -> str:
    """Sample ``n`` checklist stories (seeds seed·1000 + i) and keep the one the checker ranks first."""
    messages = build_messages(spec, "best_of_n")
    drafts = [_call(backend, messages, seed * 1000 + i, calls, sampling).strip() for i in range(n)]
    return max(drafts, key=lambda t: rank_key(check_story(t, spec), spec))


def clues_found(toks: list[str], clues) -> dict[str, bool]:
    """For each clue, whether all its content words occur (stemmed) among the words ``toks``."""
    stems = {stem(w) for w in toks}
    return {clue: all(w in stems for w in clue_words(clue)) for clue in clues}


def _has_clue(text: str, clue: str) -> bool:
    return clues_found(words(text), [clue])[clue]


PROSE = "[A-Za-z ,.!?'-]"  # letters and sentence punctuation: no lists, no "Name:" lines, no markup


def beat_grammar(beat: dict, short: bool = False) -> str:
    """A GBNF grammar for one beat: plain prose; a clue beat must open by naming its clue
    ("Pip met a friendly dragon ..."), so the clue cannot be left out. With ``short`` the prose
    is whole sentences of 2 to 10 words each."""
    opening = f"{beat['hero']} met {beat['clue']}".replace("\\", "").replace('"', "") if beat.get("clue") else None
    if short:
        n = max(3, beat["words"] // 6)
        rules = ("sentence ::= [A-Z] [a-z']* (\",\"? \" \" [A-Za-z'-]+){1,9} [.!?]\n")
        first = f'"{opening}" [.!]' if opening else "sentence"
        return f'root ::= {first} (" " sentence){{2,{n}}}\n{rules}'
    length = f"{PROSE}{{30,{max(60, beat['words'] * 7)}}}"
    if opening is None:
        return f"root ::= [A-Z] {length}\n"
    return f'root ::= "{opening}" [ ,.!] {length}\n'


def _scaffold(backend, spec, seed, calls, sampling, retries: int = BEAT_RETRIES, grammar: bool = False,
              short: bool = False) -> str:
    """Write beat by beat (``beats``); a beat that misses its clue is retried up to ``retries`` times
    (then the try that came closest is kept); the joined story is then fitted to the word range.
    With ``grammar`` each beat is decoded under ``beat_grammar`` (a backend that takes ``grammar=``)."""
    parts: list[str] = []
    plan = beats(spec, seed)
    budget = sampling.get("max_tokens")  # a cap for the whole story is shared between the beats
    for i, beat in enumerate(plan):
        cap = int(beat["words"] * 2.5) + 16  # tokens: room for the beat, not for a whole story
        if budget:
            cap = min(cap, max(12, budget // len(plan)))
        tries = []
        for attempt in range(retries + 1):
            text = _call(backend, build_messages(spec, "scaffold", beat=beat, so_far=" ".join(parts)),
                         seed * 1000 + 10 * i + attempt, calls, sampling, max_tokens=cap,
                         grammar=beat_grammar(beat, short) if grammar else None).strip()
            tries.append(text)
            if beat["clue"] is None or _has_clue(text, beat["clue"]):
                break
        best = next((t for t in reversed(tries) if beat["clue"] is None or _has_clue(t, beat["clue"])), tries[-1])
        parts.append(_first_sentences(best, beat["words"] * 2))
    # Too short: more middle beats, before the ending, until the story reaches the range (at most 3).
    extra = {"name": "more", "clue": None, "words": max(8, (spec.min_words + spec.max_words) // 2 // len(plan)),
             "what": "Continue the story with what the friends do next together, before the ending."}
    for k in range(3):
        if sum(len(words(p)) for p in parts) >= spec.min_words:
            break
        cap = int(extra["words"] * 2.5) + 16
        more = _call(backend, build_messages(spec, "scaffold", beat=extra, so_far=" ".join(parts[:-1])),
                     seed * 1000 + 500 + k, calls, sampling, max_tokens=min(cap, budget or cap),
                     grammar=beat_grammar({**extra, "hero": plan[0]["hero"]}, short) if grammar else None).strip()
        parts.insert(len(parts) - 1, _first_sentences(more, extra["words"] * 2))
    return fit_length(parts, spec)


def _first_sentences(text: str, max_words: int) -> str:
    """Whole sentences from the start of ``text``, up to about ``max_words`` words (at least one)."""
    out, n = [], 0
    for s in sentences(text):
        if out and n + len(words(s)) > max_words:
            break
        out.append(s)
        n += len(words(s))
    return " ".join(out)


def fit_length(parts: list[str], spec: StorySpec) -> str:
    """Join the beats; while the story is over ``max_words``, drop the last sentence of the longest
    beat that holds no clue (never a beat's first sentence). A story under the range is left as it is."""
    split = [sentences(p) for p in parts]

    def total():
        return sum(len(words(s)) for ss in split for s in ss)

    while total() > spec.max_words:
        droppable = [(len(words(" ".join(ss))), i) for i, ss in enumerate(split)
                     if len(ss) > 1 and not any(_has_clue(ss[-1], c) for c in spec.clues)]
        if not droppable:
            break
        split[max(droppable)[1]].pop()
    return "\n\n".join(" ".join(ss) for ss in split if ss)


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
)


def variants_named(labels=None) -> tuple[Variant, ...]:
    """The ``DEFAULT_VARIANTS`` with these labels (a list, or a comma-separated string), in that order;
    every one for None. ValueError names the unknown labels and the known ones."""
    if labels is None:
        return DEFAULT_VARIANTS
    known = {v.label: v for v in DEFAULT_VARIANTS}
    wanted = [v.strip() for v in labels.split(",")] if isinstance(labels, str) else list(labels)
    wanted = [v for v in wanted if v]
    unknown = [v for v in wanted if v not in known]
    if unknown or not wanted:
        raise ValueError(f"unknown variants {unknown}: choose from {', '.join(known)}")
    return tuple(known[v] for v in wanted)


def compare(backend, spec: StorySpec, variants=DEFAULT_VARIANTS, n: int = 4, seed: int = 0,
            max_tokens: int = 600, records=None, progress: bool = True) -> tuple[list[dict], dict[str, list[Story]]]:
    """Write ``n`` stories per variant (seeds ``seed .. seed+n-1``) and measure each set: diversity,
    constraint pass rate, mean score, readability and cost (tokens and seconds per story). A progress
    bar counts stories, and one line is printed per finished variant. Returns (rows, stories by variant)."""
    from tqdm import tqdm  # text, not a widget: a saved notebook reopens without "model not found"

    rows, stories = [], {}
    start = time.perf_counter()
    bar = tqdm(total=n * len(variants), desc="stories", unit="story", disable=not progress)
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
                     "tokens per story": round(sum(c["completion_tokens"] for s in batch for c in s.calls) / n, 1),
                     "seconds per story": round(sum(c["seconds"] for s in batch for c in s.calls) / n, 2)})
        row = rows[-1]
        bar.write(f"{v.label}: pass rate {row['pass rate']:.2f}, mean score {row['mean score']:.2f}, "
                  f"{row['seconds per story']:.1f} s a story ({time.perf_counter() - start:.0f} s so far)")
    bar.close()
    return rows, stories


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
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


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


def form_range(spec: StorySpec, max_tokens: int) -> tuple[int, int]:
    """The form's default word range: the spec's, narrowed to what ``max_tokens`` can hold (a token
    is about 0.75 of a word), so a short profile does not ask for stories it cannot write."""
    most = max(10, int(max_tokens * 0.7))
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
    length = w.IntRangeSlider(value=(low, high), min=5, max=1000, step=5, description="words", **wide)
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
