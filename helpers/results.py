"""Results: what a run produced, written and read one way, and tabled.

* ``RunResult``: one training run (history, best validation, test scores and per-example test
  predictions, sizes, time, the full configuration and environment).
* ``save_json``: the one writer every result goes through (a unique temporary file in the same
  folder, then ``os.replace``: a reader never sees half a file, and writers never collide).
* ``load_results``/``results_table``/``learned_table``/``compare_runs``: committed runs as DataFrames.
* ``Sweep``: runs over methods and seeds, with mean ± CI per method and paired comparisons.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

from . import config


def save_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as JSON atomically: through a unique temporary file in the same folder, then
    ``os.replace``. Concurrent writers each replace the file whole; the last one wins. A full disk raises
    ``checkpoints.DiskFull`` naming the folder, and leaves the file that was there as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = obj if isinstance(obj, str) else json.dumps(obj, indent=1, default=str)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a result is for everyone to read
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)  # the file there before, if any, is untouched
        from .checkpoints import disk_full, is_disk_full

        if is_disk_full(e):
            raise disk_full(path.parent, len(text.encode()), path.name) from None
        raise
    return path


def eval_records(history: list[dict]) -> list[dict]:
    """The validation records of a Trainer log history, one per evaluation."""
    return [h for h in history if "eval_accuracy" in h]


@dataclasses.dataclass
class RunResult:
    """What one training run produced: per-step history, test scores, sizes, timing, and the
    full configuration (seed, profile, model, data, library versions) that reproduces it.
    ``predictions``: the test split's ``idx``, ``label``, ``pred`` and ``prob`` (of label 1), in
    ``idx`` order, so two runs can be compared pair by pair (None in files written before it)."""

    method: str
    history: list[dict]
    best: dict
    test: dict
    trainable_params: int
    total_params: int
    train_seconds: float
    model: dict
    output_dir: str
    config: dict
    predictions: dict | None = None

    @property
    def trainable_share(self) -> float:
        return self.trainable_params / self.total_params

    @property
    def seed(self) -> int:
        return self.config["seed"]

    def evals(self) -> list[dict]:
        """The per-epoch validation records of the history."""
        return eval_records(self.history)

    def collapsed(self, majority: float, tol: float = 1e-4) -> bool:
        """True when validation accuracy sat at the majority-class score at every epoch."""
        return all(abs(e["eval_accuracy"] - majority) < tol for e in self.evals())

    def correct(self):
        """A boolean array, one entry per test pair in ``idx`` order: was the prediction right?"""
        import numpy as np

        if not self.predictions:
            raise ValueError(f"this {self.method} run (seed {self.seed}) kept no test predictions; "
                             "rerun it to compare it pair by pair")
        return np.asarray(self.predictions["pred"]) == np.asarray(self.predictions["label"])

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The result as JSON; also written to ``path`` (atomically) when given."""
        text = json.dumps(dataclasses.asdict(self), indent=1, default=str)
        if path is not None:
            save_json(text, path)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> RunResult:
        """Read a result from a JSON file path or a JSON string."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text(encoding="utf-8")
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_results(pattern: str = "q1_*.json", folder=None) -> dict[Path, RunResult]:
    """The committed results (``results/`` by default) whose file names match ``pattern``, keyed
    by their file, in name order."""
    folder = Path(folder) if folder else config.RESULTS_DIR
    return {p: RunResult.from_json(p) for p in sorted(folder.glob(pattern))}


def _runs(results) -> list[RunResult]:
    return list(results.values() if isinstance(results, dict) else results)


def results_table(results):
    """A DataFrame, one row per run: trainable parameters, best validation and test scores, time."""
    import pandas as pd

    rows = []
    for r in _runs(results):
        c = r.config
        rows.append({
            "method": r.method, "profile": c["profile"], "seed": c["seed"], "learning_rate": c["learning_rate"],
            "head lr": c.get("head_learning_rate") or c["learning_rate"],  # None: the same rate
            "cls pooling": c.get("cls_pooling", "-"),  # v1 only: does the pooler read [CLS]?
            "pooler trained": bool(c.get("train_pooler")), "trainable": r.trainable_params,
            "trainable %": round(100 * r.trainable_share, 3), "epochs": c["num_train_epochs"],
            "best epoch": r.best["epoch"], "val acc": round(r.best["eval_accuracy"], 4),
            "val F1": round(r.best["eval_f1"], 4), "test acc": round(r.test["accuracy"], 4),
            "test F1": round(r.test["f1"], 4), "train s": round(r.train_seconds, 1),
            "precision": c.get("precision_used", "fp32"),  # runs before the setting trained in fp32 on CPU
            "device": c["environment"]["device"], "model": r.model["name"],
        })
    return pd.DataFrame(rows)


def learned_table(results, majority: float):
    """One row per run: did it learn or collapse to the majority class, its validation accuracy by
    epoch, and its test accuracy. ``results``: ``{name: RunResult}`` (a ``load_results`` dict works)."""
    import pandas as pd

    rows = [{"run": Path(str(name)).stem, "method": r.method,
             "verdict": "collapsed" if r.collapsed(majority) else "learned",
             "val acc by epoch": [round(e["eval_accuracy"], 3) for e in r.evals()],
             "test acc": round(r.test["accuracy"], 4)} for name, r in results.items()]
    return pd.DataFrame(rows)


def reached_table(results, threshold: float = 0.75):
    """One row per run: when its validation accuracy first reached ``threshold`` (the epoch, and the seconds
    trained by then, where the run recorded them), its accuracy by epoch, its best, its seconds and the CPU it ran
    on. ``results``: RunResults, or a dict of them (a ``Sweep``'s runs flattened work too)."""
    import pandas as pd

    rows = []
    for r in _runs(results):
        evals = r.evals()
        hit = next((e for e in evals if e["eval_accuracy"] >= threshold), None)
        rows.append({"method": r.method, "seed": r.seed, "profile": r.config["profile"],
                     "val acc by epoch": [round(e["eval_accuracy"], 4) for e in evals],
                     f"reached {threshold}": hit is not None,
                     "at epoch": None if hit is None else hit["epoch"],
                     "at s": None if hit is None else hit.get("train_s"),
                     "best val": round(r.best["eval_accuracy"], 4), "test acc": round(r.test["accuracy"], 4),
                     "train s": round(r.train_seconds, 1),
                     "cpu": r.config["environment"].get("cpu", "not recorded")})
    return pd.DataFrame(rows)


def compare_runs(results, pairs: dict[str, tuple[str, str]]):
    """Named comparisons of two runs each: best validation and test accuracy side by side.
    ``pairs``: ``{question: (run a, run b)}`` by file stem; a pair not yet run says so."""
    import pandas as pd

    runs = {Path(str(name)).stem: r for name, r in results.items()}
    rows = []
    for what, (a, b) in pairs.items():
        row = {"comparison": what, "a": a, "b": b}
        if a in runs and b in runs:
            ra, rb = runs[a], runs[b]
            row.update({"a val": round(ra.best["eval_accuracy"], 4), "b val": round(rb.best["eval_accuracy"], 4),
                        "a test": round(ra.test["accuracy"], 4), "b test": round(rb.test["accuracy"], 4)})
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# Sweeps: methods x seeds
# ------------------------------------------------------------------------------------------------

# The comparisons Q1 asks about: (a, b) where a is expected to be better.
COMPARISONS = (("v2", "v1"), ("v2", "v2-noproj"), ("v2", "full"))


@dataclasses.dataclass
class Sweep:
    """Runs of several methods (or named variants) over several seeds, with their statistics.
    ``runs``: ``{label: [RunResult, ...]}`` in seed order; ``config``: how the sweep was asked for."""

    runs: dict[str, list[RunResult]]
    config: dict = dataclasses.field(default_factory=dict)
    files: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # each run's JSON file, by label

    def table(self, confidence: float = 0.95):
        """Per method: n, mean ± sd and the t-interval (inside [0, 1]) of best-validation and test accuracy
        and F1; ``note`` says where n is too small for the interval to mean much."""
        import pandas as pd

        from .stats import mean_ci

        rows = []
        for label, results in self.runs.items():
            row = {"method": label, "n": len(results), "seeds": [r.seed for r in results],
                   "trainable": results[0].trainable_params}
            for name, get in (("val acc", lambda r: r.best["eval_accuracy"]), ("val F1", lambda r: r.best["eval_f1"]),
                              ("test acc", lambda r: r.test["accuracy"]), ("test F1", lambda r: r.test["f1"])):
                s = mean_ci([get(r) for r in results], confidence, bounds=(0, 1))
                row.update({f"{name} mean": round(s["mean"], 4), f"{name} sd": round(s["sd"], 4),
                            f"{name} CI": (round(s["ci_low"], 4), round(s["ci_high"], 4))})
            row["train s mean"] = round(sum(r.train_seconds for r in results) / len(results), 1)
            row["note"] = s["note"]
            rows.append(row)
        return pd.DataFrame(rows)

    def comparisons(self, pairs=COMPARISONS, confidence: float = 0.95):
        """Paired comparisons on the same test pairs, for each (a, b) both present: McNemar's exact
        p-value per shared seed, and the paired bootstrap interval of the accuracy difference a - b
        over all shared seeds."""
        import numpy as np
        import pandas as pd

        from .stats import mcnemar_exact, paired_bootstrap

        rows = []
        for a, b in pairs:
            if a not in self.runs or b not in self.runs:
                continue
            by_a, by_b = {r.seed: r for r in self.runs[a]}, {r.seed: r for r in self.runs[b]}
            seeds = sorted(set(by_a) & set(by_b))
            if not seeds:
                continue
            ca = np.stack([by_a[s].correct() for s in seeds])
            cb = np.stack([by_b[s].correct() for s in seeds])
            tests = [mcnemar_exact(x, y) for x, y in zip(ca, cb)]
            boot = paired_bootstrap(ca, cb, confidence)
            rows.append({"a": a, "b": b, "seeds": seeds, "acc diff (a - b)": round(boot["diff"], 4),
                         "diff CI": (round(boot["ci_low"], 4), round(boot["ci_high"], 4)),
                         "McNemar p per seed": [float(f"{t['pvalue']:.3g}") for t in tests],
                         "seeds with p < 0.05": sum(t["pvalue"] < 0.05 for t in tests)})
        return pd.DataFrame(rows)

    def figure(self, confidence: float = 0.95, majority: float | None = None):
        """Left: test accuracy, one dot per seed, the mean with its confidence bar, per method.
        Right: the mean validation-accuracy curve with a band (min to max) across seeds."""
        import numpy as np
        from matplotlib.figure import Figure

        from .stats import mean_ci

        fig = Figure(figsize=(11, 4), layout="constrained")
        ax_dots, ax_curve = fig.subplots(1, 2)
        for i, (label, results) in enumerate(self.runs.items()):
            accs = [r.test["accuracy"] for r in results]
            jitter = np.linspace(-0.12, 0.12, len(accs)) if len(accs) > 1 else [0.0]
            ax_dots.scatter(i + np.asarray(jitter), accs, s=18, alpha=0.6, color=f"C{i}")
            s = mean_ci(accs, confidence, bounds=(0, 1))
            if s["n"] > 1:
                ax_dots.errorbar(i + 0.3, s["mean"], yerr=[[s["mean"] - s["ci_low"]], [s["ci_high"] - s["mean"]]],
                                 fmt="D", color=f"C{i}", capsize=4)
            curves = [[e["eval_accuracy"] for e in r.evals()] for r in results]
            n = min(len(c) for c in curves)
            if n:
                arr = np.asarray([c[:n] for c in curves])
                epochs = np.arange(1, n + 1)
                ax_curve.plot(epochs, arr.mean(0), marker="o", ms=3, label=label, color=f"C{i}")
                ax_curve.fill_between(epochs, arr.min(0), arr.max(0), alpha=0.2, color=f"C{i}")
        ax_dots.set_xticks(range(len(self.runs)), list(self.runs))
        ax_dots.set(title=f"test accuracy: seeds (dots), mean and {confidence:.0%} CI", ylabel="accuracy")
        ax_curve.set(title="validation accuracy: mean over seeds, band min-max", xlabel="epoch", ylabel="accuracy")
        if majority is not None:
            for ax in (ax_dots, ax_curve):
                ax.axhline(majority, color="grey", ls="--", lw=1, label="majority class")
        ax_curve.legend(fontsize=8)
        for ax in (ax_dots, ax_curve):
            ax.grid(alpha=0.3)
        return fig

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the summary: the configuration, each run's file (relative to the summary), and the tables."""
        path = Path(path)
        files = {label: [os.path.relpath(f, path.parent) for f in fs] for label, fs in self.files.items()}
        summary = {"config": self.config, "files": files,
                   "table": self.table().to_dict(orient="records"),
                   "comparisons": self.comparisons().to_dict(orient="records")}
        return save_json(summary, path)

    @classmethod
    def merge(cls, *sweeps: Sweep) -> Sweep:
        """One sweep holding the labels of several (for instance a method's runs before and after its
        defaults changed, to compare them pair by pair). A label in two of them is a ValueError."""
        runs, files, configs = {}, {}, []
        for sw in sweeps:
            clash = sorted(set(sw.runs) & set(runs))
            if clash:
                raise ValueError(f"label(s) {', '.join(clash)} are in more than one sweep; rename one first")
            runs.update(sw.runs)
            files.update(sw.files)
            configs.append(sw.config)
        return cls(runs, {"merged": configs}, files)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> Sweep:
        """Read a summary written by ``to_json`` and the run files it names."""
        path = Path(path)
        summary = json.loads(path.read_text(encoding="utf-8"))
        files = {label: [str(path.parent / f) for f in fs] for label, fs in summary["files"].items()}
        runs = {label: [RunResult.from_json(f) for f in fs] for label, fs in files.items()}
        return cls(runs, summary.get("config", {}), files)
