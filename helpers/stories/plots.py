"""Planned plots for the continuation: the program tells what happens (a problem, the clues as helpers or
finds, a way out, a warm end) and the model writes the lines between.

A small model continued beat by beat wanders: every clue is met, nothing follows from it (the readers of
``results/q3_ratings.jsonl`` scored every continuation's plot 1 or 2). Here each story draws one plot from
``PLOTS`` by its seed: the problem comes from the seeded story's twist (``spec.story_seed``), every clue that is
a creature is asked for help with it and answers in the model's words, every clue that is a thing is found and
looked at, and the plot's own line resolves the problem before the evening ends the story. The program's lines
differ from clue to clue (no opening is repeated as a template). The program wrote 40 to 42 % of the words of the
committed planned-plot stories (33 to 61 % a story); its lines are the ``opens`` of each beat, in every call's record.
"""
from __future__ import annotations

import random

from .text import words

# Head nouns of clues that are creatures: they are asked for help and answer; any other clue is a thing found.
CREATURES = frozenset(
    "squirrel butterfly dragon cat kitten dog puppy bird fox owl bear rabbit bunny unicorn fairy frog mouse duck fish "
    "turtle elephant lion tiger bee deer hedgehog robot giant troll wizard witch pony horse monkey snail ladybug "
    "spider penguin whale dolphin mermaid elf gnome king queen prince princess girl boy friend goose hen cow pig "
    "sheep goat badger otter beaver snake lizard dinosaur parrot bat moth caterpillar ant worm".split())

# One plot per twist of ``spec.TWISTS``: the problem, how a creature clue is asked for help (each line ends
# where the creature's answer begins, in the model's words), how a thing clue is looked at, and the way out.
PLOTS = {
    "someone is shy and needs a friend": {
        "problem": "{hero} wanted a friend to play with. But {hero} was shy, and it was hard to say hello.",
        "ask": ['{hero} took a deep breath and said, "Hello!" {The} smiled and said, "',
                '"Will you play with me?" asked {hero} in a small voice. {The} said, "',
                '{hero} gave a little wave. {The} waved back and said, "'],
        "find": "{hero} showed {the} to the new friends. ",
        "solve": "Now {hero} had many friends, and {hero} was not shy any more.",
    },
    "a map gets blown away by the wind": {
        "problem": '{hero} had a little map with a big red X on it. Then, whoosh! The wind blew the map away. '
                   '"Oh no!" said {hero}.',
        "ask": ['"Have you seen my map?" asked {hero}. {The} said, "',
                '{hero} told {the} about the lost map. {The} said, "',
                '"Can you help me find my map?" asked {hero}. {The} said, "'],
        "find": "{hero} looked at {the} very closely. ",
        "solve": "At last, {hero} saw the map. It was stuck in a bush! All the friends cheered.",
    },
    "the treasure is not what anyone expected": {
        "problem": '{hero} had heard that a treasure was hidden somewhere in {topic}. "I will find it!" '
                   'said {hero}.',
        "ask": ['"Do you know where the treasure is?" asked {hero}. {The} said, "',
                '{hero} told {the} about the treasure. {The} said, "',
                '"Will you help me look for the treasure?" asked {hero}. {The} said, "'],
        "find": "{hero} opened it slowly. Inside, there was ",
        "solve": "{hero} smiled. The best treasure of all was the new friends.",
    },
    "a little one gets lost and is found": {
        "problem": "{hero}'s little brother, Tim, ran off to chase a leaf. Soon Tim was gone! \"Tim! Where are "
                   "you?\" called {hero}.",
        "ask": ['"Have you seen my little brother?" asked {hero}. {The} said, "',
                '{hero} told {the} that Tim was lost. {The} said, "',
                '"Can you help me find Tim?" asked {hero}. {The} said, "'],
        "find": "{hero} looked at {the}. ",
        "solve": "At last, they heard a little giggle. It was Tim, hiding behind a tree! {hero} gave Tim a big hug.",
    },
    "everyone must work together to cross a river": {
        "problem": "{hero} wanted to visit Grandma on the other side of the river. But the river was wide, and "
                   "there was no bridge.",
        "ask": ['"How can I cross the river?" asked {hero}. {The} said, "',
                '{hero} told {the} about Grandma and the river. {The} said, "',
                '"Will you help me cross the river?" asked {hero}. {The} said, "'],
        "find": "{hero} looked at {the}. ",
        "solve": "Together, the friends pushed a long log over the water, and everyone crossed the river. Grandma "
                 "gave them all a big hug.",
    },
    "a lost song has to be remembered": {
        "problem": '{hero} loved to sing a happy song. But that day, {hero} could not remember it! "La, la... oh '
                   'no, how does it go?" said {hero}.',
        "ask": ['"Do you know my happy song?" asked {hero}. {The} said, "',
                '{hero} told {the} about the lost song. {The} said, "',
                '"Can you help me remember my song?" asked {hero}. {The} said, "'],
        "find": "{hero} looked at {the}. ",
        "solve": "At last, {hero} remembered the song, and all the friends sang it together.",
    },
}
MEET = ["Soon {hero} met {clue}.", "After a while, {hero} saw {clue}.", "Just then, {clue} came by.",
        "Next, {hero} met {clue}.", "Near a big tree, {hero} spotted {clue}.", "A little later, {clue} appeared."]
FIND = ["Under a bush, {hero} found {clue}!", "Then {hero} and the friends found {clue}.",
        "Behind a rock, {hero} saw {clue}."]


def is_creature(clue: str) -> bool:
    """Whether ``clue``'s last word names a creature (``CREATURES``, a plural's s dropped)."""
    last = clue.split()[-1].lower().strip(".,!?")
    return last in CREATURES or last.rstrip("s") in CREATURES


def definite(clue: str) -> str:
    """``clue`` with "the" for its article ("a talking squirrel" -> "the talking squirrel")."""
    parts = clue.split()
    return " ".join(["the"] + parts[1:]) if parts[0].lower() in ("a", "an", "the") else clue


def plot_beats(spec, seed: int = 0) -> list[dict]:
    """The planned plot for ``spec`` and ``seed`` as continuation beats: each ``opens`` with the program's lines
    (the model writes on after them), names its ``clue`` (or None), and has a word budget (``words``) that adds
    up to a little over the range's minimum, and the plot's problem (``goal``), which the candidates that stay on
    it are ranked by. The seed picks the hero, the setting, the twist (``story_seed``)
    and the order of the program's lines."""
    from .spec import story_seed

    s = story_seed(seed)
    rng = random.Random(seed)
    hero, plot = s["hero"], PLOTS[s["twist"]]
    meet, find, ask = (rng.sample(lines, len(lines)) for lines in (MEET, FIND, plot["ask"]))
    opening = f"Once upon a time, {s['setting']}, {hero} went out to play in {spec.topic}. "
    problem = plot["problem"].format(hero=hero, topic=spec.topic)
    plan = [{"name": "opening", "clue": None, "opens": opening + problem}]
    met = found = 0
    for i, clue in enumerate(spec.clues):
        the = definite(clue)
        fill = {"hero": hero, "clue": clue, "the": the, "The": the[0].upper() + the[1:]}
        if is_creature(clue):
            line = meet[met % len(meet)].format(**fill) + " " + ask[met % len(ask)].format(**fill)
            met += 1
        else:
            line = find[found % len(find)].format(**fill) + " " + plot["find"].format(**fill)
            found += 1
        plan.append({"name": f"clue {i + 1}", "clue": clue, "opens": line[0].upper() + line[1:]})
    plan.append({"name": "way out", "clue": None, "opens": plot["solve"].format(hero=hero)})
    plan.append({"name": "ending", "clue": None, "opens": f"When the sun went down, {hero}"})
    budget = max(8, (spec.min_words + (spec.max_words - spec.min_words) // 5) // len(plan))
    return [{**b, "hero": hero, "goal": problem, "words": max(budget, len(words(b["opens"])) + 8)} for b in plan]
