"""Sending one journalled record (reid/tracking/journal.py) to an MLflow store.

Every operation is safe to send twice (a record whose reply was lost is sent again): metrics carry the timestamp
they were logged with, so MLflow drops an exact repeat; params already on the run are skipped; tags, artifacts
(same path) and run status overwrite themselves.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# MLflow rejects param values longer than this; longer values are truncated with a marker.
MAX_PARAM_LEN = 6000
# MLflow's log_batch accepts at most this many params (and 1000 metrics) per call.
PARAM_BATCH = 100
METRIC_BATCH = 1000


def clip_param(value: object) -> str:
    s = str(value)
    return s if len(s) <= MAX_PARAM_LEN else s[: MAX_PARAM_LEN - 3] + "..."


def send(client: Any, record: dict[str, Any]) -> None:
    """Apply ``record`` (``op``, ``run_id``, ``args``) through ``client``; raises what the store raises."""
    from mlflow.entities import Metric, Param

    op, run_id, args = record["op"], record["run_id"], record["args"]
    if op == "log_params":
        existing = client.get_run(run_id).data.params  # immutable in MLflow; a resumed run re-logs the same keys
        batch = [Param(k, v) for k, v in args["params"].items() if k not in existing]
        for i in range(0, len(batch), PARAM_BATCH):
            client.log_batch(run_id, params=batch[i : i + PARAM_BATCH])
    elif op == "log_metrics":
        batch = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in args["metrics"]]
        for i in range(0, len(batch), METRIC_BATCH):
            client.log_batch(run_id, metrics=batch[i : i + METRIC_BATCH])
    elif op == "set_tags":
        for k, v in args["tags"].items():
            client.set_tag(run_id, k, v)
    elif op == "log_artifact":
        path = args["path"]
        if not Path(path).exists():
            raise FileNotFoundError(f"artifact {path} of run {run_id} no longer exists; it cannot be sent")
        if os.path.isdir(path):
            client.log_artifacts(run_id, path, args.get("artifact_path"))
        else:
            client.log_artifact(run_id, path, args.get("artifact_path"))
    elif op == "log_text":
        client.log_text(run_id, args["text"], args["artifact_file"])
    elif op == "update_run":
        client.update_run(run_id, status=args["status"])
    elif op == "set_terminated":
        client.set_terminated(run_id, status=args["status"], end_time=args.get("end_time"))
    else:
        raise ValueError(f"unknown journal record op {op!r} (run {run_id})")
