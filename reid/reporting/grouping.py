"""Runs -> arms: one arm per setting, seeds within it.

"Every setting except the seed": the arm key is every param whose value differs between the selected runs, minus
the seed and the params that differ per run by construction (:data:`DEFAULT_IGNORE`: where files went, the
tracking bookkeeping, a sweep's copy of its own command line) and whatever the caller adds. Numbers compare by
value. A param a run lacks counts as a value of its own. Arm labels use the fewest of those params that still tell
the arms apart (``method.name=clipreid ssl.name=simclr``), unless a label rule gives the arm a name.
"""
from __future__ import annotations

import fnmatch
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from reid.reporting.errors import ReportError
from reid.reporting.labels import LabelRule, canonical, name_for
from reid.reporting.records import RunRecord

SEED_KEY = "seed"
# Params that differ between runs of the same setting by construction (reid.pipeline logs the whole resolved config):
#   paths.*         root/data/model/output folders; paths.output_dir is the run's own timestamped folder;
#   logger.*        tracking URI, experiment and run name: where a run was recorded, not how it was trained;
#   override.*      a sweep child's own command-line overrides, a copy of values already in the config params
#                   (and absent on single runs, which would split identical settings);
#   optuna_storage  the Optuna study's database URL (hparams_search presets).
DEFAULT_IGNORE = (SEED_KEY, "paths.*", "logger.*", "override.*", "optuna_storage")
MISSING = (2, "<unset>")  # the canonical value of a param a run does not have
ALL_RUNS = "all runs"  # the label of the single arm when no setting varies


@dataclass
class Arm:
    key: tuple[tuple[str, tuple], ...]  # (param, canonical value) over every varying param
    settings_label: str  # "k=v k=v" over the label params ("" when nothing varies)
    settings: dict[str, str]  # every param all of the arm's runs agree on
    runs: dict[str, RunRecord] = field(default_factory=dict)  # seed -> the run that counts (the latest)
    name: str | None = None  # from a label rule

    @property
    def label(self) -> str:
        return self.name or self.settings_label or ALL_RUNS

    @property
    def seeds(self) -> list[str]:
        return sorted(self.runs, key=natural_key)


@dataclass
class Grouping:
    arms: list[Arm]
    keys: list[str]  # the varying params that define arms
    label_keys: list[str]  # the subset that labels them
    notes: list[str] = field(default_factory=list)

    def arm_of(self, run: RunRecord) -> Arm | None:
        """The arm a run (e.g. a failed one, not grouped) has the settings of, if any."""
        key = arm_key(run, self.keys)
        return next((a for a in self.arms if a.key == key), None)

    def label_of(self, run: RunRecord) -> str:
        arm = self.arm_of(run)
        if arm is not None:
            return arm.label
        return " ".join(f"{k}={run.params.get(k, MISSING[1])}" for k in self.label_keys) or ALL_RUNS


def natural_key(text: str) -> tuple[int, float | str]:
    """Seeds and values sort as numbers when they are numbers ("2" before "10")."""
    return canonical(text)


def is_ignored(key: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def _value(run: RunRecord, key: str) -> tuple:
    return canonical(run.params[key]) if key in run.params else MISSING


def varying_keys(runs: Sequence[RunRecord], ignore: Iterable[str] = DEFAULT_IGNORE) -> list[str]:
    """Params whose values are not the same on every run, minus the ignored ones (shell patterns: ``speed.*``)."""
    ignore = tuple(ignore)
    keys = sorted({k for r in runs for k in r.params})
    return [k for k in keys if not is_ignored(k, ignore) and len({_value(r, k) for r in runs}) > 1]


def arm_key(run: RunRecord, keys: Sequence[str]) -> tuple[tuple[str, tuple], ...]:
    return tuple((k, _value(run, k)) for k in keys)


def _preferred(key: str) -> bool:
    """A config group's choice (``method.name``, ``ssl.name``) or a top-level setting: what a reader recognises."""
    return key.endswith(".name") or "." not in key


def _preference(key: str) -> tuple[int, int, str]:
    return (0 if _preferred(key) else 1, key.count("."), key)


def choose_label_keys(keys_by_arm: Sequence[dict[str, tuple]], keys: Sequence[str]) -> list[str]:
    """Few params whose values alone tell the arms apart: greedily, first among the preferred params (group
    choices), then among the rest (``loss.id_weight`` moves with ``method.name``, so it is not needed to split
    those)."""
    target = len({tuple(sorted(a.items())) for a in keys_by_arm})
    chosen: list[str] = []

    def groups(subset: list[str]) -> int:
        return len({tuple(a[k] for k in subset) for a in keys_by_arm})

    for pool in ([k for k in keys if _preferred(k)], [k for k in keys if not _preferred(k)]):
        while groups(chosen) < target:
            gains = [(groups(chosen + [k]), k) for k in pool if k not in chosen]
            best = max((g for g, _ in gains), default=groups(chosen))
            if best <= groups(chosen):
                break  # nothing left in this pool splits further
            chosen.append(min((k for g, k in gains if g == best), key=_preference))
    return sorted(chosen, key=_preference)


def _common_settings(runs: Sequence[RunRecord]) -> dict[str, str]:
    first, rest = runs[0], runs[1:]
    return {
        k: v
        for k, v in first.params.items()
        if all(k in r.params and canonical(r.params[k]) == canonical(v) for r in rest)
    }


def _display(runs: Sequence[RunRecord], key: str) -> str:
    """The value as most of the arm's runs logged it."""
    values = Counter(r.params.get(key, MISSING[1]) for r in runs)
    return values.most_common(1)[0][0]


def group_runs(
    runs: Sequence[RunRecord],
    ignore: Iterable[str] = (),
    labels: Sequence[LabelRule] = (),
    seed_key: str = SEED_KEY,
) -> Grouping:
    """Arms of ``runs`` (ordered as the label rules, then by their settings); the latest run per (arm, seed)."""
    notes = []
    seedless = [r for r in runs if seed_key not in r.params]
    if seedless:
        notes.append(
            f"left out {len(seedless)} run(s) without a `{seed_key}` param (not training runs): "
            + ", ".join(r.short_id for r in seedless)
        )
    runs = [r for r in runs if seed_key in r.params]
    if not runs:
        raise ReportError(f"none of the selected runs has a `{seed_key}` param, so none is a seed of a setting")
    keys = varying_keys(runs, (*DEFAULT_IGNORE, seed_key, *ignore))
    members: dict[tuple, list[RunRecord]] = defaultdict(list)
    for run in runs:
        members[arm_key(run, keys)].append(run)
    label_keys = choose_label_keys([dict(k) for k in members], keys)
    arms = []
    for key, group in members.items():
        arm = Arm(
            key=key,
            settings_label=" ".join(f"{k}={_display(group, k)}" for k in label_keys),
            settings=_common_settings(group),
        )
        arm.name = name_for(arm.settings, labels)
        for run in sorted(group, key=lambda r: (r.start_time, r.run_id)):
            seed = run.params[seed_key]
            earlier = next((s for s in arm.runs if canonical(s) == canonical(seed)), None)
            if earlier is not None:
                old = arm.runs.pop(earlier)
                notes.append(
                    f"{arm.label}, seed {seed}: run {run.short_id} is a re-run; it replaces the earlier run "
                    f"{old.short_id}"
                )
            arm.runs[seed] = run
        arms.append(arm)
    _check_names(arms, labels, notes)
    order = {rule.name: i for i, rule in reversed(list(enumerate(labels)))}
    arms.sort(
        key=lambda a: (
            order.get(a.name, len(order)),
            [natural_key(_display(list(a.runs.values()), k)) for k in label_keys],
        )
    )
    return Grouping(arms=arms, keys=keys, label_keys=label_keys, notes=notes)


def _check_names(arms: Sequence[Arm], labels: Sequence[LabelRule], notes: list[str]) -> None:
    by_name: dict[str, list[Arm]] = defaultdict(list)
    for arm in arms:
        if arm.name:
            by_name[arm.name].append(arm)
    for name, named in by_name.items():
        if len(named) > 1:
            raise ReportError(
                f"label {name!r} matches {len(named)} arms ({'; '.join(a.settings_label for a in named)}); "
                "give it the settings that tell them apart"
            )
    # One note, not one per label: a study-wide labels file names the arms of every experiment of the study.
    unmatched = [repr(rule.name) for rule in labels if rule.name not in by_name]
    if unmatched:
        notes.append(f"{len(unmatched)} label(s) matched no arm here: {', '.join(unmatched)}")
