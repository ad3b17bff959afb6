"""MSMT17 (Wei et al., CVPR 2018): list-file driven, in its V1 or V2 release.

Accepted top folders under root: ``MSMT17_V1/`` (``train/``, ``test/``),
``MSMT17_V2/`` (``mask_train_v2/``, ``mask_test_v2/``; faces blurred) and a
plain ``MSMT17/`` holding either pair, as CLIP-ReID expects. Each holds the four
list files. V1 and V2 differ in difficulty (docs/method.md §11.1), so when more than
one is present the caller must choose with ``version`` rather than get one at
random; the chosen version is recorded in ``meta["version"]``.

A list line is ``<relative/path.jpg> <pid>``; the pid comes from the list and
the camera is the third ``_`` field of the file name (1..15 on disk), as in
torchreid and CLIP-ReID. Train and val lists are merged for training.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reid.data.errors import DatasetError
from reid.data.formats.common import (
    parse_int,
    read_list_file,
    relabel_train,
    require_file,
    require_files_exist,
)
from reid.data.records import ImageRecord, ReIDDataset
from reid.data.registry import register_dataset

logger = logging.getLogger(__name__)

OFFICIAL_NAME = "MSMT17"
NUM_CAMERAS = 15
# Image folder pairs (train, test) of each release.
IMAGE_DIRS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}
# Top folders tried, with the releases each may hold.
TOP_FOLDERS = {"MSMT17_V1": ("V1",), "MSMT17_V2": ("V2",), "MSMT17": ("V1", "V2")}
LIST_TRAIN, LIST_VAL, LIST_QUERY, LIST_GALLERY = (
    "list_train.txt",
    "list_val.txt",
    "list_query.txt",
    "list_gallery.txt",
)
# Position of the 1-based camera number among the "_"-separated name fields.
CAMERA_FIELD = 2

LAYOUT = "\n".join(
    [
        "<root>/",
        "  MSMT17_V1/                      (or MSMT17/ as in CLIP-ReID)",
        "    train/<pid>/<pid>_<idx>_<cam>_<...>.jpg",
        "    test/<pid>/...",
        f"    {LIST_TRAIN}  {LIST_VAL}  {LIST_QUERY}  {LIST_GALLERY}",
        "  MSMT17_V2/                      (blurred faces; or MSMT17/)",
        "    mask_train_v2/  mask_test_v2/",
        f"    {LIST_TRAIN}  {LIST_VAL}  {LIST_QUERY}  {LIST_GALLERY}",
    ]
)


@dataclass(frozen=True)
class _Release:
    """One MSMT17 release found on disk."""

    top: Path
    version: str
    train_dir: Path
    test_dir: Path


def _find_releases(root: Path) -> tuple[list[_Release], list[str]]:
    """Complete releases under ``root``, and notes on top folders lacking image folders."""
    releases, broken = [], []
    for top_name, versions in TOP_FOLDERS.items():
        top = root / top_name
        if not top.is_dir():
            continue
        found = [
            _Release(top, v, top / IMAGE_DIRS[v][0], top / IMAGE_DIRS[v][1])
            for v in versions
            if (top / IMAGE_DIRS[v][0]).is_dir() and (top / IMAGE_DIRS[v][1]).is_dir()
        ]
        if not found:
            pairs = " or ".join(f"{a}/ + {b}/" for a, b in (IMAGE_DIRS[v] for v in versions))
            broken.append(f"folder '{top}' exists but lacks its image folders ({pairs})")
        releases += found
    return releases, broken


def _choose_release(root: Path, version: str | None) -> _Release:
    if version is not None and version not in IMAGE_DIRS:
        raise DatasetError(f"{OFFICIAL_NAME}: version must be one of {sorted(IMAGE_DIRS)}, got {version!r}")
    found, broken = _find_releases(root)
    releases = [r for r in found if version in (None, r.version)]
    if not releases:
        wanted = f" release {version}" if version else ""
        if broken:
            problem = "; ".join(broken)
        else:
            problem = "none of the expected folders exists (" + ", ".join(f"'{root / t}'" for t in TOP_FOLDERS) + ")"
        raise DatasetError(
            f"{OFFICIAL_NAME}{wanted}: {problem}.\nExpected layout under the dataset root:\n{LAYOUT}"
        )
    if len(releases) > 1:
        found_text = ", ".join(f"'{r.top}' ({r.version})" for r in releases)
        raise DatasetError(
            f"{OFFICIAL_NAME}: several releases under '{root}': {found_text}; "
            "pass version='V1' or version='V2' (and keep only one folder per release)"
        )
    return releases[0]


def _parse_list(list_path: Path, image_dir: Path) -> list[ImageRecord]:
    records = []
    for line_no, (rel_path, pid_text) in read_list_file(list_path, num_fields=2):
        where = f"{list_path}:{line_no}"
        pid = parse_int(pid_text, where, "pid")
        if pid < 0:
            raise DatasetError(f"{where}: pid {pid} is negative")
        fields = PurePosixPath(rel_path).name.split("_")
        if len(fields) <= CAMERA_FIELD:
            raise DatasetError(
                f"{where}: file name {rel_path!r} has no camera field "
                "(expected <pid>_<idx>_<cam>_<...>.jpg)"
            )
        cam = parse_int(fields[CAMERA_FIELD], where, "camera")
        if not 1 <= cam <= NUM_CAMERAS:
            raise DatasetError(f"{where}: camera {cam} is outside 1..{NUM_CAMERAS}")
        records.append(ImageRecord(str(image_dir / rel_path), pid, cam - 1, 0))
    require_files_exist((r.path for r in records), list_path)
    return records


@register_dataset("msmt17")
def load_msmt17(root: Path, version: str | None = None) -> ReIDDataset:
    """Load MSMT17; ``version`` ('V1' or 'V2') is needed only when both are present."""
    release = _choose_release(root, version)
    lists = {n: require_file(release.top / n, OFFICIAL_NAME, LAYOUT)
             for n in (LIST_TRAIN, LIST_VAL, LIST_QUERY, LIST_GALLERY)}
    train = _parse_list(lists[LIST_TRAIN], release.train_dir)
    train += _parse_list(lists[LIST_VAL], release.train_dir)
    query = _parse_list(lists[LIST_QUERY], release.test_dir)
    gallery = _parse_list(lists[LIST_GALLERY], release.test_dir)
    train_pids = sorted({r.pid for r in train})
    if train_pids != list(range(len(train_pids))):
        # CLIP-ReID asserts this; the official lists satisfy it, so say when they do not.
        logger.warning(
            "%s: training pids in '%s' are not 0..N-1; relabelled in sorted order",
            OFFICIAL_NAME, release.top,
        )
    return ReIDDataset(
        name="msmt17",
        train=relabel_train(train),
        query=query,
        gallery=gallery,
        meta={
            "official_name": OFFICIAL_NAME,
            "dataset_dir": str(release.top),
            "version": release.version,
        },
    )
