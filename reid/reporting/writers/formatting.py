"""How numbers look in the tables: ReID metrics (fractions in [0, 1]) as percentages, anything else as logged."""
from __future__ import annotations

import math
import re

from reid.reporting.statistics import Interval
from reid.reporting.summary import MetricStats

# mAP, mINP and rank-k are fractions (reid/evaluation); so are their val/ and untrained/ forms.
_FRACTION = re.compile(r"^(mAP|mINP|rank\d+)$")
_RANK = re.compile(r"^rank(\d+)$")
DASH = "–"


def is_fraction(metric: str) -> bool:
    return bool(_FRACTION.match(metric.rsplit("/", 1)[-1]))


def metric_title(metric: str) -> str:
    """``rank1`` -> ``rank-1``, ``val/rank5`` -> ``val/rank-5``; others unchanged."""
    prefix, _, base = metric.rpartition("/")
    base = _RANK.sub(r"rank-\1", base)
    return f"{prefix}/{base}" if prefix else base


def number(metric: str, value: float | None, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return DASH
    sign = "+" if signed else ""
    return f"{100 * value:{sign}.2f}" if is_fraction(metric) else f"{value:{sign}.4g}"


def mean_std(metric: str, stats: MetricStats, pm: str = "±") -> str:
    """``20.00 ± 10.00``; one seed: the value alone; no seed: a dash."""
    if stats.n == 0:
        return DASH
    if stats.n == 1:
        return number(metric, stats.mean)
    return f"{number(metric, stats.mean)} {pm} {number(metric, stats.std)}"


def interval(metric: str, value: Interval | None, n_pairs: int) -> str:
    """``[-1.20, +1.82]``; with a single pair there is no spread to build an interval from."""
    if value is None:
        return "n/a (1 pair)" if n_pairs == 1 else DASH
    return f"[{number(metric, value.low, signed=True)}, {number(metric, value.high, signed=True)}]"


def percent(level: float) -> str:
    return f"{100 * level:g}%"


def unit_phrase(metrics: list[str]) -> str:
    fractions = [metric_title(m) for m in metrics if is_fraction(m)]
    if not fractions:
        return ""
    if len(fractions) == len(metrics):
        return ", in %"
    return f", {', '.join(fractions)} in %"


NO_PAIRS = "n/a (no shared seeds)"
