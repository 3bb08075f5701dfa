"""The statistics behind a sweep table: pure functions over per-seed values.

A table cell is a set of per-seed results of one arm on one data set. We summarise it by its mean
and sample standard deviation (ddof=1); we compare two cells only over the seeds they share
(a paired design: the same seed means the same initialisation, split and data order), with a
paired t-test, and correct the p-values of a whole table with Holm's step-down method. A cell with a
single seed has no standard deviation and no test, and says so instead of printing a zero.

Inputs are plain mappings `seed -> value` (or sequences for `describe`); nothing here knows about
MLflow, pandas or percent formatting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

NO_STD = "n=1: no std"
NO_TEST = "fewer than 2 matched seeds: no test"


def scipy_special():
    """scipy.special, imported on first use: ~0.05 s of CPU in `sweeps run`'s driver, which has scipy's base
    loaded by then (~0.25 s in a bare process), where scipy.stats, which computes the same from it, took ~0.5 s.
    `sweeps run` reads this module's names before Ray starts (its checks of a spec's labels import the table
    writers) and needs scipy only for a table's tests, which the report's warm-up (sweeps.runner.warm_up_report)
    imports while the last trials run."""
    from scipy import special

    return special


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom: scipy.stats.ttest_rel's two-sided p-value (it
    computes 2 * stdtr(df, -|t|) too, bit for bit; tests/test_stats.py pins the two)."""
    return float(2.0 * scipy_special().stdtr(np.float64(df), -abs(np.float64(t))))


def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t with df degrees of freedom, 0 < q < 1: scipy.stats.t.ppf(q, df) (stdtrit,
    which t.ppf calls; tests/test_stats.py pins the two)."""
    return float(scipy_special().stdtrit(np.float64(df), np.float64(q)))


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (ddof=1) of n values; std is None when n < 2."""

    n: int
    mean: float | None
    std: float | None

    @property
    def note(self) -> str:
        if self.n == 0:
            return "no values"
        return NO_STD if self.std is None else ""


def describe(values: Sequence[float]) -> Summary:
    """Mean and std (ddof=1) of finite values; NaN/None values are an error, not silently dropped."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"describe() got non-finite values {arr.tolist()}: filter unfinished runs first")
    n = int(arr.size)
    if n == 0:
        return Summary(0, None, None)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n >= 2 else None
    return Summary(n, mean, std)


def matched(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The seeds present in both `a` and `b` (sorted) and the two value arrays over them."""
    seeds = sorted(set(a) & set(b))
    return seeds, np.array([a[s] for s in seeds], dtype=float), np.array([b[s] for s in seeds], dtype=float)


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test of a against b over matched seeds. p is None when it cannot be computed."""

    n: int                    # matched seeds
    mean_diff: float | None   # mean of a - b
    t: float | None
    p: float | None           # two-sided
    note: str = ""


FLOAT_NOISE = 1e-12   # differences of accuracies closer than this are equal up to float rounding


def paired_ttest(a: Mapping[int, float], b: Mapping[int, float]) -> PairedTest:
    """Two-sided paired t-test of a − b over the seeds both have: scipy.stats.ttest_rel's t and p, computed as it
    does (t = mean / sqrt(var / n), var the mean squared deviation times n / (n - 1)) without importing scipy.stats.

    Degenerate differences (zero variance) have no t distribution: identical values give p = 1,
    a constant non-zero difference gives p = 0 (every seed agrees on the sign and size). Differences
    within FLOAT_NOISE of each other count as equal (0.1 + 0.2 - 0.3 is not 0; an accuracy's real step
    is at least 1 / test images).
    """
    seeds, x, y = matched(a, b)
    n = len(seeds)
    if n == 0:
        return PairedTest(0, None, None, None, "no matched seeds: no test")
    diff = x - y
    mean_diff = float(diff.mean())
    if n < 2:
        return PairedTest(n, mean_diff, None, None, NO_TEST)
    if float(np.ptp(diff)) <= FLOAT_NOISE:   # scipy would warn of catastrophic cancellation
        if abs(mean_diff) <= FLOAT_NOISE:
            return PairedTest(n, 0.0, 0.0, 1.0, "identical values")
        return PairedTest(n, mean_diff, math.copysign(math.inf, mean_diff), 0.0, "constant difference")
    mean = diff.mean()
    var = np.mean((diff - mean) ** 2) * (n / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = float(np.divide(mean, np.sqrt(var / n)))
    return PairedTest(n, mean_diff, t, t_two_sided_p(t, n - 1))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order.

    None entries (comparisons that could not be tested) are passed through and do not count
    towards the family size.
    """
    indexed = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    for p, _ in indexed:
        if not (0.0 <= p <= 1.0) or math.isnan(p):
            raise ValueError(f"holm() got p-value {p!r}: expected a number in [0, 1]")
    m = len(indexed)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class DeltaCI:
    """Mean paired difference a − b over matched seeds with a two-sided t confidence interval."""

    n: int
    delta: float | None
    low: float | None
    high: float | None
    confidence: float = 0.95
    note: str = ""


def paired_delta_ci(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95) -> DeltaCI:
    """Δ = mean(a − b) over matched seeds, CI = Δ ± t_{n−1} · sd(a − b) / √n (ddof=1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} is invalid: expected a number in (0, 1)")
    seeds, x, y = matched(a, b)
    n = len(seeds)
    if n == 0:
        return DeltaCI(0, None, None, None, confidence, "no matched seeds")
    diff = x - y
    delta = float(diff.mean())
    if n < 2:
        return DeltaCI(n, delta, None, None, confidence, "n=1: no interval")
    half = float(t_quantile(0.5 + confidence / 2.0, n - 1) * diff.std(ddof=1) / math.sqrt(n))
    return DeltaCI(n, delta, delta - half, delta + half, confidence)
