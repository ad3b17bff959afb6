"""Which files are images: the one listing every reader of image folders uses (dataset formats, reid.prepare,
reid.search), so a folder holds the same images whoever looks at it.
"""
from __future__ import annotations

import os
from pathlib import Path

# Only these suffixes (in any case) count as images; anything else in a folder (Thumbs.db, readme files) is ignored.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def list_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files directly inside ``folder`` (or at any depth below it with ``recursive``), sorted by path.

    Hidden entries are skipped: files whose name starts with "." (macOS's ``._0002_c1s1_000451_03.jpg`` resource
    forks would otherwise pass for images) and, when recursive, everything inside hidden folders. Symbolic links to
    files count; symbolic links to folders are not followed (no loops). A missing ``folder`` raises
    FileNotFoundError; an empty result is the caller's to judge.
    """
    found: list[Path] = []
    pending = [os.fspath(folder)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_file():
                    if os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                        found.append(Path(entry.path))
                elif recursive and entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
    return sorted(found)
