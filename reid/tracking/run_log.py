"""A run's console output kept beside it (``run.log``), and the lines that say where a finished run lives.

The log is what a researcher reads when a run from last week looks odd: the config warnings, the dataset table, the
per-epoch lines and the error, in the order they were printed. Progress bars redraw a line with carriage returns;
the file keeps only each line's final state, so a log of a long run stays readable.
"""
from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import IO, TextIO


class _Tee:
    """A text stream that writes through to ``stream`` and, one finished line at a time, to ``log``."""

    def __init__(self, stream: TextIO, log: IO[str]):
        self._stream, self._log, self._line = stream, log, ""

    def write(self, text: str) -> int:
        self._stream.write(text)
        self._line += text
        *done, self._line = self._line.split("\n")
        for line in done:  # a redrawn progress bar: what follows its last carriage return is what the user saw
            self._log.write(line.rsplit("\r", 1)[-1] + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()
        self._log.flush()

    def finish(self) -> None:
        if self._line.rsplit("\r", 1)[-1]:
            self._log.write(self._line.rsplit("\r", 1)[-1] + "\n")
        self._line = ""
        self._log.flush()

    def __getattr__(self, name: str):  # isatty, encoding, fileno ...: the terminal's
        return getattr(self._stream, name)


class RunLog:
    """``with RunLog(run_dir / "run.log"):`` tees stdout and stderr into the file (appending, so a resumed run's log
    continues). ``enabled=False`` (a DDP rank other than 0) makes it do nothing."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled
        self._file: IO[str] | None = None
        self._saved: tuple[TextIO, TextIO] | None = None

    def __enter__(self) -> RunLog:
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
            self._saved = (sys.stdout, sys.stderr)
            sys.stdout, sys.stderr = _Tee(sys.stdout, self._file), _Tee(sys.stderr, self._file)
        return self

    def flush(self) -> None:
        """Write out what is buffered (before the file is uploaded as an artifact)."""
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, _Tee):
                stream.finish()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if self._saved is None or self._file is None:
            return
        self.flush()
        sys.stdout, sys.stderr = self._saved
        self._file.close()
        self._saved, self._file = None, None


def where_lines(run_dir: Path, run_id: str | None, tracking_uri: str | None, experiment_id: str | None) -> list[str]:
    """What a finished run prints last: its folder and, when MLflow recorded it, how to open it in ``mlflow ui``."""
    lines = [f"[run] folder: {run_dir}"]
    if run_id and tracking_uri:
        if tracking_uri.startswith(("http://", "https://")):  # a server: the page is already being served
            lines.append(f"[run] MLflow run {run_id}: open {_page(tracking_uri.rstrip('/'), experiment_id, run_id)}")
        else:
            lines.append(f"[run] MLflow run {run_id}: mlflow ui --backend-store-uri {tracking_uri}, "
                         f"then open {_page('http://127.0.0.1:5000', experiment_id, run_id)}")
    return lines


def _page(base: str, experiment_id: str | None, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}" if experiment_id else base
