"""Words and sentences as the checker counts them, once: tokens, sentences, stems, readability."""
from __future__ import annotations

import re

STOPWORDS = set("a an the of with and or in on at to for from by that who which is are was were be his her "
                "its their some very little big".split())
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# A sentence ends at . ! or ?, perhaps followed by closing quotes or a bracket, then space; or at a line break;
# but not after a title or an abbreviation ("Mr. Fox", "Dr. Owl"). The closing quotes stay with their sentence.
_CLOSE = "[\"'\u201d\u2019)]"
SENTENCE_END = re.compile(rf"(?:(?<=[.!?])|(?<=[.!?]{_CLOSE})|(?<=[.!?]{_CLOSE}{_CLOSE}))\s+|\n+")
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "mt", "prof", "sr", "jr", "vs", "etc", "eg", "ie", "no"}


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
