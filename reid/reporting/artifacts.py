"""Put a report's files on an MLflow run: the sweep parent it summarises, or a run made to hold it."""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from reid.reporting.errors import ReportError
from reid.reporting.records import REPORT_TAG
from reid.reporting.selection import open_store

ARTIFACT_FOLDER = "report"


def log_files(tracking_uri: str, run_id: str, files: Sequence[Path], artifact_path: str = ARTIFACT_FOLDER) -> None:
    """``files`` as artifacts ``<artifact_path>/<name>`` of run ``run_id`` (finished runs accept artifacts too)."""
    from mlflow.exceptions import MlflowException

    client = open_store(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise ReportError(f"no MLflow run {run_id!r} in {tracking_uri} to log the report to") from None
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path)


def create_report_run(tracking_uri: str, experiment_id: str, scope: str) -> str:
    """A FINISHED run tagged ``reid.report`` (so no later report takes it for a training run) to hold a report."""
    client = open_store(tracking_uri)
    run = client.create_run(
        experiment_id,
        run_name=f"report-{time.strftime('%Y%m%d-%H%M%S')}",
        tags={REPORT_TAG: "1", "reid.report.scope": scope},
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id
