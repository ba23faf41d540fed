"""Paths and run profiles.

Every path the workbook reads or writes comes from here, never from a notebook's
working directory. A *profile* sizes the data and the training so the same notebook
runs in CI (``smoke``), on a laptop CPU (``quick``) or as the real experiment (``full``).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

# The repository root: the folder that holds ``helpers/``. ``WORKBOOK_ROOT`` overrides it
# for a non-editable install, where ``__file__`` lives in site-packages.
PROJ_ROOT = Path(os.environ.get("WORKBOOK_ROOT", Path(__file__).resolve().parents[1]))
DATA_DIR = PROJ_ROOT / "data"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
RESULTS_DIR = PROJ_ROOT / "results"  # committed results JSON, produced by runs
OUTPUT_DIR = Path(os.environ.get("WORKBOOK_OUTPUT_DIR", PROJ_ROOT / "outputs"))  # git-ignored


@dataclasses.dataclass(frozen=True)
class Profile:
    """How big a run is. ``None`` for a limit means the whole split."""

    name: str
    train_limit: int | None
    eval_limit: int | None  # validation and test rows
    num_train_epochs: float
    max_length: int
    per_device_train_batch_size: int
    per_device_eval_batch_size: int
    logging_steps: int
    # Q3: stories per prompting strategy and the longest story, in tokens
    stories_per_strategy: int
    story_max_tokens: int
    # Q3: the variants notebook 03 compares live (labels of stories.DEFAULT_VARIANTS); None: every one.
    # The committed comparison (results/q3_compare.json) has them all.
    live_story_variants: tuple[str, ...] | None = None
    live_stories: int | None = None  # stories per variant in that live comparison (None: stories_per_strategy)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    # CI: every notebook in well under 3 minutes on 2 cores. Learning is not the point.
    "smoke": Profile("smoke", train_limit=64, eval_limit=32, num_train_epochs=2, max_length=64,
                     per_device_train_batch_size=16, per_device_eval_batch_size=32,
                     logging_steps=1, stories_per_strategy=2, story_max_tokens=48),
    # A laptop CPU: a few minutes a method, with learning visible on the curves.
    # The live story comparison runs the variants notebook 03's Discussion is about, 3 stories each
    # (about 2 minutes), so that `make run` stays within 20 minutes on 2 cores.
    "quick": Profile("quick", train_limit=None, eval_limit=None, num_train_epochs=3, max_length=128,
                     per_device_train_batch_size=32, per_device_eval_batch_size=64,
                     logging_steps=10, stories_per_strategy=6, story_max_tokens=600,
                     live_story_variants=("baseline", "checklist", "scaffold", "scaffold + grammar"), live_stories=3),
    # The real experiment; a GPU is recommended (about 100 s an epoch on a 2-core CPU).
    "full": Profile("full", train_limit=None, eval_limit=None, num_train_epochs=20, max_length=128,
                    per_device_train_batch_size=32, per_device_eval_batch_size=64,
                    logging_steps=10, stories_per_strategy=12, story_max_tokens=800),
}


def get_profile(name: str | Profile | None = "auto") -> Profile:
    """Return the named profile. ``auto`` (or ``None``) reads ``WORKBOOK_PROFILE`` and otherwise
    means ``full`` with CUDA and ``quick`` without."""
    if isinstance(name, Profile):
        return name
    if name in (None, "auto"):
        name = os.environ.get("WORKBOOK_PROFILE", "auto").strip() or "auto"
        if name == "auto":
            import torch  # imported here: paths must not cost a torch import

            name = "full" if torch.cuda.is_available() else "quick"
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}: choose one of {', '.join(PROFILES)} or 'auto' "
            "(set by argument or by the WORKBOOK_PROFILE environment variable)"
        )
    return PROFILES[name]


def output_dir(*parts: str) -> Path:
    """A folder under ``outputs/`` (created), for figures, checkpoints and records."""
    path = OUTPUT_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def split_list(value, what: str) -> list[str]:
    """A comma-separated string (``"v1,v2"``) or a list, as a list of non-empty names; ValueError naming ``what``."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    if not items or any(not isinstance(v, str) or not v for v in items):
        raise ValueError(f"{what} must be a non-empty comma-separated list, got {value!r}")
    return items
