"""Fault handling shared by the stage loops: non-finite losses and preemption signals."""
from __future__ import annotations

import math
import signal
from dataclasses import dataclass


class NonFiniteLossError(RuntimeError):
    """A loss or gradient became NaN/inf and the policy says stop."""


class Preempted(RuntimeError):
    """SIGTERM arrived; a checkpoint was written and the run should exit cleanly."""


@dataclass
class NonFinitePolicy:
    """``action``: "stop" (raise, keeping the last good checkpoint) or "skip" (drop the step, up to ``max_skips``)."""

    action: str
    max_skips: int
    skipped: int = 0

    def __post_init__(self) -> None:
        if self.action not in ("stop", "skip"):
            raise ValueError(f"train.nonfinite.action must be 'stop' or 'skip', got {self.action!r}")

    def handle(self, where: str) -> None:
        """Called on a non-finite step: raise or count a skip."""
        if self.action == "skip" and self.skipped < self.max_skips:
            self.skipped += 1
            print(f"[nonfinite] {where}: step skipped ({self.skipped}/{self.max_skips})", flush=True)
            return
        extra = f" after {self.skipped} skipped steps (limit {self.max_skips})" if self.action == "skip" else ""
        raise NonFiniteLossError(f"{where}{extra}; training stopped, the last good checkpoint is kept")


def first_nonfinite(terms: dict[str, float]) -> str | None:
    for name, value in terms.items():
        if not math.isfinite(value):
            return name
    return None


class SigtermFlag:
    """Turns SIGTERM into a flag the loop polls between steps (so a checkpoint can be written)."""

    def __init__(self) -> None:
        self.raised = False
        self._previous = None

    def __enter__(self) -> "SigtermFlag":
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handler)
        except ValueError:  # not the main thread (e.g. a joblib worker thread): leave signals alone
            self._previous = None
        return self

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        self.raised = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
