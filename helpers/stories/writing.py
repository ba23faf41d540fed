"""The writing levers: a strategy's prompts, best of n ranked by the checker, and the scaffold (beats checked
and retried, optionally under a GBNF grammar), each recorded call by call."""
from __future__ import annotations

import dataclasses
import os
import re
import time

from .checking import READER_CHECKS, StoryReport, check_story, has_clue, rank_key
from .plots import plot_beats
from .records import append_record
from .spec import (
    BEAT_RETRIES,
    BEST_OF_N,
    CONTINUATION,
    StorySpec,
    beats,
    build_messages,
    continuation_beats,
    story_frame,
)
from .text import WORD, clue_words, sentences, stem, words


@dataclasses.dataclass
class Story:
    """A finished story: its text, its report, and every call that made it."""

    text: str
    report: StoryReport
    strategy: str
    calls: list[dict]
    seed: int

    @property
    def completion_tokens(self) -> int:
        """Tokens generated over every call that made the story (its cost, with ``seconds``)."""
        return sum(c["completion_tokens"] for c in self.calls)

    @property
    def seconds(self) -> float:
        """Seconds of generation over every call that made the story."""
        return sum(c["seconds"] for c in self.calls)

    def _repr_html_(self) -> str:
        """The story with each clue's words highlighted and the reader's checks' spans struck in red (the
        check's name on hover), then its report."""
        body = highlight(self.text, list(self.report.clues), self.report.spans())
        return f"<div style='white-space: pre-wrap'>{body}</div>" + self.report._repr_html_()


def highlight(text: str, clues: list[str], spans=()) -> str:
    """``text`` as HTML with every word that matches a clue's content words marked (``<mark>``), and each
    ``(start, end, check)`` of ``spans`` (``StoryReport.spans``) underlined in red, titled with its check."""
    import html

    text = text or ""
    wanted = {w for c in clues for w in clue_words(c)}

    def piece(a, b):
        out, last = [], a
        for m in WORD.finditer(text, a, b):
            out.append(html.escape(text[last:m.start()]))
            word = m.group(0)
            out.append(f"<mark>{html.escape(word)}</mark>" if stem(word) in wanted else html.escape(word))
            last = m.end()
        out.append(html.escape(text[last:b]))
        return "".join(out)

    merged: list[list] = []  # overlapping spans as one, titled with every check that objects to it
    for start, end, check in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] += [check] if check not in merged[-1][2] else []
        else:
            merged.append([start, end, [check]])
    out, pos = [], 0
    for start, end, checks in merged:
        out.append(piece(pos, start))
        out.append(f"<span title='{html.escape(', '.join(checks))}' style='text-decoration: underline wavy red; "
                   f"background: #fde8e8'>{piece(start, end)}</span>")
        pos = end
    out.append(piece(pos, len(text)))
    return "".join(out)


def write_story(backend, spec: StorySpec, strategy: str = "baseline", seed: int = 0, record: bool = True,
                records: str | os.PathLike | None = None, **sampling) -> Story:
    """Run ``strategy`` (one call or several) and check the result; append it to the records file. A story the
    token cap cut mid-sentence ends at its last sentence end (the calls keep what the model wrote)."""
    calls = []

    def call(messages):
        return _call(backend, messages, seed, calls, sampling)

    if strategy == "best_of_n":
        text = _best_of_n(backend, spec, seed, calls, sampling)
    elif strategy.startswith("scaffold"):
        text = _scaffold(backend, spec, seed, calls, sampling, grammar=strategy != "scaffold",
                         short=strategy == "scaffold_short")
    elif strategy in CONTINUATION:
        text = _continue(backend, spec, seed, calls, sampling, CONTINUATION[strategy])
    elif strategy == "outline":
        text = call(build_messages(spec, "outline", outline=call(build_messages(spec, "outline"))))
    elif strategy == "revise":
        draft = call(build_messages(spec, "revise"))
        text = call(build_messages(spec, "revise", draft=draft, report=check_story(draft, spec)))
    else:
        text = call(build_messages(spec, strategy, seed=seed))
    text = text.strip()
    if not SENTENCE_CLOSE.search(text[-3:]):  # cut by the token cap mid-sentence: it ends where a sentence does
        text = whole_sentences(text) or text
    story = Story(text, check_story(text, spec, prompt_text(calls)), strategy, calls, seed)
    if record:
        append_record({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "spec": spec.to_dict(), "strategy": strategy,
                       "backend": type(backend).__name__, "model": calls[-1]["model"], "sampling": sampling,
                       "seed": seed, "calls": calls, "text": text, "report": dataclasses.asdict(story.report),
                       "seconds": round(story.seconds, 3)}, records)
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


def _best_of_n(backend, spec, seed, calls, sampling, n: int = BEST_OF_N) -> str:
    """Sample ``n`` checklist stories (seeds seed·1000 + i) and keep the one the checker ranks first."""
    messages = build_messages(spec, "best_of_n")
    drafts = [_call(backend, messages, seed * 1000 + i, calls, sampling).strip() for i in range(n)]
    prompt = prompt_text(calls[-1:])
    return max(drafts, key=lambda t: rank_key(check_story(t, spec, prompt), spec))


def prompt_text(calls: list[dict]) -> str:
    """What the model was told over ``calls``: the system and user messages' text (not its own answers), and a
    continuation's frame (not the story it continued), for the checker's copied-prompt check."""
    told = [c["frame"] for c in calls if "frame" in c]
    told += [m["content"] for c in calls for m in c.get("messages", ()) if m.get("role") != "assistant"
             and isinstance(m.get("content"), str)]
    return "\n".join(dict.fromkeys(told))


# A continuation stops at a paragraph's end or where a book would close; the text after a beat's last
# sentence end is dropped, so no beat ends mid-sentence.
CONTINUE_STOP = ["\n\n", "The End", "THE END", "The end.", "\n#", "\n*"]
SENTENCE_CLOSE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)]*")

# The continuation grammar: words of real shape (1 to 12 letters, an apostrophe inside), each after one
# space, with sentence punctuation and quotes; no digits, hyphen chains, lists, markup or new lines.
WORD_GRAMMAR = (
    'root ::= piece{1,400}\n'
    'piece ::= " " "\\""? word ("\\"" | [,.!?] "\\""?)?\n'
    'word ::= [A-Za-z] [a-z]{0,11} ("\'" [a-z]{1,2})?\n'
)


def whole_sentences(text: str) -> str:
    """``text`` up to its last sentence end (with closing quotes), or "" when no sentence ends in it."""
    ends = list(SENTENCE_CLOSE.finditer(text))
    return text[:ends[-1].end()] if ends else ""


def _continuation_key(story: str, spec: StorySpec, frame: str, on_plot: tuple[str, str] | None = None) -> tuple:
    """How a continuation's candidates are ranked (higher is better): the reader's checks passed by the story
    so far with it, then all checks but length, then (``on_plot``: the model's words and the plot's problem) how
    close the model's words stay to the problem (MiniLM cosine), then less repetition, then neighbour coherence."""
    r = check_story(story, spec, frame)
    near = 0.0
    if on_plot and on_plot[0].strip():
        from .diversity import _embedder

        a, b = _embedder().encode(list(on_plot), normalize_embeddings=True, show_progress_bar=False)
        near = round(float(a @ b), 2)  # two places: a near tie is left to repetition
    return (sum(r.passed[k] for k in READER_CHECKS), sum(ok for k, ok in r.passed.items() if k != "length"), near,
            -r.repetition, r.reading["neighbour_similarity"] if r.reading else 0.0)


def _continue(backend, spec, seed, calls, sampling, how) -> str:
    """Write the story as plain text continued beat by beat (``continuation_beats``), as ``how`` (the strategy's
    ``spec.Continuation``) says: each call sees the frame and the whole story so far, the program's opening words
    of the beat included, and writes on; the beat is cut at its last sentence end. With ``how.candidates`` > 1,
    that many continuations are drawn for a beat and the one ``_continuation_key`` ranks first is kept. A beat that
    comes back short of 0.8 of its words is continued up to three more times; then the story is fitted to the word
    range. ``how.planned``: the beats of a planned plot (``plots.plot_beats``) in place of ``continuation_beats``;
    ``how.grammar``: decoded under ``WORD_GRAMMAR``."""
    if not hasattr(backend, "complete"):
        raise ValueError(f"the continuation strategies need a backend that continues plain text (a `complete` "
                         f"method, as LocalLlama and OpenAICompatible have); {type(backend).__name__} has none")
    frame = story_frame(spec)
    budget = sampling.get("max_tokens")  # a cap for the whole story is shared between the beats
    kw = {k: v for k, v in sampling.items() if k != "max_tokens"}
    candidates, grammar, planned = how.candidates, how.grammar, how.planned
    plan = (plot_beats if planned else continuation_beats)(spec, seed)
    paragraphs: list[str] = []
    for i, beat in enumerate(plan):
        cap = int(beat["words"] * 1.8) + 16
        if budget:
            cap = min(cap, max(12, budget // len(plan)))
        opens = beat["opens"].rstrip()  # a prompt that ends in a space makes the next word a worse token
        before = "\n\n".join(paragraphs + [""]) if paragraphs else ""
        options = []
        for k in range(candidates):
            text = opens
            for more in range(4):  # the beat, and up to three more calls while it is short of 0.8 of its words
                # a planned beat that the model closed after a sentence or two goes on in a new paragraph (a model
                # that ends paragraphs early, as Gemma does, would otherwise stop at once: a blank line is a stop)
                on = planned and more > 0
                prompt = frame + before + text + ("\n\n" if on else "")
                gen = backend.complete(prompt, max_tokens=cap, seed=seed * 1000 + 20 * i + 4 * k + more,
                                       stop=CONTINUE_STOP, **({"grammar": WORD_GRAMMAR} if grammar else {}), **kw)
                calls.append({"frame": frame, "opens": opens, "prompt": prompt, "text": gen.text,
                              "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
                              "seconds": round(gen.seconds, 3), "model": gen.model, "seed": seed})
                # a continuation that goes on inside the last word ("a friendly dragon" + "fly") loses that piece
                written = re.sub(r"^[A-Za-z'\u2019]+", "", gen.text) if text[-1:].isalpha() and not on else gen.text
                text = whole_sentences(text + (" " if on else "") + written) or text.rstrip(" ,") + "."
                text = _first_sentences(text, int(beat["words"] * 1.5))
                if len(words(text)) >= 0.8 * beat["words"]:
                    break
            options.append(" ".join(text.split()))
        best = options[0] if len(options) == 1 else max(
            options, key=lambda t: _continuation_key("\n\n".join(paragraphs + [t]), spec, frame,
                                                     (t[len(opens):], beat["goal"]) if planned else None))
        paragraphs.append(best)
    return fit_length(paragraphs, spec)


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
            if beat["clue"] is None or has_clue(text, beat["clue"]):
                break
        best = next((t for t in reversed(tries) if beat["clue"] is None or has_clue(t, beat["clue"])), tries[-1])
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
                     if len(ss) > 1 and not any(has_clue(ss[-1], c) for c in spec.clues)]
        if not droppable:
            break
        split[max(droppable)[1]].pop()
    return "\n\n".join(" ".join(ss) for ss in split if ss)
