"""Statistics over runs, from libraries: a t-interval of a mean (``scipy.stats``), McNemar's exact
test on paired predictions (``statsmodels``) and a paired bootstrap interval of an accuracy
difference (``scipy.stats.bootstrap``). Inputs are plain sequences, so each is tested on numbers
worked out by hand.
"""
from __future__ import annotations

import math
from collections.abc import Sequence


def mean_ci(values: Sequence[float], confidence: float = 0.95, bounds: tuple[float, float] | None = None) -> dict:
    """n, mean, sample standard deviation and the t-interval of the mean (NaN bounds for n < 2), cut to
    ``bounds`` where given (an accuracy's interval stays inside [0, 1]). ``note`` says when n is too small
    for the interval to mean much (n < 3), else is empty."""
    import numpy as np
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(x.mean())
    note = f"n = {n}: too few runs for the interval to mean much (3 or more)" if n < 3 else ""
    if n < 2:
        return {"n": 1, "mean": mean, "sd": math.nan, "ci_low": math.nan, "ci_high": math.nan, "note": note}
    sd = float(x.std(ddof=1))
    if sd == 0:
        return {"n": n, "mean": mean, "sd": 0.0, "ci_low": mean, "ci_high": mean, "note": note}
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"n": n, "mean": mean, "sd": sd, "ci_low": float(low), "ci_high": float(high), "note": note}


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """McNemar's exact test of two classifiers on the same examples: ``b`` = A right and B wrong,
    ``c`` = A wrong and B right, and the two-sided binomial p-value of b against c."""
    import numpy as np
    from statsmodels.stats.contingency_tables import mcnemar

    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"mcnemar_exact needs predictions on the same examples: {a.shape} vs {b_.shape}")
    table = [[int(np.sum(a & b_)), int(np.sum(a & ~b_))], [int(np.sum(~a & b_)), int(np.sum(~a & ~b_))]]
    result = mcnemar(table, exact=True)
    return {"b": table[0][1], "c": table[1][0], "pvalue": float(result.pvalue)}


def paired_bootstrap(correct_a, correct_b, confidence: float = 0.95, n_resamples: int = 9999,
                     seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B, averaged over seeds, with a bootstrap interval that
    resamples test examples (the same examples for both, so the pairing is kept).
    ``correct_a``/``correct_b``: arrays of shape [seeds, examples] (or [examples])."""
    import numpy as np
    from scipy import stats

    a, b = np.atleast_2d(np.asarray(correct_a, dtype=float)), np.atleast_2d(np.asarray(correct_b, dtype=float))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired_bootstrap needs the same examples: {a.shape[1]} vs {b.shape[1]}")
    per_example = a.mean(axis=0) - b.mean(axis=0)  # each example's mean difference over seeds
    diff = float(per_example.mean())
    if np.all(per_example == per_example[0]):  # no spread to resample
        return {"diff": diff, "ci_low": diff, "ci_high": diff}
    res = stats.bootstrap((per_example,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", random_state=np.random.default_rng(seed))
    return {"diff": diff, "ci_low": float(res.confidence_interval.low), "ci_high": float(res.confidence_interval.high)}


def diff_of_means(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of ``a`` minus mean of ``b`` (runs over seeds, unpaired) with Welch's t-interval: the seed-to-seed
    spread of both, which a bootstrap over test pairs does not see. NaN bounds when either has fewer than 2."""
    import numpy as np
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) == 0 or len(y) == 0:
        raise ValueError("diff_of_means needs at least one value on each side")
    diff = float(x.mean() - y.mean())
    if len(x) < 2 or len(y) < 2:
        return {"diff": diff, "ci_low": math.nan, "ci_high": math.nan}
    if x.std(ddof=1) == 0 and y.std(ddof=1) == 0:
        return {"diff": diff, "ci_low": diff, "ci_high": diff}
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence_level=confidence)
    return {"diff": diff, "ci_low": float(ci.low), "ci_high": float(ci.high)}
