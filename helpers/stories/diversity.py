"""Diversity of a set of stories: distinct-n, self-BLEU and semantic spread (MiniLM embeddings)."""
from __future__ import annotations

import functools

from .text import words


@functools.cache
def _embedder():
    """The embedded MiniLM as a sentence-transformers model (loaded once, from the installed package)."""
    from sentence_transformers import SentenceTransformer

    from ..models import embedded_model_dir

    return SentenceTransformer(str(embedded_model_dir()), device="cpu")


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
