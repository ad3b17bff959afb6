"""A run's tracking journal: every record a tracker is asked to send, written down before it is sent.

Why: a tracking server that is down (killed, restarting, unreachable) must not cost a run its metrics. The tracker
appends each record here first and moves a cursor past it once the server has taken it; whatever lies past the
cursor when the server is back, when the run ends, or when ``python -m reid.tracking.replay`` runs later, is sent
again, in order. The journal doubles as the run's ledger of what was logged (the concurrency tests count the store
against it).

Layout, in ``<folder>/tracking/`` (the run folder, or a sweep's folder for its parent run):

* ``<run_id>.jsonl`` -- one JSON object per record: ``{"seq", "op", "run_id", "args"}``; the first line is a header
  ``{"header": {"tracking_uri", "run_id"}}``.
* ``<run_id>.sent`` -- how many records the store has taken (the cursor), rewritten atomically.
* ``<run_id>.state`` -- ``{"state", "unsent"}``: ``ok``, ``outage`` (records wait here), ``waiting`` (the run ended
  and waits for the server), ``gave_up`` (the run ended with records left here); a persistent state a test or a
  person can read, not an event to catch.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

JOURNAL_DIR = "tracking"
STATES = ("ok", "outage", "waiting", "gave_up")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Journal:
    """Append-only record list plus a sent cursor for one MLflow run (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._sent_path = self.path.with_suffix(".sent")
        self._state_path = self.path.with_suffix(".state")
        self._records = [r for r in _read_lines(self.path) if "header" not in r] if self.path.exists() else []
        self.sent = min(int(self._sent_path.read_text() or 0), len(self._records)) if self._sent_path.exists() else 0

    @classmethod
    def open(cls, folder: Path, run_id: str, tracking_uri: str) -> Journal:
        """The journal of ``run_id`` under ``folder/tracking/`` (created with its header, or reopened on resume)."""
        directory = Path(folder) / JOURNAL_DIR
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{run_id}.jsonl"
        if not path.exists():
            with path.open("w") as f:
                f.write(json.dumps({"header": {"tracking_uri": tracking_uri, "run_id": run_id}}) + "\n")
        return cls(path)

    @property
    def header(self) -> dict[str, str]:
        with self.path.open() as f:
            return json.loads(f.readline())["header"]

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self._records)

    def pending(self) -> list[dict[str, Any]]:
        """The records the store has not taken yet, oldest first."""
        return self._records[self.sent :]

    def append(self, op: str, run_id: str, args: dict[str, Any]) -> dict[str, Any]:
        record = {"seq": len(self._records), "op": op, "run_id": run_id, "args": args}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        self._records.append(record)
        return record

    def mark_sent(self, count: int = 1) -> None:
        self.sent = min(self.sent + count, len(self._records))
        _write_atomic(self._sent_path, str(self.sent))

    def set_state(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"journal state must be one of {STATES}, got {state!r}")
        _write_atomic(self._state_path, json.dumps({"state": state, "unsent": len(self.pending())}))

    def state(self) -> dict[str, Any] | None:
        return json.loads(self._state_path.read_text()) if self._state_path.exists() else None


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a journal file; a last line cut short by a killed process is dropped (it was never sent)."""
    with path.open() as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if i < len(lines) - 2:  # not the last line: the file is damaged, say so rather than skip records
                raise ValueError(f"{path}: line {i + 1} is not JSON; the journal is damaged") from None


def find_journals(root: Path) -> list[Path]:
    """Every run journal under ``root`` (a run folder, a sweep folder, or a journal file itself)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob(f"{JOURNAL_DIR}/*.jsonl") if p.is_file())
