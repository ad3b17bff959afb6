"""Helpers every on-disk format shares: layout checks, list files, relabelling (image listing: reid.data.images).

Kept apart from the format modules so that each format file only states its
own facts (folder names, regexes) and every format fails the same way: with a
:class:`DatasetError` that names the missing path, the dataset's official
name and the layout that was expected.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from reid.data.errors import DatasetError
from reid.data.records import ImageRecord

# How many offending names an error or warning lists before summarising.
MAX_NAMES_SHOWN = 5


def render_layout(top: str, children: Sequence[str]) -> str:
    """A small text tree of what is expected under ``root`` (for error messages)."""
    lines = ["<root>/", f"  {top.rstrip('/')}/"]
    lines += [f"    {child}" for child in children]
    return "\n".join(lines)


def _missing(kind: str, path: Path, official_name: str, layout: str) -> DatasetError:
    return DatasetError(
        f"{official_name}: expected {kind} '{path}' does not exist.\n"
        f"Expected layout under the dataset root:\n{layout}"
    )


def require_dir(path: Path, official_name: str, layout: str) -> Path:
    """Return ``path`` if it is a directory, else raise naming it and the layout."""
    if not path.is_dir():
        raise _missing("folder", path, official_name, layout)
    return path


def require_file(path: Path, official_name: str, layout: str) -> Path:
    """Return ``path`` if it is a regular file, else raise naming it and the layout."""
    if not path.is_file():
        raise _missing("file", path, official_name, layout)
    return path


def read_list_file(path: Path, num_fields: int) -> list[tuple[int, list[str]]]:
    """Non-blank lines of a whitespace-separated list file as ``(line_no, fields)``.

    Every line must have exactly ``num_fields`` fields; a file with no entries is
    an error (an empty split would make evaluation meaningless).
    """
    entries: list[tuple[int, list[str]]] = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != num_fields:
                raise DatasetError(
                    f"{path}:{line_no}: expected {num_fields} whitespace-separated "
                    f"fields, got {len(fields)}: {line.strip()!r}"
                )
            entries.append((line_no, fields))
    if not entries:
        raise DatasetError(f"list file '{path}' has no entries")
    return entries


def parse_int(text: str, where: str, what: str) -> int:
    """``int(text)`` with an error that says where the bad value came from."""
    try:
        return int(text)
    except ValueError:
        raise DatasetError(f"{where}: {what} {text!r} is not an integer") from None


def require_files_exist(paths: Iterable[str], source: Path) -> None:
    """Raise if any image a list file refers to is absent (count and first names)."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(missing[:MAX_NAMES_SHOWN])
        raise DatasetError(
            f"{len(missing)} image(s) listed in '{source}' do not exist, e.g. {shown}"
        )


def relabel_train(records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """Map training pids to 0..N-1 in sorted order of the original pid.

    Sorted (not set-iteration) order makes the labels independent of file-system
    listing order, so checkpoints' classifier rows mean the same identity everywhere.
    """
    mapping = {pid: label for label, pid in enumerate(sorted({r.pid for r in records}))}
    return [r._replace(pid=mapping[r.pid]) for r in records]


def require_nonempty(records: Sequence[ImageRecord], source: Path, split: str) -> None:
    """An empty split is always a layout mistake; say which folder or list it was."""
    if not records:
        raise DatasetError(f"{split} split is empty: no usable images in '{source}'")
