"""The assignment's story specification and the prompts each strategy sends."""
from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING

from .text import sentences

if TYPE_CHECKING:  # the checker's report; checking imports this module
    from .checking import StoryReport


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
    "continue": "the story as plain text, continued over the whole story so far (raw completion, no chat "
                "template); the program opens each beat with the words that bring in its clue, and each beat is "
                "cut at its last sentence end",
    "continue_ranked": "continue, with 3 candidates a beat, ranked by the checker (reader's checks, then repetition "
                       "and coherence)",
    "continue_grammar": "continue, decoded under a grammar of real word shapes: words of 1 to 12 letters "
                        "(an apostrophe inside), single spaces, sentence punctuation and quotes (llama.cpp only)",
    "continue_plot": "continue_ranked over a planned plot (plots.PLOTS): the program writes the problem, asks each "
                     "creature clue for help or finds each thing clue, and resolves the problem; the model writes "
                     "the answers and everything between",
}
@dataclasses.dataclass(frozen=True)
class Continuation:
    """How a strategy that continues plain text writes (``writing._continue``): candidates drawn a beat and ranked
    by the checker, decoding under the word-shape grammar, and the beats of a planned plot (``plots.plot_beats``)
    in place of ``continuation_beats``."""

    candidates: int = 1
    grammar: bool = False
    planned: bool = False


# The strategies that continue plain text (a backend with ``complete``), one spec each.
CONTINUATION = {"continue": Continuation(), "continue_ranked": Continuation(candidates=3),
                "continue_grammar": Continuation(grammar=True),
                "continue_plot": Continuation(candidates=3, planned=True)}
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


# How a continuation beat opens: the program's words, so that each clue comes in as a character or object
# ("Soon Mila came upon a talking squirrel" ... the model finishes the sentence and writes on). Openings differ
# from beat to beat, so that no opening is a template.
OPENERS = ["Soon {hero} came upon {clue}", "After a while, {hero} saw {clue}", "Just then, {clue} appeared",
           "A little later, {hero} and friends found {clue}", "Then, near a big tree, {hero} spotted {clue}",
           "Next, {hero} noticed {clue}"]


# One short story in the voice wanted (short sentences, easy words, something happens, a warm end), shown
# before the story to continue: a model that continues text writes on in the voice it was shown.
FRAME_EXAMPLE = (
    "Story 1: The Lost Kite\n\n"
    "Tom had a red kite. One windy day, the wind took it up, up, up. \"Come back!\" said Tom. A kind goose "
    "flew by. She caught the string in her beak and brought the kite down. Tom said thank you. Then Tom and the "
    "goose played with the kite until the sun went down.\n\n"
    "Tom ran home with a big smile. The end.\n\n"
)


def story_frame(spec: StorySpec) -> str:
    """The plain text a continuation starts from, as a book of stories would read: what kind of stories these
    are, one example in the voice wanted (``FRAME_EXAMPLE``), and the next story's title. It is not part of the
    story; the checker's copied-prompt check compares the story with it."""
    return (f"{spec.style.capitalize()} bedtime stories for {spec.age}-year-old children: short sentences, easy "
            f"words, a happy ending.\n\n{FRAME_EXAMPLE}Story 2: {spec.topic.title()}\n\n")


def continuation_beats(spec: StorySpec, seed: int = 0) -> list[dict]:
    """The continuation's plan: an opening sentence (hero, setting, topic), one beat per clue opened by an
    ``OPENERS`` line that names it, and an ending opened by the evening; each with a word budget that adds up
    to the middle of the range."""
    s = story_seed(seed)
    rng = random.Random(seed)
    openers = rng.sample(OPENERS, k=min(len(OPENERS), len(spec.clues))) if spec.clues else []
    hero = s["hero"]
    plan = [{"name": "opening", "clue": None, "hero": hero,
             "opens": f"Once upon a time, {s['setting']}, {hero} went out to play in {spec.topic}."}]
    plan += [{"name": f"clue {i + 1}", "clue": clue, "hero": hero,
              "opens": openers[i % len(openers)].format(hero=hero, clue=clue)}
             for i, clue in enumerate(spec.clues)]
    plan.append({"name": "ending", "clue": None, "hero": hero, "opens": f"When the sun went down, {hero}"})
    budget = (spec.min_words + spec.max_words) // 2 // len(plan)
    return [{**b, "words": max(8, budget)} for b in plan]


def build_messages(spec: StorySpec, strategy: str = "baseline", *, seed: int | None = None,
                   outline: str | None = None, draft: str | None = None, report: StoryReport | None = None,
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
