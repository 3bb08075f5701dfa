"""sweeps.stats on inputs with known answers (worked by hand or from textbook values)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from sweeps import stats


def test_describe_uses_sample_std():
    s = stats.describe([0.80, 0.81, 0.82])
    assert s.n == 3
    assert s.mean == pytest.approx(0.81)
    assert s.std == pytest.approx(0.01)  # ddof=1: sqrt((0.01² + 0 + 0.01²) / 2)


def test_describe_single_value_has_no_std_and_says_so():
    s = stats.describe([0.9])
    assert (s.n, s.mean, s.std) == (1, 0.9, None)
    assert s.note == stats.NO_STD


def test_describe_empty_has_no_mean():
    assert stats.describe([]) == stats.Summary(0, None, None)


def test_describe_rejects_nan():
    with pytest.raises(ValueError, match="non-finite"):
        stats.describe([0.5, math.nan])


def test_paired_ttest_known_value():
    # differences 1, 1, 2, 2: mean 1.5, sd sqrt(1/3), t = 1.5 / (sd / 2) = 3 sqrt(3) = 5.196, df 3
    t = stats.paired_ttest({0: 1, 1: 2, 2: 3, 3: 4}, {0: 0, 1: 1, 2: 1, 3: 2})
    assert t.n == 4
    assert t.mean_diff == pytest.approx(1.5)
    assert t.t == pytest.approx(3 * math.sqrt(3))
    assert t.p == pytest.approx(0.013846, abs=1e-5)  # two-sided Student t, df 3


def test_paired_ttest_uses_matched_seeds_only():
    t = stats.paired_ttest({0: 1, 1: 2, 2: 3, 3: 4, 9: 100}, {0: 0, 1: 1, 2: 1, 3: 2, 7: -100})
    assert t.n == 4
    assert t.p == pytest.approx(0.013846, abs=1e-5)


def test_paired_ttest_one_matched_seed_has_no_test():
    t = stats.paired_ttest({0: 0.9, 1: 0.8}, {0: 0.7})
    assert (t.n, t.p) == (1, None)
    assert t.mean_diff == pytest.approx(0.2)
    assert t.note == stats.NO_TEST


def test_paired_ttest_no_matched_seed():
    t = stats.paired_ttest({0: 0.9}, {1: 0.7})
    assert (t.n, t.p, t.mean_diff) == (0, None, None)


def test_paired_ttest_identical_values_give_p_one():
    assert stats.paired_ttest({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6}).p == 1.0


@pytest.mark.filterwarnings("error")   # scipy's "catastrophic cancellation" warning would reach the terminal
def test_paired_ttest_treats_differences_equal_up_to_float_rounding_as_equal():
    same = stats.paired_ttest({0: 0.1 + 0.2, 1: 0.6}, {0: 0.3, 1: 0.6})
    assert (same.p, same.note) == (1.0, "identical values")
    shifted = stats.paired_ttest({0: 0.1 + 0.2 + 0.1, 1: 0.7}, {0: 0.3, 1: 0.6})
    assert (shifted.p, shifted.note) == (0.0, "constant difference")


def test_paired_ttest_constant_difference_gives_p_zero():
    assert stats.paired_ttest({0: 0.6, 1: 0.7}, {0: 0.5, 1: 0.6}).p == 0.0


def test_holm_known_values_in_input_order():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_skips_untested():
    # family of 2: 0.55 x 2 = 1.1 -> 1; 0.6 x 1 = 0.6 -> monotone 1
    assert stats.holm([0.6, None, 0.55]) == [pytest.approx(1.0), None, pytest.approx(1.0)]
    assert stats.holm([0.6, None, 0.2]) == [pytest.approx(0.6), None, pytest.approx(0.4)]


def test_holm_rejects_invalid_p():
    with pytest.raises(ValueError, match="expected a number in"):
        stats.holm([1.5])


def test_paired_delta_ci_known_interval():
    # mean 1.5, se = sqrt(1/3) / 2, t(0.975, 3) = 3.182446
    d = stats.paired_delta_ci({0: 1, 1: 2, 2: 3, 3: 4}, {0: 0, 1: 1, 2: 1, 3: 2})
    half = 3.182446305 * math.sqrt(1 / 3) / 2
    assert d.delta == pytest.approx(1.5)
    assert (d.low, d.high) == (pytest.approx(1.5 - half), pytest.approx(1.5 + half))


def test_paired_delta_ci_single_pair_has_no_interval():
    d = stats.paired_delta_ci({0: 0.9}, {0: 0.8})
    assert d.delta == pytest.approx(0.1)
    assert (d.low, d.high) == (None, None)
    assert "n=1" in d.note


def test_paired_delta_ci_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence=1.5"):
        stats.paired_delta_ci({0: 1}, {0: 1}, confidence=1.5)


# The t distribution comes from scipy.special (stdtr, stdtrit), which imports in ~0.25 s of CPU where scipy.stats
# takes ~0.6 s (the report's, inside a sweep's wall time): the values are scipy.stats's, bit for bit.

PAIRS = [  # (a, b): n = 2 to 30; ties; small, large, mixed-sign differences; accuracies on a 1/300 grid
    ([0.5, 0.7], [0.4, 0.5]),
    ([0.5, 0.6], [0.5, 0.5]),
    ([0.81, 0.83, 0.8], [0.8, 0.8, 0.8]),
    ([0.1 + 0.2, 0.6, 0.9], [0.3, 0.6, 0.8]),
    ([1e-9, 2e-9, 0.0, 5e-9], [0.0, 0.0, 1e-9, 0.0]),
    ([100.0, 250.0, -3.0, 7.5, 1e3], [0.0, 1.0, 2.0, 3.0, 4.0]),
    ([k / 300 for k in (210, 213, 211, 215, 209, 212)], [k / 300 for k in (208, 213, 205, 210, 209, 207)]),
    ([math.sin(k) for k in range(30)], [math.cos(k) / 3 for k in range(30)]),
]


@pytest.mark.parametrize("a, b", PAIRS)
def test_paired_ttest_equals_scipy_stats_ttest_rel_bit_for_bit(a, b):
    from scipy import stats as scipy_stats   # a dependency: never skipped
    ours = stats.paired_ttest(dict(enumerate(a)), dict(enumerate(b)))
    theirs = scipy_stats.ttest_rel(a, b)
    assert (ours.t, ours.p) == (float(theirs.statistic), float(theirs.pvalue))


@pytest.mark.parametrize("a, b", PAIRS)
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_paired_delta_ci_equals_scipy_stats_t_interval_bit_for_bit(a, b, confidence):
    from scipy import stats as scipy_stats   # a dependency: never skipped
    ours = stats.paired_delta_ci(dict(enumerate(a)), dict(enumerate(b)), confidence)
    diff = np.array(a) - np.array(b)
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, len(a) - 1) * diff.std(ddof=1) / math.sqrt(len(a)))
    assert (ours.low, ours.high) == (ours.delta - half, ours.delta + half)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 29, 200])
def test_t_distribution_functions_equal_scipy_stats_t(df):
    from scipy import stats as scipy_stats   # a dependency: never skipped
    for t in (0.0, 0.1, 1.0, 2.5, 5.196, 40.0, -3.0):
        assert stats.t_two_sided_p(t, df) == float(2 * scipy_stats.t.sf(abs(t), df))
    for q in (0.6, 0.75, 0.95, 0.975, 0.995, 0.9995):
        assert stats.t_quantile(q, df) == float(scipy_stats.t.ppf(q, df))


def test_paired_ttest_with_a_nan_value_propagates_it_as_scipy_does():
    t = stats.paired_ttest({0: math.nan, 1: 0.6, 2: 0.7}, {0: 0.5, 1: 0.5, 2: 0.5})
    assert (t.n, math.isnan(t.t), math.isnan(t.p)) == (3, True, True)


def test_tests_and_intervals_do_not_import_scipy_stats():
    code = ("import sys\nfrom sweeps import stats\n"
            "stats.paired_ttest({0: 1, 1: 2, 2: 3}, {0: 0, 1: 2, 2: 2})\n"
            "stats.paired_delta_ci({0: 1, 1: 2, 2: 3}, {0: 0, 1: 2, 2: 2})\n"
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
