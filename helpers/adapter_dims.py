"""Q2: bottleneck adapters (AdapterHub's ``adapters``) and their hidden size, explained.

What Q2 adds: a drawing of one layer with its adapter (``layer_figure``) and the numbers the
question asks about (``ratio_check``). Building adapters is shared machinery in
``helpers.bottleneck`` (the training runs use it too); its names are re-exported here.

In ``adapters`` the bottleneck's hidden size is ``int(hidden_size // reduction_factor)``
(``library_hidden_size_line()`` reads that line from the installed package). A
``reduction_factor`` below 1 makes an *up*-projection, so ``reduction_factor = 3/8`` gives a
hidden size of ``8·d_m/3``: exact when ``d_m`` is divisible by 3, floored otherwise.
"""
from __future__ import annotations

import math
from fractions import Fraction

from .bottleneck import (
    CONFIGS,
    MAX_HIDDEN_RATIO,
    PLACES,
    AdapterInfo,
    adapter_modules,
    add_bottleneck_adapter,
    describe,
    expected_hidden_size,
    library_hidden_size_line,
    library_reduction_factor,
    reduction_factor_for,
)

__all__ = ["CONFIGS", "PLACES", "MAX_HIDDEN_RATIO", "AdapterInfo", "reduction_factor_for", "expected_hidden_size",
           "library_reduction_factor", "library_hidden_size_line", "adapter_modules", "describe",
           "add_bottleneck_adapter", "layer_figure", "ratio_check"]


def layer_figure(info: AdapterInfo, model_config):
    """A matplotlib Figure of one transformer layer with the adapter, labelled with the model's sizes."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    d, h, ff = info.d_model, info.hidden_size, model_config.intermediate_size
    both = any(place == PLACES["attention"] for _, place in info.positions)
    parallel = any(place == PLACES["parallel"] for _, place in info.positions)
    n_rows = 7 + both - parallel
    top = 1.35 * n_rows + 0.4
    fig = Figure(figsize=(9, 0.62 * top), layout="constrained")
    ax = fig.subplots()
    ax.set(xlim=(0, 10), ylim=(0, top))
    ax.axis("off")

    def box(x, y, w, text, colour):
        ax.add_patch(FancyBboxPatch((x, y), w, 0.8, boxstyle="round,pad=0.05", fc=colour, ec="black"))
        ax.text(x + w / 2, y + 0.4, text, ha="center", va="center", fontsize=9)

    def arrow(y0, y1, x=3.5):
        ax.annotate("", (x, y1), (x, y0), arrowprops=dict(arrowstyle="->"))

    frozen, adapter = "#dde6f0", "#f6c28b"
    rows = [("input  [batch, seq, %d]" % d, "white"),
            ("multi-head attention  (%d heads, %d -> %d)" % (model_config.num_attention_heads, d, d), frozen)]
    if both:
        rows.append((f"adapter: {d} -> {h} -> {d}  (+ residual)", adapter))
    rows += [("add & LayerNorm  (%d)" % d, frozen), ("feed-forward  %d -> %d -> %d" % (d, ff, d), frozen)]
    if not parallel:
        rows.append((f"adapter: down {d} -> {h}, {info.non_linearity}, up {h} -> {d}  (+ residual)", adapter))
    rows += [("add & LayerNorm  (%d)" % d, frozen), ("output  [batch, seq, %d]" % d, "white")]
    ys = [top - 1.0 - 1.35 * i for i in range(len(rows))]
    for (text, colour), y in zip(rows, ys):
        box(1.0, y, 5.0, text, colour)
    for y0, y1 in zip(ys, ys[1:]):
        arrow(y0, y1 + 0.85)
    if parallel:
        i = next(i for i, (t, _) in enumerate(rows) if t.startswith("feed-forward"))
        box(6.6, ys[i], 3.2, f"adapter (parallel)\n{d} -> {h} -> {d}", adapter)
        ax.annotate("", (8.2, ys[i] + 0.85), (6.0, ys[i - 1] + 0.4), arrowprops=dict(arrowstyle="->"))
        ax.annotate("", (6.0, ys[i + 1] + 0.4), (8.2, ys[i] - 0.05), arrowprops=dict(arrowstyle="->"))
    ax.text(0.2, 0.05, f"{info.name} ({info.config}, reduction_factor={info.reduction_factor:g}): hidden size {h} "
            f"= floor({d} / {info.reduction_factor:g}); {info.trainable_params:,} adapter parameters "
            f"in {len(info.positions)} modules. Orange trains, blue is frozen.", fontsize=8.5, wrap=True)
    fig.suptitle(f"One transformer layer with a bottleneck adapter (d_m = {d}, hidden = {h})")
    return fig


def ratio_check(hidden_ratio: float, d_model: int) -> dict:
    """The numbers the question asks about, for one ``d_model``."""
    rf = library_reduction_factor(d_model, hidden_ratio)
    exact = Fraction(hidden_ratio).limit_denominator(1000) * d_model
    return {"d_m": d_model, "ratio x d_m": round(float(exact), 3), "reduction_factor": round(rf, 6),
            "library makes": int(d_model // rf), "floor(ratio x d_m)": math.floor(exact)}
