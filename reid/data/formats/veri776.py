"""VeRi-776 (Liu et al., ICME 2016): ``VeRi/{image_train,image_query,image_test}``.

Names look like ``0001_c001_00016450_0.jpg`` (pid 1, camera 1 of 20). View ids
come from the orientation labels of Zhongdao/VehicleReIDKeyPointData
(``keypoint_train.txt``, ``keypoint_test.txt``; last column = class 0..7).

Deviations from CLIP-ReID, on purpose:
* the label files are looked up in the dataset folder or an explicit
  ``keypoint_dir``, never relative to the working directory (Hydra changes it);
* without label files the load fails, naming the files it looked for, unless
  ``without_views=True`` says to train and evaluate with every view id 0;
* an image with no label is an error unless ``drop_missing_views=True``, which
  drops such images with a counted warning (CLIP-ReID drops them silently).
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path, PurePosixPath

from reid.data.errors import DatasetError
from reid.data.formats.common import (
    MAX_NAMES_SHOWN,
    parse_int,
    relabel_train,
    render_layout,
    require_dir,
    require_nonempty,
)
from reid.data.formats.market_style import scan_split
from reid.data.records import ImageRecord, ReIDDataset
from reid.data.registry import register_dataset

logger = logging.getLogger(__name__)

OFFICIAL_NAME = "VeRi-776"
TOP_FOLDER = "VeRi"
SPLIT_DIRS = ("image_train", "image_query", "image_test")
VERI_PATTERN = re.compile(r"([-\d]+)_c(\d+)")
NUM_CAMERAS = 20
NUM_VIEWS = 8
KEYPOINT_FILES = ("keypoint_train.txt", "keypoint_test.txt")

LAYOUT = render_layout(
    TOP_FOLDER,
    [f"{d}/  (<vid>_c<cam>_<frame>_<n>.jpg)" for d in SPLIT_DIRS]
    + [f"{f}  (view labels; or in keypoint_dir)" for f in KEYPOINT_FILES],
)


def _read_views(path: Path) -> dict[str, int]:
    """``file name -> view class`` from one keypoint file (last column)."""
    views: dict[str, int] = {}
    conflicts = 0
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}:{line_no}"
            if len(fields) < 2:
                raise DatasetError(f"{where}: expected '<image path> ... <view class>', got {line.strip()!r}")
            view = parse_int(fields[-1], where, "view class")
            if not 0 <= view < NUM_VIEWS:
                raise DatasetError(f"{where}: view class {view} is outside 0..{NUM_VIEWS - 1}")
            name = PurePosixPath(fields[0]).name
            conflicts += views.get(name, view) != view
            views[name] = view
    if not views:
        raise DatasetError(f"keypoint file '{path}' has no entries")
    if conflicts:
        # The public keypoint_test.txt repeats names; the last line wins, as in CLIP-ReID.
        logger.warning("%s: %d repeated image names with differing views; the last one is used", path, conflicts)
    return views


def _view_files(
    root: Path, dataset_dir: Path, keypoint_dir: str | os.PathLike[str] | None, without_views: bool
) -> list[Path] | None:
    """The two label files to use, or None when ``without_views`` asks for view id 0 throughout."""
    if without_views:
        logger.warning("%s: without_views=True: every view id is 0 (view labels are not read)", OFFICIAL_NAME)
        return None
    if keypoint_dir is not None:
        # A relative keypoint_dir is taken relative to the dataset root, never the cwd.
        folder = root / Path(keypoint_dir).expanduser()
        files = [folder / f for f in KEYPOINT_FILES]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DatasetError(f"{OFFICIAL_NAME}: keypoint_dir is set but {', '.join(missing)} does not exist")
        return files
    files = [dataset_dir / f for f in KEYPOINT_FILES]
    present = [f.is_file() for f in files]
    if all(present):
        return files
    if any(present):
        missing = [str(f) for f, ok in zip(files, present) if not ok]
        raise DatasetError(
            f"{OFFICIAL_NAME}: only one view label file found; {', '.join(missing)} is missing. "
            "Both are needed, or neither (then every view id is 0)."
        )
    raise DatasetError(
        f"{OFFICIAL_NAME}: no view labels: {files[0]} and {files[1]} do not exist (they come from "
        "Zhongdao/VehicleReIDKeyPointData). Put them there, point dataset.options.keypoint_dir at their folder, "
        "or set dataset.options.without_views=true to train and evaluate with every view id 0."
    )


def _apply_views(
    split: list[ImageRecord], views: dict[str, int]
) -> tuple[list[ImageRecord], list[str]]:
    """Records with their view ids, and the paths that have no label."""
    labelled, missing = [], []
    for record in split:
        view = views.get(Path(record.path).name)
        if view is None:
            missing.append(record.path)
        else:
            labelled.append(record._replace(viewid=view))
    return labelled, missing


@register_dataset("veri776")
def load_veri776(
    root: Path,
    keypoint_dir: str | os.PathLike[str] | None = None,
    drop_missing_views: bool = False,
    without_views: bool = False,
) -> ReIDDataset:
    """576 training vehicles over 20 cameras, with view classes 0..7 when labels exist."""
    dataset_dir = require_dir(root / TOP_FOLDER, OFFICIAL_NAME, LAYOUT)
    folders = [require_dir(dataset_dir / d, OFFICIAL_NAME, LAYOUT) for d in SPLIT_DIRS]
    scanned = [scan_split(f, VERI_PATTERN, NUM_CAMERAS) for f in folders]
    splits = [records for records, _ in scanned]
    junk = sum(n for _, n in scanned)
    meta: dict = {"official_name": OFFICIAL_NAME, "dataset_dir": str(dataset_dir), "junk_dropped": junk}

    files = _view_files(root, dataset_dir, keypoint_dir, without_views)
    meta["view_labels"] = [str(f) for f in files] if files else None
    dropped = 0
    if files is not None:
        train_views, test_views = (_read_views(f) for f in files)
        # CLIP-ReID's lookup order: the train labels first, then the test labels.
        views = {**test_views, **train_views}
        applied = [_apply_views(s, views) for s in splits]
        missing = [p for _, m in applied for p in m]
        if missing and not drop_missing_views:
            raise DatasetError(
                f"{OFFICIAL_NAME}: {len(missing)} image(s) have no view label in "
                f"{', '.join(map(str, files))}, e.g. {', '.join(missing[:MAX_NAMES_SHOWN])}. "
                "Pass drop_missing_views=True to drop them."
            )
        if missing:
            logger.warning(
                "%s: dropped %d image(s) without a view label, e.g. %s",
                OFFICIAL_NAME, len(missing), ", ".join(missing[:MAX_NAMES_SHOWN]),
            )
        dropped = len(missing)
        splits = [s for s, _ in applied]
        for records, folder in zip(splits, folders):
            require_nonempty(records, folder, folder.name)
    meta["dropped_no_view"] = dropped
    train, query, gallery = splits
    return ReIDDataset("veri776", relabel_train(train), query, gallery, meta)
