"""The parameter-efficiency frontier: test accuracy against trainable parameters, every method over seeds.

Reads a ``Sweep`` (the committed ``results/frontier_cpu.json``, made by ``python -m helpers sweep --methods
frontier ...``); nothing trains here. ``table`` is the per-method table with each method paired against v2,
``figure`` the frontier, ``headline`` one difference of two methods with both kinds of interval.
"""
from __future__ import annotations

from statistics import fmean

from .results import Sweep
from .stats import diff_of_means, mean_ci

# What a reader calls each sweep label, in the figure and the table.
NAMES = {
    "v1": "P-Tuning v1", "v2": "P-Tuning v2", "v2-noproj": "v2 without the MLP", "lora-5ep": "LoRA r=8",
    "adapter-rf0.375-6ep": "adapter 8/3 (hidden 1024)", "adapter-rf16-6ep": "adapter default (hidden 24)",
    "full-5ep": "full fine-tuning",
}
REFERENCE = "v2"  # every method is paired against it
FULL = "full-5ep"  # the band in the figure


def name(label: str) -> str:
    return NAMES.get(label, label)


def majority_on_test(sweep: Sweep) -> float:
    """The test split's majority-class accuracy, from the labels kept with any run's predictions."""
    for runs in sweep.runs.values():
        for r in runs:
            if r.predictions:
                labels = r.predictions["label"]
                share = sum(labels) / len(labels)
                return max(share, 1 - share)
    raise ValueError("no run of this sweep kept its test predictions; rerun it to draw the majority line")


def table(sweep: Sweep, reference: str = REFERENCE, confidence: float = 0.95):
    """One row per method: seeds, trainable parameters and share, test accuracy mean ± sd with its t-interval,
    best validation accuracy, the epoch each seed kept (of its budget), seconds per run, and the paired
    comparison with ``reference`` on the same test pairs (``method - reference``: the paired bootstrap over
    test pairs pooled across seeds, McNemar's exact p per seed)."""
    import pandas as pd

    per = sweep.table(confidence).set_index("method")
    pairs = [(label, reference) for label in sweep.runs if label != reference and reference in sweep.runs]
    versus = sweep.comparisons(pairs, confidence).set_index("a") if pairs else pd.DataFrame()
    rows = []
    for label, runs in sweep.runs.items():
        first = runs[0]
        row = {"method": name(label), "label": label, "n": len(runs), "seeds": [r.seed for r in runs],
               "trainable": first.trainable_params, "trainable %": round(100 * first.trainable_share, 3),
               "lr": first.config["learning_rate"], "epochs": first.config["num_train_epochs"],
               "kept epochs": [int(r.best["epoch"]) for r in runs],
               "test acc mean": per.loc[label, "test acc mean"], "test acc sd": per.loc[label, "test acc sd"],
               "test acc CI": per.loc[label, "test acc CI"], "val acc mean": per.loc[label, "val acc mean"],
               "train s mean": per.loc[label, "train s mean"], "train s": [round(r.train_seconds) for r in runs]}
        if label in versus.index:
            v = versus.loc[label]
            row.update({f"- {reference}": v["acc diff (a - b)"], f"- {reference} CI": v["diff CI"],
                        "McNemar p per seed": v["McNemar p per seed"]})
        rows.append(row)
    return pd.DataFrame(rows)


def headline(sweep: Sweep, a: str = REFERENCE, b: str = FULL, confidence: float = 0.95) -> dict:
    """Test accuracy of ``a`` minus ``b``: the difference of the seed means with Welch's t-interval (the
    spread between seeds), and the paired bootstrap interval over the same test pairs (the spread between
    test pairs, seeds pooled); ``within_a_point`` whether the whole Welch interval lies inside ±0.01."""
    for label in (a, b):
        if label not in sweep.runs:
            raise ValueError(f"the sweep has no runs labelled {label!r}: it has {', '.join(sweep.runs)}")
    acc = {label: [r.test["accuracy"] for r in sweep.runs[label]] for label in (a, b)}
    welch = diff_of_means(acc[a], acc[b], confidence)
    paired = sweep.comparisons([(a, b)], confidence)
    out = {"a": a, "b": b, "a mean": fmean(acc[a]), "b mean": fmean(acc[b]),
           "diff": welch["diff"], "welch CI": (welch["ci_low"], welch["ci_high"]), "seeds": (len(acc[a]), len(acc[b]))}
    if len(paired):
        out["paired CI"] = paired.loc[0, "diff CI"]
        out["paired seeds"] = paired.loc[0, "seeds"]
    out["within_a_point"] = bool(-0.01 <= welch["ci_low"] and welch["ci_high"] <= 0.01)
    return out


def figure(sweep: Sweep, majority: float | None = None, full: str = FULL, confidence: float = 0.95,
           labels=None, title: str = "MRPC test accuracy against trainable parameters"):
    """Test accuracy (each seed faint, the mean with its t-interval) against trainable parameters on a log
    scale, one colour per method; the majority class as a dashed line; ``full``'s interval as a band.
    ``labels``: the methods to draw (default: all)."""
    import numpy as np
    from matplotlib.figure import Figure

    labels = list(labels or sweep.runs)
    majority = majority_on_test(sweep) if majority is None else majority
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.subplots()
    if full in sweep.runs:
        s = mean_ci([r.test["accuracy"] for r in sweep.runs[full]], confidence, bounds=(0, 1))
        if s["n"] > 1:
            ax.axhspan(s["ci_low"], s["ci_high"], color="grey", alpha=0.15,
                       label=f"{name(full)}: {confidence:.0%} interval")
        ax.axhline(s["mean"], color="grey", lw=1)
    ax.axhline(majority, color="black", ls="--", lw=1, label=f"majority class ({majority:.3f})")
    for i, label in enumerate(labels):
        runs = sweep.runs[label]
        x = runs[0].trainable_params
        accs = [r.test["accuracy"] for r in runs]
        spread = np.linspace(0.94, 1.06, len(accs)) if len(accs) > 1 else [1.0]
        ax.scatter(x * np.asarray(spread), accs, s=14, alpha=0.3, color=f"C{i}")
        s = mean_ci(accs, confidence, bounds=(0, 1))
        err = None if s["n"] < 2 else [[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]]
        ax.errorbar(x, s["mean"], yerr=err, fmt="o", ms=7, capsize=4, color=f"C{i}",
                    label=f"{name(label)} (n={s['n']})")
    ax.set_xscale("log")
    ax.set(title=title, xlabel="trainable parameters (log scale)",
           ylabel=f"test accuracy (mean, {confidence:.0%} t-interval; seeds faint)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return fig
