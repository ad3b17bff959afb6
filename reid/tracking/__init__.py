"""Experiment tracking (MLflow) behind a small interface, so `logger=none` turns it off cleanly."""
from reid.tracking.base import NullTracker, Tracker
from reid.tracking.flatten import flatten_config

__all__ = [
    "Tracker",
    "NullTracker",
    "flatten_config",
    "build_tracker",
    "PARENT_RUN_ENV",
    "OPTUNA_TRIAL_ENV",
    "OPTUNA_STUDY_ENV",
]

# Environment variables that carry a sweep's context into each job's process (reid/tracking/sweep_callback.py):
# the MLflow parent run the job's run nests under (read by reid.pipeline.train), and, set per job by the resumable
# Optuna sweeper (reid/tracking/optuna_resume.py) through hydra.job.env_set, the trial number and study name.
PARENT_RUN_ENV = "REID_PARENT_RUN_ID"
OPTUNA_TRIAL_ENV = "REID_OPTUNA_TRIAL"
OPTUNA_STUDY_ENV = "REID_OPTUNA_STUDY"


def build_tracker(kind: str, **options) -> Tracker:
    if kind == "none":
        return NullTracker()
    if kind == "mlflow":
        from reid.tracking.mlflow_tracker import MlflowTracker

        return MlflowTracker(**options)
    raise ValueError(f"unknown logger {kind!r} (known: mlflow, none)")
