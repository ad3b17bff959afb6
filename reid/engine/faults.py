"""Fault handling shared by the stage loops: non-finite losses and preemption signals."""
from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass
from typing import Any

# Test hook: "<stage>:<epoch>:<step>[:<term>]" (1-based, as the non-finite message prints them) makes that step's
# loss term (default "loss") NaN, so the non-finite policy can be exercised end to end (tests/faults/).
INJECT_NONFINITE_ENV = "REID_INJECT_NONFINITE"


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


def inject_nonfinite(terms: dict[str, Any], stage: str, epoch: int, step: int) -> dict[str, Any]:
    """``terms`` with a NaN injected when ``REID_INJECT_NONFINITE`` names this (stage, epoch, step); else unchanged.

    The named term becomes NaN and so does the total ("loss"), as a NaN in any term would make it.
    """
    spec = os.environ.get(INJECT_NONFINITE_ENV)
    if not spec:
        return terms
    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(f"{INJECT_NONFINITE_ENV}={spec!r}: expected <stage>:<epoch>:<step>[:<term>], e.g. stage2:2:1:id")
    if (parts[0], int(parts[1]), int(parts[2])) != (stage, epoch, step):
        return terms
    term = parts[3] if len(parts) == 4 else "loss"
    if term not in terms:
        raise ValueError(f"{INJECT_NONFINITE_ENV}={spec!r}: {stage} has no loss term {term!r} (it has {', '.join(terms)})")
    out = dict(terms)
    out[term] = terms[term] * float("nan")
    out["loss"] = terms["loss"] + out[term] if term != "loss" else out[term]
    return out


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
