"""MLflow tracker: one run per training job, nested under a sweep's parent run when there is one."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from reid.tracking.base import Tracker

# MLflow rejects param values longer than this; longer values are truncated with a marker.
_MAX_PARAM_LEN = 6000
# MLflow's log_batch accepts at most this many params per call.
_PARAM_BATCH = 100

# A sweep's Hydra callback (reid/tracking/sweep_callback.py) runs in the job's process right before the job and
# hands per-job context to the run created here: JSON objects of extra tags (trial number, study, host, pid) and of
# extra params (the job's own overrides as ``override.<key>``). Creating them with the run, rather than adding them
# after the job, keeps them on runs that crash or are killed.
RUN_TAGS_ENV = "REID_RUN_TAGS"
RUN_PARAMS_ENV = "REID_RUN_PARAMS"
RUN_NAME_SUFFIX_ENV = "REID_RUN_NAME_SUFFIX"  # a sweep child's "seed=2" / "trial 7", appended to its run name


def _env_json(name: str) -> dict[str, str]:
    """The JSON object in environment variable ``name`` as str -> str (empty when unset)."""
    raw = os.environ.get(name)
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must hold a JSON object, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}


def _clip(value: object) -> str:
    s = str(value)
    return s if len(s) <= _MAX_PARAM_LEN else s[: _MAX_PARAM_LEN - 3] + "..."


class MlflowTracker(Tracker):
    def __init__(self, tracking_uri: str, experiment_name: str, artifact_location: str | None = None):
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        exp = self.client.get_experiment_by_name(experiment_name)
        if exp is None:
            try:
                self.experiment_id = self.client.create_experiment(experiment_name, artifact_location=artifact_location)
            except mlflow.exceptions.MlflowException:  # created concurrently by a parallel job
                self.experiment_id = self.client.get_experiment_by_name(experiment_name).experiment_id
        else:
            self.experiment_id = exp.experiment_id
        self.run_id = None

    def start(self, run_name, tags, run_id=None, parent_run_id=None):
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            self.run_id = run_id
            return run_id
        tags = {**_env_json(RUN_TAGS_ENV), **dict(tags)}
        suffix = os.environ.get(RUN_NAME_SUFFIX_ENV)
        if suffix:
            run_name = f"{run_name} {suffix}"
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        extra = [mlflow.entities.Param(k, _clip(v)) for k, v in _env_json(RUN_PARAMS_ENV).items()]
        for i in range(0, len(extra), _PARAM_BATCH):
            self.client.log_batch(self.run_id, params=extra[i : i + _PARAM_BATCH])
        return self.run_id

    def log_params(self, params: Mapping[str, object]) -> None:
        existing = self.client.get_run(self.run_id).data.params
        batch = []
        for k, v in params.items():
            s = str(v)
            s = s if len(s) <= _MAX_PARAM_LEN else s[: _MAX_PARAM_LEN - 3] + "..."
            if k in existing:  # params are immutable in MLflow; a resumed run re-logs the same values
                continue
            batch.append(mlflow.entities.Param(k, s))
        for i in range(0, len(batch), 100):
            self.client.log_batch(self.run_id, params=batch[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import time

        ts = int(time.time() * 1000)
        batch = [mlflow.entities.Metric(k, float(v), ts, step or 0) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if os.path.isdir(path):
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def end(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)
