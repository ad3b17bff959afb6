"""MLflow tracker: one run per training job, nested under a sweep's parent run when there is one.

Nothing logged is lost to a tracking server that goes away: every record is written to the run's journal
(reid/tracking/journal.py) before it is sent. A record the store cannot take (server down, SQLite locked) stays
there; the tracker says so in one line, keeps training, sends the backlog in order once the server answers again,
waits for it at the end of the run (``REID_TRACKING_END_WAIT_S``, default 300 s) and, if it is still away, leaves
the records with the command that sends them (``python -m reid.tracking.replay <folder>``). docs/reliability.md.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from reid.tracking.base import Tracker
from reid.tracking.journal import Journal
from reid.tracking.record_ops import PARAM_BATCH, clip_param, send
from reid.tracking.retry import backoff_s, end_wait_s, is_transient, redact_uri, short_reason, use_short_http_retries
from reid.tracking.sqlite_store import prepare_store

# A sweep's Hydra callback (reid/tracking/sweep_callback.py) runs in the job's process right before the job and
# hands per-job context to the run created here: JSON objects of extra tags (trial number, study, host, pid) and of
# extra params (the job's own overrides as ``override.<key>``). Creating them with the run, rather than adding them
# after the job, keeps them on runs that crash or are killed.
RUN_TAGS_ENV = "REID_RUN_TAGS"
RUN_PARAMS_ENV = "REID_RUN_PARAMS"
RUN_NAME_SUFFIX_ENV = "REID_RUN_NAME_SUFFIX"  # a sweep child's "seed=2" / "trial 7", appended to its run name
# Tags that name the folder a run's journal goes in: a job's run folder, a sweep's folder for its parent run,
# python -m reid.evaluate's output folder (else a new temporary folder).
JOURNAL_FOLDER_TAGS = ("run_dir", "sweep_dir", "output_dir")
# How long creating a run (which needs the server: the id comes from it) keeps trying before it fails the job.
START_WAIT_S = 60.0


def _env_json(name: str) -> dict[str, str]:
    """The JSON object in environment variable ``name`` as str -> str (empty when unset)."""
    raw = os.environ.get(name)
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must hold a JSON object, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}


def _warn(text: str) -> None:
    print(f"[tracking] {text}", file=sys.stderr, flush=True)


class TrackingUnavailable(RuntimeError):
    """The tracking store could not be reached for something that cannot wait (creating the run)."""


def call_with_retries(fn: Callable[[], Any], wait_s: float, what: str, uri: str) -> Any:
    """``fn()``, retried with bounded backoff on transient errors for up to ``wait_s``; then one clear error."""
    deadline, attempt = time.monotonic() + wait_s, 0
    while True:
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - classified right below
            if not is_transient(e):
                raise
            if time.monotonic() + backoff_s(attempt) > deadline:
                raise TrackingUnavailable(
                    f"MLflow at {redact_uri(uri)} unreachable for {what} after {wait_s:.0f} s: {short_reason(e)} "
                    "(start the server, or train without tracking: logger=none)"
                ) from e
            time.sleep(backoff_s(attempt))
            attempt += 1


class MlflowTracker(Tracker):
    def __init__(self, tracking_uri: str, experiment_name: str, artifact_location: str | None = None):
        use_short_http_retries()
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        call_with_retries(lambda: prepare_store(tracking_uri), START_WAIT_S, "creating the store", tracking_uri)
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = call_with_retries(
            lambda: self._experiment(experiment_name, artifact_location), START_WAIT_S, "the experiment", tracking_uri
        )
        self.run_id = None
        self.journal: Journal | None = None
        self._retry_at = 0.0  # while the store is away: when the backlog is tried again
        self._attempt = 0  # failed tries in the current outage (0: none), for the backoff

    def _experiment(self, name: str, artifact_location: str | None) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        except mlflow.exceptions.MlflowException as e:  # created concurrently by a parallel job
            if is_transient(e):
                raise
            return self.client.get_experiment_by_name(name).experiment_id

    # ------------------------------------------------------------------ run lifecycle
    def start(self, run_name, tags, run_id=None, parent_run_id=None):
        tags = dict(tags)
        folder = next((tags[k] for k in JOURNAL_FOLDER_TAGS if tags.get(k)), None)
        if run_id is not None:  # resuming: the run exists; its journal may hold what the killed process left
            self.run_id = run_id
            self._open_journal(folder, run_id)
            self._record("update_run", {"status": "RUNNING"})
            return run_id
        tags = {**_env_json(RUN_TAGS_ENV), **tags}
        suffix = os.environ.get(RUN_NAME_SUFFIX_ENV)
        if suffix:
            run_name = f"{run_name} {suffix}"
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = call_with_retries(
            lambda: self.client.create_run(self.experiment_id, run_name=run_name, tags=tags),
            START_WAIT_S, "creating the run", self.tracking_uri,
        )
        self.run_id = run.info.run_id
        self._open_journal(folder, self.run_id)
        extra = {k: clip_param(v) for k, v in _env_json(RUN_PARAMS_ENV).items()}
        for i in range(0, len(extra), PARAM_BATCH):
            self._record("log_params", {"params": dict(list(extra.items())[i : i + PARAM_BATCH])})
        return self.run_id

    def _open_journal(self, folder: str | None, run_id: str) -> None:
        base = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="reid-tracking-"))
        self.journal = Journal.open(base, run_id, self.tracking_uri)
        if self.journal.pending():  # left by a process that died before the store took them
            _warn(f"run {run_id}: sending {len(self.journal.pending())} records left in {self.journal.path}")
            self._flush()

    def log_params(self, params: Mapping[str, object]) -> None:
        self._record("log_params", {"params": {k: clip_param(v) for k, v in params.items()}})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        ts = int(time.time() * 1000)
        batch = [[k, float(v), ts, step or 0] for k, v in metrics.items()]
        if batch:
            self._record("log_metrics", {"metrics": batch})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._record("set_tags", {"tags": {k: str(v) for k, v in tags.items()}})

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._record("log_artifact", {"path": str(Path(path).resolve()), "artifact_path": artifact_path})

    def log_text(self, text: str, artifact_file: str) -> None:
        self._record("log_text", {"text": text, "artifact_file": artifact_file})

    def end(self, status: str = "FINISHED") -> None:
        if self.run_id is None or self.journal is None:
            return
        self._record("set_terminated", {"status": status, "end_time": int(time.time() * 1000)}, flush=False)
        self._flush(wait_s=end_wait_s())
        left = len(self.journal.pending())
        if left:
            self.journal.set_state("gave_up")
            folder = self.journal.path.parent.parent
            _warn(
                f"WARNING: {left} records of run {self.run_id} did not reach MLflow at {redact_uri(self.tracking_uri)}"
                f" within {end_wait_s():.0f} s; they are kept in {self.journal.path}. "
                f"Send them when it is back: python -m reid.tracking.replay {folder}"
            )

    # ------------------------------------------------------------------ journal and sending
    def _record(self, op: str, args: dict[str, Any], flush: bool = True) -> None:
        if self.run_id is None or self.journal is None:
            raise RuntimeError(f"tracker.{op} before tracker.start(): no MLflow run to log to")
        self.journal.append(op, self.run_id, args)
        if flush and time.monotonic() >= self._retry_at:
            self._flush()

    def _flush(self, wait_s: float = 0.0) -> None:
        """Send the journal's backlog in order; on a transient error wait and retry within ``wait_s``, else defer."""
        journal = self.journal
        deadline, waiting = time.monotonic() + wait_s, False
        while journal.pending():
            record = journal.pending()[0]
            try:
                send(self.client, record)
            except Exception as e:  # noqa: BLE001 - classified right below
                if not is_transient(e):
                    raise
                if self._attempt == 0:
                    journal.set_state("outage")
                    _warn(
                        f"WARNING: MLflow at {redact_uri(self.tracking_uri)} unreachable ({short_reason(e)}); "
                        f"run {self.run_id} keeps training, its records wait in {journal.path} and are sent when "
                        "the server is back"
                    )
                pause = backoff_s(self._attempt)
                self._attempt += 1
                if time.monotonic() + pause > deadline:
                    self._retry_at = time.monotonic() + pause
                    return
                if not waiting:
                    waiting = True
                    journal.set_state("waiting")
                time.sleep(pause)
                continue
            journal.mark_sent()
        self._retry_at = 0.0
        if self._attempt:
            self._attempt = 0
            journal.set_state("ok")
            _warn(f"MLflow at {redact_uri(self.tracking_uri)} answers again: run {self.run_id} is up to date")
