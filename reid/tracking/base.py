"""The tracker interface the training loop talks to."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class Tracker:
    """No-op base: every method is safe to call; subclasses record."""

    run_id: str | None = None

    def start(
        self, run_name: str | None, tags: Mapping[str, str], run_id: str | None = None, parent_run_id: str | None = None
    ) -> str | None:
        return None

    def log_params(self, params: Mapping[str, object]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        pass

    def log_text(self, text: str, artifact_file: str) -> None:
        pass

    def end(self, status: str = "FINISHED") -> None:
        pass


class NullTracker(Tracker):
    """`logger=none`: tracking off."""
