"""Live training curves: record, then render.

``board = LiveCurves("Q1")`` holds plain per-run series; ``board.callback("v2")`` is a
``TrainerCallback`` that records into it and redraws one figure (training loss, validation
accuracy) through a single display handle, throttled, so several runs build up on the same axes.
Without a live front end (nbval, ``make run``, a shell, or ``WORKBOOK_HEADLESS=1``) nothing is
displayed while training; the figure is written as PNG instead. The progress bar stays.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from . import config


def live_frontend() -> bool:
    """True inside a Jupyter kernel, unless ``WORKBOOK_HEADLESS`` says otherwise."""
    if os.environ.get("WORKBOOK_HEADLESS", "").strip() not in ("", "0"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LiveCurves:
    """Training loss and validation accuracy of one or more runs, on shared axes."""

    def __init__(self, title: str = "training", baseline: float | None = None, min_interval: float = 2.0,
                 png: str | os.PathLike | None = None, live: bool | None = None):
        self.title, self.baseline, self.min_interval = title, baseline, min_interval
        self.png = Path(png) if png else config.output_dir("figures") / f"{_slug(title)}.png"
        self.live = live_frontend() if live is None else live
        self.series: dict[str, dict[str, list]] = {}  # run -> {"loss": [(epoch, v)], "accuracy": [...]}
        self._handle = None
        self._last_draw = 0.0

    # -- recording ---------------------------------------------------------------------------
    def record(self, run: str, logs: dict, epoch: float) -> None:
        """Add a Trainer log record (training loss or evaluation metrics) to a run's series."""
        s = self.series.setdefault(run, {"loss": [], "accuracy": []})
        if "loss" in logs:
            s["loss"].append((epoch, float(logs["loss"])))
        if "eval_accuracy" in logs:
            s["accuracy"].append((epoch, float(logs["eval_accuracy"])))

    @classmethod
    def from_results(cls, results, title: str = "committed runs", baseline: float | None = None) -> LiveCurves:
        """A board of finished runs, drawn from their recorded histories (``{name: RunResult}``;
        a ``load_results`` dict works, named by file stem). Nothing is displayed until it is shown."""
        board = cls(title, baseline=baseline, live=False)
        for name, result in results.items():
            label = Path(str(name)).stem
            for logs in result.history:
                board.record(label, logs, logs.get("epoch", 0.0))
        return board

    def callback(self, run: str):
        """A ``TrainerCallback`` that records this run and redraws the board."""
        from transformers import TrainerCallback

        board = self

        class _Curves(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kw):
                if state.is_world_process_zero and logs:
                    board.record(run, logs, state.epoch or 0.0)
                    board.update(force="eval_accuracy" in logs)

            def on_train_end(self, args, state, control, **kw):
                if state.is_world_process_zero:
                    board.update(force=True)
                    board.save()

        return _Curves()

    # -- rendering ---------------------------------------------------------------------------
    def figure(self):
        """A matplotlib Figure of what has been recorded (not registered with pyplot)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.6), layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
        for run, s in self.series.items():
            if s["loss"]:
                ax_loss.plot(*zip(*s["loss"]), label=run, lw=1.2)
            if s["accuracy"]:
                ax_acc.plot(*zip(*s["accuracy"]), marker="o", label=run)
        if self.baseline is not None:
            ax_acc.axhline(self.baseline, color="grey", ls="--", lw=1, label="majority class")
        ax_loss.set(title="training loss", xlabel="epoch", ylabel="loss")
        ax_acc.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy")
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        fig.suptitle(self.title)
        return fig

    def _repr_png_(self) -> bytes:
        """Jupyter shows a board as its PNG, with or without pyplot's inline backend."""
        import io

        buf = io.BytesIO()
        self.figure().savefig(buf, format="png", dpi=90)
        return buf.getvalue()

    def update(self, force: bool = False) -> None:
        """Redraw in place through one display handle, at most every ``min_interval`` seconds."""
        if not self.live or (not force and time.monotonic() - self._last_draw < self.min_interval):
            return
        from IPython.display import Image, display

        image = Image(data=self._repr_png_(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)
        self._last_draw = time.monotonic()

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the figure as PNG (to ``outputs/figures/`` by default) and return the path."""
        path = Path(path) if path else self.png
        path.parent.mkdir(parents=True, exist_ok=True)
        self.figure().savefig(path, dpi=110)
        return path


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_") or "curves"
