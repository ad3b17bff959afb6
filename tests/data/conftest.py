"""Builders of tiny dataset trees in the real on-disk layout and naming.

Each tree is small enough to assert exact counts by hand, and carries the awkward
cases real datasets have: junk (pid -1), distractors (pid 0) where the format
has them, non-contiguous pids and a stray non-image file. The builders are
exposed through the ``trees`` fixture so tests do not depend on import paths.
"""
from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

STRAY_FILE = "Thumbs.db"

# --- Market-1501: train pids 2, 7, 30 (-> 0, 1, 2), one junk in train, two in the
# gallery, two distractors (pid 0) in the gallery.
MARKET_TOP = "Market-1501-v15.09.15"
MARKET_FILES = {
    "bounding_box_train": [
        "0002_c1s1_000451_01.jpg",
        "0002_c3s1_000551_01.jpg",
        "0007_c2s1_000101_01.jpg",
        "0030_c6s2_000201_02.jpg",
        "0030_c5s2_000301_01.jpg",
        "-1_c1s1_000001_00.jpg",
    ],
    "query": [
        "0002_c2s1_000601_00.jpg",
        "0007_c1s1_000701_00.jpg",
        "0030_c4s1_000801_00.jpg",
    ],
    "bounding_box_test": [
        "0002_c1s1_000901_01.jpg",
        "0007_c3s1_001001_01.jpg",
        "0030_c6s1_001101_01.jpg",
        "0000_c1s1_000001_01.jpg",
        "0000_c2s1_000002_01.jpg",
        "-1_c3s1_000003_01.jpg",
        "-1_c4s1_000004_01.jpg",
    ],
}

# --- DukeMTMC-reID / Occluded-Duke: cameras up to 8, pids 5, 12, 400; no junk or
# distractor ids exist in these datasets.
DUKE_FILES = {
    "bounding_box_train": [
        "0005_c1_f0046182.jpg",
        "0005_c8_f0046200.jpg",
        "0012_c2_f0051000.jpg",
        "0400_c7_f0100000.jpg",
    ],
    "query": ["0005_c2_f0046300.jpg", "0400_c8_f0100300.jpg"],
    "bounding_box_test": [
        "0005_c3_f0046400.jpg",
        "0400_c6_f0100400.jpg",
        "7000_c4_f0200000.jpg",
    ],
}

# --- MSMT17 lists: (relative path, pid). Train+val = 4 images of pids 0, 1, 2.
MSMT_LISTS = {
    "list_train.txt": [
        ("0000/0000_000_01_0303morning_0015_0.jpg", 0),
        ("0000/0000_001_05_0303morning_0020_1.jpg", 0),
        ("0001/0001_000_15_0303noon_0100_0.jpg", 1),
    ],
    "list_val.txt": [("0002/0002_000_03_0303afternoon_0200_0.jpg", 2)],
    "list_query.txt": [
        ("0000/0000_000_02_0304morning_0001_0.jpg", 0),
        ("0003/0003_000_04_0304noon_0002_0.jpg", 3),
    ],
    "list_gallery.txt": [
        ("0000/0000_001_07_0304morning_0003_0.jpg", 0),
        ("0003/0003_001_08_0304noon_0004_0.jpg", 3),
        ("0005/0005_000_09_0304noon_0005_0.jpg", 5),
    ],
}
MSMT_RELEASES = {
    "V1": ("MSMT17_V1", "train", "test"),
    "V2": ("MSMT17_V2", "mask_train_v2", "mask_test_v2"),
}

# --- VeRi-776: name -> view class (keypoint files hold all of them).
VERI_FILES = {
    "image_train": {
        "0001_c001_00016450_0.jpg": 3,
        "0001_c002_00016460_0.jpg": 4,
        "0005_c014_00020000_1.jpg": 0,
        "0040_c020_00030000_0.jpg": 7,
    },
    "image_query": {"0002_c002_00030600_0.jpg": 1, "0009_c010_00040000_0.jpg": 2},
    "image_test": {
        "0002_c003_00030700_0.jpg": 5,
        "0009_c011_00040010_0.jpg": 6,
        "0009_c012_00040020_0.jpg": 2,
    },
}
# Twenty keypoint coordinates precede the view class on each real line.
_KEYPOINT_COLUMNS = " ".join(["-1"] * 40)

# --- VehicleID: image names and vehicle ids per list file.
VEHICLEID_LISTS = {
    "train_list.txt": [
        ("0000001", 5), ("0000002", 5), ("0000003", 9),
        ("0000004", 9), ("0000005", 9), ("0000006", 120),
    ],
    "test_list_800.txt": [
        ("0000101", 3), ("0000102", 3), ("0000103", 3),
        ("0000104", 4), ("0000105", 4),
        ("0000106", 11),
        ("0000107", 17), ("0000108", 17), ("0000109", 17), ("0000110", 17),
    ],
    "test_list_1600.txt": [("0000201", 21), ("0000202", 21), ("0000203", 22), ("0000204", 22)],
    "test_list_2400.txt": [("0000301", 31), ("0000302", 31)],
}


@cache
def jpeg_bytes() -> bytes:
    """A valid 8x16 JPEG, encoded once and copied into every fixture image."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 16), (120, 30, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def write_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes())
    return path


def write_split_folders(dataset_dir: Path, files: dict[str, list[str]]) -> Path:
    """Flat split folders of images plus a stray non-image file in each."""
    for split, names in files.items():
        for name in names:
            write_image(dataset_dir / split / name)
        (dataset_dir / split / STRAY_FILE).write_bytes(b"\x00not an image")
    return dataset_dir


def write_market(root: Path) -> Path:
    return write_split_folders(root / MARKET_TOP, MARKET_FILES)


def write_duke(root: Path) -> Path:
    return write_split_folders(root / "dukemtmcreid" / "DukeMTMC-reID", DUKE_FILES)


def write_occ_duke(root: Path) -> Path:
    return write_split_folders(root / "dukemtmcreid" / "Occluded_Duke", DUKE_FILES)


def write_msmt17(root: Path, version: str = "V1", top: str | None = None) -> Path:
    """An MSMT17 release; ``top`` overrides the folder name (e.g. plain 'MSMT17')."""
    default_top, train_dir, test_dir = MSMT_RELEASES[version]
    top_dir = root / (top or default_top)
    for list_name, entries in MSMT_LISTS.items():
        image_dir = top_dir / (test_dir if list_name in ("list_query.txt", "list_gallery.txt") else train_dir)
        for rel, _ in entries:
            write_image(image_dir / rel)
        (top_dir / list_name).write_text("".join(f"{rel} {pid}\n" for rel, pid in entries))
    (top_dir / train_dir / STRAY_FILE).write_bytes(b"\x00")
    return top_dir


def write_keypoints(folder: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    """keypoint_train.txt (train images) and keypoint_test.txt (query + test images)."""
    folder.mkdir(parents=True, exist_ok=True)
    groups = {
        "keypoint_train.txt": ["image_train"],
        "keypoint_test.txt": ["image_query", "image_test"],
    }
    written = []
    for file_name, splits in groups.items():
        lines = [
            f"{split}/{name} {_KEYPOINT_COLUMNS} {view}\n"
            for split in splits
            for name, view in VERI_FILES[split].items()
            if name not in skip
        ]
        (folder / file_name).write_text("".join(lines))
        written.append(folder / file_name)
    return written


def write_veri(root: Path, keypoints: bool = True) -> Path:
    dataset_dir = write_split_folders(root / "VeRi", {k: list(v) for k, v in VERI_FILES.items()})
    if keypoints:
        write_keypoints(dataset_dir)
    return dataset_dir


def write_vehicleid(root: Path) -> Path:
    dataset_dir = root / "VehicleID_V1.0"
    split_dir = dataset_dir / "train_test_split"
    split_dir.mkdir(parents=True)
    for list_name, entries in VEHICLEID_LISTS.items():
        for name, _ in entries:
            write_image(dataset_dir / "image" / f"{name}.jpg")
        (split_dir / list_name).write_text("".join(f"{name} {vid}\n" for name, vid in entries))
    (dataset_dir / "image" / STRAY_FILE).write_bytes(b"\x00")
    return dataset_dir


@pytest.fixture
def trees() -> SimpleNamespace:
    """The builders and the facts they write, for exact assertions."""
    return SimpleNamespace(
        market=write_market,
        duke=write_duke,
        occ_duke=write_occ_duke,
        msmt17=write_msmt17,
        veri=write_veri,
        keypoints=write_keypoints,
        vehicleid=write_vehicleid,
        image=write_image,
        jpeg_bytes=jpeg_bytes,
        MARKET_TOP=MARKET_TOP,
        MARKET_FILES=MARKET_FILES,
        VERI_FILES=VERI_FILES,
        VEHICLEID_LISTS=VEHICLEID_LISTS,
        STRAY_FILE=STRAY_FILE,
    )
