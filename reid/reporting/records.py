"""A run as the report sees it: plain values copied out of MLflow, so grouping and statistics need no MLflow."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PARENT_TAG = "mlflow.parentRunId"
SWEEP_ROLE_TAG = "reid.sweep"  # "parent" / "child" (reid/tracking/sweep_callback.py)
TRIAL_TAG = "optuna.trial_number"
STUDY_TAG = "optuna.study_name"
REPORT_TAG = "reid.report"  # runs made by ``--log-to new`` to hold a report: never training runs


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    name: str
    status: str  # FINISHED, FAILED, KILLED, RUNNING, SCHEDULED
    start_time: int  # ms since the epoch (MLflow's)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # the last value logged per key

    @classmethod
    def from_mlflow(cls, run: Any) -> RunRecord:
        info, data = run.info, run.data
        return cls(
            run_id=info.run_id, name=info.run_name or "", status=info.status, start_time=int(info.start_time or 0),
            params=dict(data.params), tags=dict(data.tags), metrics={k: float(v) for k, v in data.metrics.items()},
        )

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def is_trial(self) -> bool:
        return TRIAL_TAG in self.tags

    @property
    def is_sweep_parent(self) -> bool:
        return self.tags.get(SWEEP_ROLE_TAG) == "parent"
