"""Fault handling shared by the stage loops: non-finite losses and preemption signals."""
from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Test hook: "<stage>:<epoch>:<step>[:<term>]" (1-based, as the non-finite message prints them) makes that step's
# loss term (default "loss") NaN, so the non-finite policy can be exercised end to end (tests/faults/).
INJECT_NONFINITE_ENV = "REID_INJECT_NONFINITE"

# Test hook, a barrier a test controls: with REID_HOLD_AT="<stage>:<epoch>:<step>" (1-based) and REID_HOLD_DIR set,
# the run stops before that step, writes <dir>/held and waits until <dir>/release exists or SIGTERM arrives. A test
# that must catch a run mid-flight (to kill it, to preempt it) waits for "held" instead of racing the clock.
# REID_HOLD_TRIAL=<n> holds only the sweep job of Optuna trial n (the trial number the sweeper hands each job).
HOLD_AT_ENV = "REID_HOLD_AT"
HOLD_DIR_ENV = "REID_HOLD_DIR"
HOLD_TRIAL_ENV = "REID_HOLD_TRIAL"
HELD_FILE = "held"
RELEASE_FILE = "release"
_HOLD_POLL_S = 0.01


NONFINITE_ACTIONS = ("stop", "skip")  # nonfinite.action


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
        if self.action not in NONFINITE_ACTIONS:
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
        raise ValueError(
            f"{INJECT_NONFINITE_ENV}={spec!r}: expected <stage>:<epoch>:<step>[:<term>], e.g. stage2:2:1:id"
        )
    if (parts[0], int(parts[1]), int(parts[2])) != (stage, epoch, step):
        return terms
    term = parts[3] if len(parts) == 4 else "loss"
    if term not in terms:
        raise ValueError(
            f"{INJECT_NONFINITE_ENV}={spec!r}: {stage} has no loss term {term!r} (it has {', '.join(terms)})"
        )
    out = dict(terms)
    out[term] = terms[term] * float("nan")
    out["loss"] = terms["loss"] + out[term] if term != "loss" else out[term]
    return out


def _hold_spec() -> tuple[str, int, int, Path] | None:
    spec, folder = os.environ.get(HOLD_AT_ENV), os.environ.get(HOLD_DIR_ENV)
    if not spec:
        return None
    parts = spec.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or not folder:
        raise ValueError(f"{HOLD_AT_ENV}={spec!r} needs the form <stage>:<epoch>:<step> and {HOLD_DIR_ENV} set")
    trial = os.environ.get(HOLD_TRIAL_ENV)
    if trial is not None:
        from reid.tracking import OPTUNA_TRIAL_ENV

        if os.environ.get(OPTUNA_TRIAL_ENV) != trial:
            return None
    return parts[0], int(parts[1]), int(parts[2]), Path(folder)


def hold_point(stage: str, epoch: int, step: int, stop: Callable[[], bool] = lambda: False) -> bool:
    """Wait here if ``REID_HOLD_AT`` names this step (a test barrier); returns whether it held.

    Writes ``<REID_HOLD_DIR>/held`` (atomically, with the stage, epoch, step and pid), then waits until the test
    writes ``<REID_HOLD_DIR>/release`` or ``stop()`` turns true (SIGTERM arrived), and carries on with the step.
    """
    spec = _hold_spec()
    if spec is None or spec[:3] != (stage, epoch, step):
        return False
    folder = spec[3]
    folder.mkdir(parents=True, exist_ok=True)
    info = {"stage": stage, "epoch": epoch, "step": step, "pid": os.getpid(), "rank": os.environ.get("RANK", "0")}
    tmp = folder / f".{HELD_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, folder / HELD_FILE)
    release = folder / RELEASE_FILE
    while not release.exists() and not stop():
        time.sleep(_HOLD_POLL_S)
    return True


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

    def __enter__(self) -> SigtermFlag:
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
