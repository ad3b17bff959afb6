"""Experiment tracking (MLflow) behind a small interface, so `logger=none` turns it off cleanly."""
from reid.tracking.base import NullTracker, Tracker
from reid.tracking.flatten import flatten_config

__all__ = ["Tracker", "NullTracker", "flatten_config", "build_tracker"]


def build_tracker(kind: str, **options) -> Tracker:
    if kind == "none":
        return NullTracker()
    if kind == "mlflow":
        from reid.tracking.mlflow_tracker import MlflowTracker

        return MlflowTracker(**options)
    raise ValueError(f"unknown logger {kind!r} (known: mlflow, none)")
