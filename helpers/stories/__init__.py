"""Q3: stories for a 5-year-old under constraints, from a local or an OpenAI-compatible LLM, as a package
by concern:

* ``spec``: ``StorySpec`` (checked when built) and ``build_messages(spec, strategy)``: the prompts.
* ``text``: words and sentences, counted once; ``checking``: ``check_story(text, spec) -> StoryReport``.
* ``diversity``: distinct-n, self-BLEU, semantic spread; ``records``: the JSON Lines record of every story.
* ``writing``: ``write_story`` runs a strategy end to end (best of n, the scaffold and its grammars, the
  continuation of plain text).
* ``reading``: what a reader catches (leaks, cut sentences, non-words, templates, easy words, coherence).
* ``ratings``: hand ratings of stories (``results/q3_ratings.jsonl``) and the checker's agreement with them.
* ``study``: ``compare`` variants side by side, ``summarize``, ``recheck``, ``rescore``; ``form``: the widget forms.

The backends (``LocalLlama``, ``OpenAICompatible``) are shared machinery in ``helpers.llm``, re-exported here
because every story call goes through one of them.
"""
from ..llm import BackendError, Generation, LocalLlama, OpenAICompatible, embedded_gguf, gemma_gguf, gguf_path  # noqa: F401,E501
from .checking import LIMITS, READER_CHECKS, StoryReport, check_story, clues_found, has_clue, rank_key  # noqa: F401
from .diversity import distinct_n, diversity, self_bleu, semantic_spread  # noqa: F401
from .form import form_range, rating_candidates, rating_form, story_form  # noqa: F401
from .ratings import RUBRIC, add_rating, agreement, cohen_kappa, item_agreement, load_ratings, ratings_path  # noqa: F401
from .reading import READER_LIMITS, Reading, read  # noqa: F401
from .records import append_record, read_records, records_path  # noqa: F401
from .spec import (  # noqa: F401
    BEAT_RETRIES,
    BEST_OF_N,
    CONTINUATION,
    EXAMPLE_SPEC,
    NAMES,
    OPENERS,
    PERSONA,
    SETTINGS,
    STRATEGIES,
    TWISTS,
    StorySpec,
    beats,
    build_messages,
    continuation_beats,
    story_frame,
    story_seed,
)
from .study import (  # noqa: F401
    DEFAULT_VARIANTS,
    Variant,
    best_story,
    compare,
    compare_figure,
    kept_stories,
    load_comparison,
    recheck,
    rescore,
    resumable,
    summarize,
    variants_named,
)
from .text import ABBREVIATIONS, SENTENCE_END, STOPWORDS, WORD, clue_words, readability, sentences, stem, words  # noqa: F401
from .writing import (  # noqa: F401
    CONTINUE_STOP,
    PROSE,
    WORD_GRAMMAR,
    Story,
    beat_grammar,
    fit_length,
    highlight,
    prompt_text,
    whole_sentences,
    write_story,
)
