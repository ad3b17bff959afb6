"""Parsing shared by every Market-1501-style folder (Market, Duke, Occluded-Duke, VeRi).

These datasets encode identity and camera in the file name
(``0002_c1s1_000451_03.jpg`` → pid 2, camera 1) and keep the three splits in
three flat folders. pid -1 marks junk images, which the Market-1501 protocol
removes at load time; pid 0 marks distractors, which stay in the gallery.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from reid.data.errors import DatasetError
from reid.data.formats.common import (
    relabel_train,
    render_layout,
    require_dir,
    require_nonempty,
)
from reid.data.images import list_images
from reid.data.records import ImageRecord, ReIDDataset

logger = logging.getLogger(__name__)

# pid (may be -1), then "_c" and a single camera digit, as in torchreid / CLIP-ReID.
MARKET_PATTERN = re.compile(r"([-\d]+)_c(\d)")
JUNK_PID = -1
DISTRACTOR_PID = 0
# Official Market-1501 split folder names, in (train, query, gallery) order.
MARKET_SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def parse_name(
    path: Path, pattern: re.Pattern[str], max_cam: int | None
) -> tuple[int, int]:
    """``(pid, 0-based camid)`` from a file name, or DatasetError naming the file."""
    match = pattern.match(path.name)
    if match is None:
        raise DatasetError(
            f"image file name '{path}' does not match the pattern "
            f"{pattern.pattern!r} (expected e.g. 0002_c1s1_000451_03.jpg)"
        )
    try:
        pid, cam = int(match.group(1)), int(match.group(2))
    except ValueError:
        raise DatasetError(f"image file name '{path}': bad pid {match.group(1)!r}") from None
    if pid < JUNK_PID:
        raise DatasetError(f"image file name '{path}': pid {pid} is below -1")
    if cam < 1 or (max_cam is not None and cam > max_cam):
        upper = max_cam if max_cam is not None else "any"
        raise DatasetError(
            f"image file name '{path}': camera {cam} is outside 1..{upper} (cameras are 1-based on disk)"
        )
    return pid, cam - 1


def scan_split(
    folder: Path,
    pattern: re.Pattern[str] = MARKET_PATTERN,
    max_cam: int | None = None,
    viewid: int = 0,
) -> tuple[list[ImageRecord], int]:
    """Records of one split folder with junk dropped, plus the junk count.

    Raises if the folder holds no usable image (empty, or junk only).
    """
    records: list[ImageRecord] = []
    junk = 0
    for path in list_images(folder):
        pid, camid = parse_name(path, pattern, max_cam)
        if pid == JUNK_PID:
            junk += 1
            continue
        records.append(ImageRecord(str(path), pid, camid, viewid))
    require_nonempty(records, folder, folder.name)
    return records, junk


def load_market_style(
    name: str,
    official_name: str,
    dataset_dir: Path,
    layout_top: str,
    pattern: re.Pattern[str] = MARKET_PATTERN,
    max_cam: int | None = None,
    viewid: int = 0,
    split_dirs: tuple[str, str, str] = MARKET_SPLITS,
) -> ReIDDataset:
    """Load train/query/gallery from ``dataset_dir/<split_dirs>``.

    ``layout_top`` is the dataset folder as written under root (e.g.
    ``dukemtmcreid/DukeMTMC-reID``), used only in error messages.
    """
    layout = render_layout(layout_top, [f"{d}/  (*.jpg)" for d in split_dirs])
    require_dir(dataset_dir, official_name, layout)
    folders = [require_dir(dataset_dir / d, official_name, layout) for d in split_dirs]
    (train, junk_tr), (query, junk_q), (gallery, junk_g) = (
        scan_split(f, pattern, max_cam, viewid) for f in folders
    )
    junk = junk_tr + junk_q + junk_g
    if junk:
        logger.info("%s: dropped %d junk images (pid -1)", official_name, junk)
    return ReIDDataset(
        name=name,
        train=relabel_train(train),
        query=query,
        gallery=gallery,
        meta={
            "official_name": official_name,
            "dataset_dir": str(dataset_dir),
            "junk_dropped": junk,
        },
    )
