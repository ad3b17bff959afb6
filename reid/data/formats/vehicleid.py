"""VehicleID (Liu et al., CVPR 2016): ``VehicleID_V1.0/{image,train_test_split}``.

List lines are ``<image name> <vehicle id>``; images live at ``image/<name>.jpg``.
The test protocol has no fixed query/gallery split: for each test vehicle one
image goes to the gallery and the rest to the query. CLIP-ReID draws that image
with unseeded ``random``; here it is drawn by a NumPy generator seeded from
``(seed, trial)``, so trial k is the same split on every machine and different
trials give different splits. Query camera 0 and gallery camera 1 keep the
Market protocol's same-camera filter from removing any true match.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from reid.data.errors import DatasetError
from reid.data.formats.common import (
    parse_int,
    read_list_file,
    relabel_train,
    render_layout,
    require_dir,
    require_file,
    require_files_exist,
)
from reid.data.records import ImageRecord, ReIDDataset
from reid.data.registry import register_dataset

OFFICIAL_NAME = "VehicleID"
TOP_FOLDER = "VehicleID_V1.0"
IMAGE_DIR = "image"
SPLIT_DIR = "train_test_split"
IMAGE_SUFFIX = ".jpg"
TRAIN_LIST = "train_list.txt"
TEST_SIZES = (800, 1600, 2400)
QUERY_CAMID, GALLERY_CAMID, TRAIN_CAMID = 0, 1, 0
VIEW_ID = 0

LAYOUT = render_layout(
    TOP_FOLDER,
    [f"{IMAGE_DIR}/<name>{IMAGE_SUFFIX}", f"{SPLIT_DIR}/"]
    + [f"  {n}" for n in (TRAIN_LIST, *(f"test_list_{s}.txt" for s in TEST_SIZES))],
)


def test_list_name(test_size: int) -> str:
    """File name of the official test list of ``test_size`` vehicles."""
    return f"test_list_{test_size}.txt"


def _read_pairs(list_path: Path, image_dir: Path) -> list[tuple[str, int]]:
    """``(image path, vehicle id)`` per line, checking that every image exists."""
    pairs = []
    for line_no, (name, vid_text) in read_list_file(list_path, num_fields=2):
        vid = parse_int(vid_text, f"{list_path}:{line_no}", "vehicle id")
        pairs.append((str(image_dir / f"{name}{IMAGE_SUFFIX}"), vid))
    require_files_exist((p for p, _ in pairs), list_path)
    return pairs


def split_query_gallery(
    pairs: list[tuple[str, int]], seed: int, trial: int
) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """One image per vehicle to the gallery, the rest to the query, reproducibly.

    Vehicles are visited in sorted id order and images in list order, so the
    split depends only on the list file, ``seed`` and ``trial``.
    """
    by_vid: dict[int, list[str]] = defaultdict(list)
    for path, vid in pairs:
        by_vid[vid].append(path)
    rng = np.random.default_rng([seed, trial])
    query, gallery = [], []
    for vid in sorted(by_vid):
        paths = by_vid[vid]
        chosen = int(rng.integers(len(paths)))
        gallery.append(ImageRecord(paths[chosen], vid, GALLERY_CAMID, VIEW_ID))
        query += [ImageRecord(p, vid, QUERY_CAMID, VIEW_ID) for i, p in enumerate(paths) if i != chosen]
    return query, gallery


@register_dataset("vehicleid")
def load_vehicleid(root: Path, test_size: int = 800, trial: int = 0, seed: int = 0) -> ReIDDataset:
    """Training list plus one seeded query/gallery draw (``trial``) of a test list."""
    if test_size not in TEST_SIZES:
        raise DatasetError(f"{OFFICIAL_NAME}: test_size must be one of {TEST_SIZES}, got {test_size!r}")
    if seed < 0 or trial < 0:
        raise DatasetError(f"{OFFICIAL_NAME}: seed and trial must be >= 0, got seed={seed}, trial={trial}")
    dataset_dir = require_dir(root / TOP_FOLDER, OFFICIAL_NAME, LAYOUT)
    image_dir = require_dir(dataset_dir / IMAGE_DIR, OFFICIAL_NAME, LAYOUT)
    split_dir = require_dir(dataset_dir / SPLIT_DIR, OFFICIAL_NAME, LAYOUT)
    train_list = require_file(split_dir / TRAIN_LIST, OFFICIAL_NAME, LAYOUT)
    test_list = require_file(split_dir / test_list_name(test_size), OFFICIAL_NAME, LAYOUT)

    train = [ImageRecord(p, vid, TRAIN_CAMID, VIEW_ID) for p, vid in _read_pairs(train_list, image_dir)]
    test_pairs = _read_pairs(test_list, image_dir)
    query, gallery = split_query_gallery(test_pairs, seed, trial)
    if not query:
        raise DatasetError(f"query split is empty: every vehicle in '{test_list}' has a single image")
    return ReIDDataset(
        name="vehicleid",
        train=relabel_train(train),
        query=query,
        gallery=gallery,
        meta={
            "official_name": OFFICIAL_NAME,
            "dataset_dir": str(dataset_dir),
            "test_size": test_size,
            "trial": trial,
            "seed": seed,
            "num_test_ids": len(gallery),
        },
    )
