"""Selected runs -> the report's content: arms with per-metric statistics, comparisons, failed runs, notes.

Everything here is plain values; the writers (reid/reporting/writers/) only format a :class:`Report`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reid.reporting.errors import ReportError
from reid.reporting.grouping import SEED_KEY, Arm, Grouping, group_runs
from reid.reporting.labels import LabelRule, parse_settings, values_equal
from reid.reporting.records import RunRecord
from reid.reporting.statistics import PairedDifference, mean_std, paired_difference
from reid.reporting.studies import StudySummary, study_summaries

DEFAULT_METRICS = ("mAP", "rank1", "mINP")
SHOWN_AVAILABLE = 40  # metric names listed in the "no run has metric" error
# Below this many pairs a percentile bootstrap interval is too narrow to trust (it only sees the pairs' own
# spread; with 2 pairs it spans just those two differences), so the report says so.
BOOTSTRAP_FEW_PAIRS = 10


@dataclass(frozen=True)
class MetricStats:
    """One metric of one arm: the per-seed values (seed order) and their mean and sample std."""

    seeds: tuple[str, ...]
    values: tuple[float, ...]
    run_ids: tuple[str, ...]
    mean: float
    std: float

    @property
    def n(self) -> int:
        return len(self.values)

    def by_seed(self) -> dict[str, float]:
        return dict(zip(self.seeds, self.values))


@dataclass
class ArmStats:
    arm: Arm
    metrics: dict[str, MetricStats]

    @property
    def label(self) -> str:
        return self.arm.label

    @property
    def n(self) -> int:
        return len(self.arm.runs)


@dataclass(frozen=True)
class Comparison:
    arm: str
    metric: str
    difference: PairedDifference


@dataclass(frozen=True)
class FailedRun:
    run: RunRecord
    arm: str  # the label of the arm it has the settings of (or its own settings)
    seed: str


@dataclass
class Report:
    source: str  # what was selected and from where, in words
    metrics: list[str]
    arms: list[ArmStats]
    label_keys: list[str]
    baseline: str | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    confidence: float = 0.95
    bootstrap: int = 0
    bootstrap_seed: int = 0
    failed: list[FailedRun] = field(default_factory=list)
    studies: list[StudySummary] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def named(self) -> bool:
        """Whether any arm has a readable name (then tables add a column with its settings)."""
        return any(a.arm.name for a in self.arms)


def check_metrics(runs: Sequence[RunRecord], metrics: Sequence[str]) -> list[str]:
    """Each metric must be on at least one run; notes for runs that lack one."""
    notes = []
    for metric in metrics:
        lacking = [r for r in runs if metric not in r.metrics]
        if len(lacking) == len(runs):
            available = sorted({k for r in runs for k in r.metrics})
            shown = ", ".join(available[:SHOWN_AVAILABLE]) + (" ..." if len(available) > SHOWN_AVAILABLE else "")
            raise ReportError(f"no selected run has the metric {metric!r} (their metrics: {shown or 'none'})")
        if lacking:
            notes.append(f"{len(lacking)} run(s) lack `{metric}` and are left out of its column: "
                         + ", ".join(r.short_id for r in lacking))
    return notes


def metric_stats(arm: Arm, metric: str) -> MetricStats:
    seeds = [s for s in arm.seeds if metric in arm.runs[s].metrics]
    values = [arm.runs[s].metrics[metric] for s in seeds]
    mean, std = mean_std(values)
    return MetricStats(tuple(seeds), tuple(values), tuple(arm.runs[s].run_id for s in seeds), mean, std)


def find_arm(arms: Sequence[ArmStats], text: str) -> ArmStats:
    """An arm by its label (readable name or ``k=v k=v``), else by ``key=value[,key=value]`` settings."""
    for a in arms:
        if text in (a.arm.name, a.arm.settings_label, a.label):
            return a
    labels = ", ".join(repr(a.label) for a in arms)
    try:
        wanted = parse_settings(text, what="baseline")
    except ReportError:
        raise ReportError(f"unknown baseline arm {text!r} (arms: {labels})") from None
    hits = [a for a in arms if all(k in a.arm.settings and values_equal(a.arm.settings[k], v) for k, v in wanted)]
    if not hits:
        raise ReportError(f"unknown baseline arm {text!r} (arms: {labels})")
    if len(hits) > 1:
        raise ReportError(
            f"baseline {text!r} matches {len(hits)} arms ({', '.join(repr(a.label) for a in hits)}); be more specific"
        )
    return hits[0]


def build_report(
    runs: Sequence[RunRecord],
    source: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    ignore: Sequence[str] = (),
    labels: Sequence[LabelRule] = (),
    baseline: str | None = None,
    confidence: float = 0.95,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
    failed: Sequence[RunRecord] = (),
    study_parents: Sequence[RunRecord] = (),
    notes: Sequence[str] = (),
) -> Report:
    """Group ``runs`` into arms, summarise ``metrics``, compare against ``baseline`` (an arm label or settings)."""
    if not runs:
        raise ReportError(f"no runs selected from {source}")
    if not 0 < confidence < 1:
        raise ReportError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if not metrics:
        raise ReportError("no metrics asked for")
    metric_notes = check_metrics(runs, metrics)
    grouping: Grouping = group_runs(runs, ignore=ignore, labels=labels)
    arms = [ArmStats(a, {m: metric_stats(a, m) for m in metrics}) for a in grouping.arms]
    report = Report(
        source=source, metrics=list(metrics), arms=arms, label_keys=grouping.label_keys, confidence=confidence,
        bootstrap=bootstrap, bootstrap_seed=bootstrap_seed, studies=study_summaries(study_parents),
        notes=[*notes, *grouping.notes, *metric_notes],
    )
    if baseline is not None:
        base = find_arm(arms, baseline)
        report.baseline = base.label
        for a in arms:
            if a is base:
                continue
            for m in metrics:
                diff = paired_difference(
                    a.metrics[m].by_seed(), base.metrics[m].by_seed(), confidence, bootstrap, bootstrap_seed,
                )
                report.comparisons.append(Comparison(a.label, m, diff))
        few = sorted({c.difference.n for c in report.comparisons if 2 <= c.difference.n < BOOTSTRAP_FEW_PAIRS})
        if bootstrap and few:
            report.notes.append(
                f"bootstrap intervals from {', '.join(map(str, few))} pair(s) are too narrow to trust "
                f"(fewer than {BOOTSTRAP_FEW_PAIRS}: they cannot see beyond the pairs' own spread); read the t interval"
            )
    report.failed = [FailedRun(r, grouping.label_of(r), r.params.get(SEED_KEY, "?")) for r in failed]
    return report
