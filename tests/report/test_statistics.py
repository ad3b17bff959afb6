"""Mean ± sample std and the paired differences' intervals, against numbers worked out by hand."""
from __future__ import annotations

import math

import pytest

from reid.reporting.statistics import Interval, bootstrap_interval, mean_std, paired_difference, t_interval

T_975_DF2 = 4.302652729749462  # Student t, 97.5% quantile, 2 degrees of freedom (tables: 4.303)
T_975_DF5 = 2.570581835636314  # 5 degrees of freedom (tables: 2.571)


def test_mean_and_sample_std() -> None:
    assert mean_std([0.1, 0.2, 0.3]) == (pytest.approx(0.2), pytest.approx(0.1))  # sqrt((0.01 + 0 + 0.01) / 2)
    mean, std = mean_std([0.4])
    assert mean == 0.4 and math.isnan(std)


def test_paired_difference_matches_seeds_and_gives_the_t_interval() -> None:
    arm = {"1": 0.15, "2": 0.22, "3": 0.38, "9": 0.5}
    base = {"3": 0.30, "1": 0.10, "2": 0.20, "4": 0.7}
    d = paired_difference(arm, base)
    assert d.seeds == ("1", "2", "3") and d.n == 3
    assert d.diffs == pytest.approx((0.05, 0.02, 0.08))
    assert d.mean == pytest.approx(0.05)
    half = T_975_DF2 * 0.03 / math.sqrt(3)  # sample std of the differences: sqrt((0 + 0.03² + 0.03²) / 2) = 0.03
    assert (d.t.low, d.t.high) == (pytest.approx(0.05 - half, abs=1e-12), pytest.approx(0.05 + half, abs=1e-12))
    assert d.bootstrap is None  # not asked for


def test_seeds_pair_by_value() -> None:
    assert paired_difference({"1": 0.5, "2": 0.6}, {"1.0": 0.25, "2.0": 0.5}).diffs == pytest.approx((0.25, 0.1))


def test_other_confidence_levels() -> None:
    diffs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    half = T_975_DF5 * math.sqrt(3.5) / math.sqrt(6)
    assert t_interval(diffs) == Interval(pytest.approx(3.5 - half), pytest.approx(3.5 + half))
    narrower = t_interval(diffs, confidence=0.8)
    assert 3.5 - half < narrower.low < 3.5 < narrower.high < 3.5 + half


def test_one_pair_has_no_interval_and_no_pair_no_difference() -> None:
    one = paired_difference({"1": 0.12}, {"1": 0.10, "2": 0.2}, bootstrap=100)
    assert one.n == 1 and one.mean == pytest.approx(0.02) and one.t is None and one.bootstrap is None
    none = paired_difference({"4": 0.4}, {"1": 0.1})
    assert none.n == 0 and math.isnan(none.mean) and none.t is None


def test_identical_differences_give_a_zero_width_interval() -> None:
    d = paired_difference({"1": 0.3, "2": 0.4}, {"1": 0.1, "2": 0.2}, bootstrap=500)
    assert d.t.low == pytest.approx(0.2) and d.t.high == pytest.approx(0.2)
    assert d.bootstrap.low == pytest.approx(0.2) and d.bootstrap.high == pytest.approx(0.2)


def test_bootstrap_of_two_pairs_spans_them() -> None:
    # Means of 2 pairs drawn with replacement from (0, 1): 0 (1/4), 0.5 (1/2), 1 (1/4); the 2.5% and 97.5%
    # quantiles of many such means are 0 and 1.
    assert bootstrap_interval([0.0, 1.0], resamples=20_000, seed=3) == Interval(0.0, 1.0)


def test_bootstrap_is_deterministic_given_its_seed() -> None:
    diffs = [0.013, -0.021, 0.034, 0.002, 0.047, -0.008]
    first = bootstrap_interval(diffs, resamples=2000, seed=7)
    assert bootstrap_interval(diffs, resamples=2000, seed=7) == first
    assert bootstrap_interval(diffs, resamples=2000, seed=8) != first
    assert min(diffs) < first.low < sum(diffs) / len(diffs) < first.high < max(diffs)
