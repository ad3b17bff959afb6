"""Optuna studies in scope: the summary the sweep callback left on each study's latest sweep parent run."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from reid.reporting.records import STUDY_TAG, RunRecord


@dataclass(frozen=True)
class StudySummary:
    study: str
    run_id: str  # the sweep parent the summary comes from
    trials_complete: int | None
    # of the sweep's objective (mAP unless hydra.callbacks.mlflow_sweep.objective says otherwise)
    best_value: float | None
    best_trial: str | None
    best_params: dict[str, object] = field(default_factory=dict)


def study_summaries(parents: Sequence[RunRecord]) -> list[StudySummary]:
    """One row per study name, from its latest parent (a resumed study's last sweep covers all its trials)."""
    latest: dict[str, RunRecord] = {}
    for run in sorted(parents, key=lambda r: r.start_time):
        if STUDY_TAG in run.tags and "study_trials_complete" in run.metrics:
            latest[run.tags[STUDY_TAG]] = run
    rows = []
    for study, run in sorted(latest.items()):
        complete = run.metrics.get("study_trials_complete")
        rows.append(StudySummary(
            study=study,
            run_id=run.run_id,
            trials_complete=None if complete is None else int(complete),
            best_value=run.metrics.get("study_best_value"),
            best_trial=run.tags.get("study_best_trial"),
            best_params=json.loads(run.tags.get("study_best_params", "{}")),
        ))
    return rows
