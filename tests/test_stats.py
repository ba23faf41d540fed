"""The statistics over seeds, on numbers worked out by hand."""
import math

import numpy as np
import pytest

from helpers import stats


def test_t_interval_by_hand():
    s = stats.mean_ci([0.70, 0.72, 0.74])
    # mean 0.72, sd 0.02, sem 0.02/sqrt(3) = 0.0115470, t(0.975, df=2) = 4.302653 -> half width 0.0496828
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.72) and s["sd"] == pytest.approx(0.02)
    assert s["ci_low"] == pytest.approx(0.72 - 0.0496828, abs=1e-6)
    assert s["ci_high"] == pytest.approx(0.72 + 0.0496828, abs=1e-6)


def test_one_value_has_no_interval():
    s = stats.mean_ci([0.8])
    assert s["mean"] == 0.8 and math.isnan(s["sd"]) and math.isnan(s["ci_low"])
    with pytest.raises(ValueError, match="at least one value"):
        stats.mean_ci([])


def test_mcnemar_exact_by_hand():
    # b = 2 pairs only A got right, c = 8 only B got right, 5 both right, 5 both wrong.
    a = [1] * 5 + [1] * 2 + [0] * 8 + [0] * 5
    b = [1] * 5 + [0] * 2 + [1] * 8 + [0] * 5
    r = stats.mcnemar_exact(np.array(a, bool), np.array(b, bool))
    # two-sided exact binomial: 2 * P(X <= 2 | n = 10, p = 1/2) = 2 * (1 + 10 + 45) / 1024
    assert (r["b"], r["c"]) == (2, 8) and r["pvalue"] == pytest.approx(112 / 1024)
    assert stats.mcnemar_exact(a, a)["pvalue"] == 1.0  # identical predictions: no evidence
    with pytest.raises(ValueError, match="same examples"):
        stats.mcnemar_exact(a, b[:-1])


def test_paired_bootstrap_interval():
    rng = np.random.default_rng(0)
    b = rng.random((3, 400)) < 0.70
    a = b | (rng.random((3, 400)) < 0.10)  # A right wherever B is, and on some more pairs
    r = stats.paired_bootstrap(a, b)
    assert r["diff"] == pytest.approx(a.mean() - b.mean())
    assert 0 < r["ci_low"] < r["diff"] < r["ci_high"]
    same = stats.paired_bootstrap(b, b)
    assert same == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    # resampling with replacement keeps the interval inside the range of per-example differences
    assert stats.paired_bootstrap([1, 1, 0, 0], [0, 0, 0, 0])["ci_high"] <= 1.0


def test_welch_interval_of_a_difference_by_hand():
    # means 0.7633 and 0.80; variances 0.000233 and 0.0001; se = sqrt(0.000233/3 + 0.0001/3) = 0.01054;
    # Welch's df = 3.45, t(0.975, 3.45) = 2.96: the difference -0.0367 +- 0.0312
    r = stats.diff_of_means([0.78, 0.76, 0.75], [0.80, 0.79, 0.81])
    assert r["diff"] == pytest.approx(-0.0367, abs=1e-4)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((-0.0679, -0.0055), abs=5e-4)
    assert math.isnan(stats.diff_of_means([0.7], [0.8, 0.9])["ci_low"])  # one seed: no interval
    with pytest.raises(ValueError, match="at least one value on each side"):
        stats.diff_of_means([], [0.8])
