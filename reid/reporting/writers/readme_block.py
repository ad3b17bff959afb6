"""Keep a generated block inside a hand-written Markdown file (the study's README.md) up to date."""
from __future__ import annotations

from pathlib import Path

from reid.reporting.errors import ReportError

START, END = "<!-- results:start -->", "<!-- results:end -->"


def replace_block(path: str | Path, text: str) -> None:
    """Replace what lies between :data:`START` and :data:`END` (both must be there, in that order)."""
    path = Path(path)
    try:
        content = path.read_text()
    except FileNotFoundError:
        raise ReportError(f"{path} not found (the file whose results block to replace)") from None
    head, sep, rest = content.partition(START)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ReportError(f"{path} needs the markers {START} and {END}, in that order")
    path.write_text(f"{head}{START}\n{text.rstrip()}\n{END}{tail}")
