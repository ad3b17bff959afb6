"""Which MLflow runs a report covers: an experiment, the children of a sweep parent, an MLflow filter string.

Only FINISHED training runs are averaged. Left out, and counted in the notes: Optuna trials (unless asked for:
each trial is its own setting, not a seed), FAILED / KILLED runs (listed separately when asked for, never
averaged), runs still RUNNING, sweep parents (they summarise their children, they are not seeds; the Optuna ones
feed the study summary instead) and the runs ``--log-to new`` makes to hold reports.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reid.reporting.errors import ReportError
from reid.reporting.records import PARENT_TAG, REPORT_TAG, STUDY_TAG, RunRecord

DEFAULT_EXPERIMENT = "reid"  # conf/logger/mlflow.yaml's experiment_name
CHILDREN_FILTER = "tags.mlflow.parentRunId = '{}'"
STOPPED = ("FAILED", "KILLED")


@dataclass
class Selection:
    tracking_uri: str
    experiment: str
    experiment_id: str
    scope: str  # what was selected, in words, for the report's first line and for error messages
    runs: list[RunRecord]  # FINISHED training runs: what is averaged
    failed: list[RunRecord] = field(default_factory=list)  # FAILED / KILLED training runs (include_failed only)
    study_parents: list[RunRecord] = field(default_factory=list)  # Optuna sweep parents in scope
    notes: list[str] = field(default_factory=list)


def open_store(tracking_uri: str) -> Any:
    """An MlflowClient on an existing store: a mistyped SQLite path would otherwise be created, empty, in silence."""
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix) and tracking_uri != f"{prefix}:memory:":
        path = Path(tracking_uri[len(prefix):].split("?", 1)[0])
        if not path.is_file():
            raise ReportError(f"no MLflow store at {path} (tracking URI {tracking_uri})")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def _search(client: Any, experiment_id: str, filter_string: str) -> list[RunRecord]:
    from mlflow.exceptions import MlflowException

    from reid.tracking.run_info import search_all_runs

    try:
        return [RunRecord.from_mlflow(r) for r in search_all_runs(client, experiment_id, filter_string)]
    except MlflowException as err:
        raise ReportError(f"MLflow rejected the filter {filter_string!r}: {err.message}") from None


def descendants(client: Any, experiment_id: str, parent_id: str) -> list[RunRecord]:
    """Every run nested under ``parent_id``, at any depth (a sweep of sweeps nests twice)."""
    found: dict[str, RunRecord] = {}
    frontier = [parent_id]
    while frontier:
        run_id = frontier.pop()
        for child in _search(client, experiment_id, CHILDREN_FILTER.format(run_id)):
            if child.run_id not in found:
                found[child.run_id] = child
                frontier.append(child.run_id)
    return list(found.values())


def select_runs(
    tracking_uri: str,
    experiment: str | None = None,
    parent: str | None = None,
    filter_string: str | None = None,
    include_failed: bool = False,
    include_trials: bool = False,
) -> Selection:
    """The runs of ``experiment`` (default ``reid``), or those nested under run ``parent`` (its experiment), that
    also match ``filter_string`` (MLflow's search syntax, e.g. ``tags.dataset = 'market1501'``)."""
    client = open_store(tracking_uri)
    scope_parent: list[RunRecord] = []
    if parent:
        from mlflow.exceptions import MlflowException

        try:
            found = client.get_run(parent)
            exp = client.get_experiment(found.info.experiment_id)
        except MlflowException:
            raise ReportError(f"no MLflow run {parent!r} in {tracking_uri}") from None
        if experiment and exp.name != experiment:
            raise ReportError(f"run {parent} is in experiment {exp.name!r}, not {experiment!r}")
        parent_run = RunRecord.from_mlflow(found)
        candidates = descendants(client, exp.experiment_id, parent)
        scope = f"runs under parent {parent} ({parent_run.name}) in experiment `{exp.name}`"
        scope_parent = [parent_run]
        if filter_string:
            matching = {r.run_id for r in _search(client, exp.experiment_id, filter_string)}
            candidates = [r for r in candidates if r.run_id in matching]
    else:
        name = experiment or DEFAULT_EXPERIMENT
        exp = client.get_experiment_by_name(name)
        if exp is None:
            known = sorted(e.name for e in client.search_experiments())
            raise ReportError(
                f"no MLflow experiment {name!r} in {tracking_uri} (experiments there: {', '.join(known) or 'none'})"
            )
        candidates = _search(client, exp.experiment_id, filter_string or "")
        scope = f"experiment `{exp.name}`"
    if filter_string:
        scope += f" matching `{filter_string}`"
    selection = classify(candidates, include_failed=include_failed, include_trials=include_trials)
    selection.study_parents += [
        r for r in scope_parent if r.is_sweep_parent and STUDY_TAG in r.tags and r.status == "FINISHED"
    ]
    selection.tracking_uri, selection.experiment, selection.experiment_id, selection.scope = (
        tracking_uri, exp.name, exp.experiment_id, scope,
    )
    if not selection.runs:
        left_out = "; ".join(selection.notes) or "no runs at all"
        raise ReportError(f"no FINISHED training runs selected from {scope} in {tracking_uri} ({left_out})")
    return selection


def classify(candidates: Iterable[RunRecord], include_failed: bool = False, include_trials: bool = False) -> Selection:
    """Sort candidate runs into averaged / failed / study parents / left out (counted in ``notes``)."""
    candidates = list(candidates)
    has_children = {r.tags[PARENT_TAG] for r in candidates if PARENT_TAG in r.tags}
    out = Selection(tracking_uri="", experiment="", experiment_id="", scope="", runs=[])
    trials = stopped = running = parents = 0
    for run in candidates:
        if REPORT_TAG in run.tags:
            continue
        if run.is_sweep_parent or run.run_id in has_children:
            parents += 1
            if STUDY_TAG in run.tags and run.status == "FINISHED":
                out.study_parents.append(run)
            continue
        if run.is_trial and not include_trials:
            trials += 1
        elif run.status == "FINISHED":
            out.runs.append(run)
        elif run.status in STOPPED:
            if include_failed:
                out.failed.append(run)
            else:
                stopped += 1
        else:
            running += 1
    counts = [
        (parents, "sweep parent run(s) (they summarise their children)"),
        (trials, "Optuna trial run(s) (--include-trials adds them, one arm per trial)"),
        (stopped, "FAILED/KILLED run(s) (--include-failed lists them)"),
        (running, "run(s) not finished yet (RUNNING/SCHEDULED)"),
    ]
    out.notes = [f"left out {n} {what}" for n, what in counts if n]
    return out
