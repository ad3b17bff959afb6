"""Opt-in integrity check of every image a dataset refers to.

A corrupt file otherwise surfaces as a crash in a DataLoader worker hours into
training, far from its cause. ``Image.verify()`` alone misses a JPEG cut just
before its end marker, and ``load()`` alone misses a PNG whose tail (CRC) is
cut, so both are run. Neither notices a JPEG that lost only its end-of-image
marker (libjpeg has every pixel by then), yet such a file was cut short while
being written, so a JPEG must also end with that marker (trailing NUL padding
allowed).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from PIL import Image

from reid.data.errors import DatasetError
from reid.data.formats.common import MAX_NAMES_SHOWN, relabel_train
from reid.data.records import ReIDDataset

logger = logging.getLogger(__name__)

JPEG_END_MARKER = b"\xff\xd9"
# Bytes read from the end of a JPEG to find its end marker behind NUL padding
# (some writers pad files to a block size; more than 64 KiB is not padding).
_JPEG_TAIL_BYTES = 65536


def _jpeg_lacks_end_marker(path: str) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - _JPEG_TAIL_BYTES))
        tail = handle.read().rstrip(b"\x00")
    return not tail.endswith(JPEG_END_MARKER)


def image_problem(path: str) -> str | None:
    """Why ``path`` is not a readable image, or ``None`` when it decodes fully."""
    try:
        if os.path.getsize(path) == 0:
            return "zero-byte file"
        with Image.open(path) as image:
            image_format = image.format
            image.verify()
        with Image.open(path) as image:
            image.load()
        if image_format == "JPEG" and _jpeg_lacks_end_marker(path):
            return "JPEG end-of-image marker missing (truncated file)"
    # PIL signals bad content with OSError, SyntaxError, ValueError, struct.error and
    # more depending on the plugin; any of them means the file cannot be used.
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def verify_dataset_images(
    ds: ReIDDataset, skip_corrupt: bool
) -> tuple[ReIDDataset, int]:
    """Check every distinct image once; raise, or drop the bad ones and say how many.

    When images are dropped the training pids are relabelled again, so that they
    stay 0..N-1 even if every image of one identity was corrupt.
    """
    records = (*ds.train, *ds.query, *ds.gallery)
    paths = list(dict.fromkeys(r.path for r in records))
    problems = {p: why for p in paths if (why := image_problem(p)) is not None}
    if not problems:
        return ds, 0
    listed = "; ".join(f"{p} ({why})" for p, why in list(problems.items())[:MAX_NAMES_SHOWN])
    if not skip_corrupt:
        raise DatasetError(
            f"{ds.name}: {len(problems)} corrupt or unreadable image(s): {listed}. "
            "Fix or remove them, or drop them with dataset.options.skip_corrupt=true "
            "(load_dataset(..., skip_corrupt=True))."
        )
    logger.warning("%s: skipping %d corrupt image(s): %s", ds.name, len(problems), listed)
    splits = {}
    for split in ("train", "query", "gallery"):
        kept = [r for r in getattr(ds, split) if r.path not in problems]
        if not kept:
            source = ds.meta.get("dataset_dir", ds.meta.get("root", ds.name))
            raise DatasetError(
                f"{split} split of '{Path(str(source))}' is empty after dropping corrupt images"
            )
        splits[split] = kept
    splits["train"] = relabel_train(splits["train"])
    return dataclasses.replace(ds, meta=dict(ds.meta), **splits), len(problems)
