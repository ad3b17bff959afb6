"""Mean ± sample std over seeds, and paired differences against a baseline with a confidence interval.

Seeds are the unit: arm and baseline are paired by seed (same data order and initialisation), so the difference
of each pair removes what the seed alone does. The t interval assumes the paired differences are roughly normal;
the percentile bootstrap resamples the pairs instead (with few seeds it is too narrow: it cannot see beyond the
spread of the pairs it has, so read it next to the t interval, not instead of it).
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from reid.reporting.labels import canonical


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class PairedDifference:
    """arm − baseline over the seeds both have (``seeds`` and ``diffs`` in the same order)."""

    seeds: tuple[str, ...]
    diffs: tuple[float, ...]
    t: Interval | None  # None with fewer than 2 pairs
    bootstrap: Interval | None  # None unless asked for, or with fewer than 2 pairs

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.diffs) if self.diffs else math.nan


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1; NaN with a single value)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def t_interval(diffs: Sequence[float], confidence: float = 0.95) -> Interval | None:
    """Student t interval of the mean: mean ± t_{(1+c)/2, n−1} · s / √n."""
    n = len(diffs)
    if n < 2:
        return None
    mean, std = mean_std(diffs)
    half = float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Interval(mean - half, mean + half)


def bootstrap_interval(
    diffs: Sequence[float], resamples: int, seed: int = 0, confidence: float = 0.95
) -> Interval | None:
    """Percentile bootstrap of the mean: ``resamples`` draws of n pairs with replacement from
    ``np.random.default_rng(seed)``."""
    n = len(diffs)
    if n < 2 or resamples < 1:
        return None
    rng = np.random.default_rng(seed)
    values = np.asarray(diffs, dtype=np.float64)
    means = values[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(float(low), float(high))


def paired_difference(
    arm: Mapping[str, float],
    baseline: Mapping[str, float],
    confidence: float = 0.95,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
) -> PairedDifference:
    """arm − baseline over the seeds (keys, compared as numbers when they are) both mappings have."""
    base = {canonical(s): v for s, v in baseline.items()}
    shared = sorted((s for s in arm if canonical(s) in base), key=canonical)
    diffs = tuple(arm[s] - base[canonical(s)] for s in shared)
    return PairedDifference(
        seeds=tuple(shared),
        diffs=diffs,
        t=t_interval(diffs, confidence),
        bootstrap=bootstrap_interval(diffs, bootstrap, bootstrap_seed, confidence) if bootstrap else None,
    )
