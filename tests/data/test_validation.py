"""A validation split out of the training identities (dataset.options.val_fraction): split like Market-1501's test
identities, seeded, on every format; and the run around it selects on validation and tests once, at the end."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid.data import DatasetError, load_dataset
from reid.data.records import ImageRecord, ReIDDataset
from reid.data.validation import hold_out

WORLD = dict(num_train_ids=20, num_test_ids=8, num_distractors=8, num_junk=8)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("valworld")
    load_dataset("synthetic", root, **WORLD)
    return root


def test_a_seeded_fraction_of_training_identities_becomes_query_and_gallery(world):
    full = load_dataset("synthetic", world, **WORLD)
    ds = load_dataset("synthetic", world, **WORLD, val_fraction=0.25, val_seed=3)
    held = set(ds.meta["validation"]["held_out_pids"])
    assert len(held) == 5 and ds.num_train_pids == 15
    assert sorted({r.pid for r in ds.train}) == list(range(15))  # relabelled 0..N-1 for the classifier
    assert {r.pid for r in ds.val_query + ds.val_gallery} <= held
    assert len(ds.train) + len(ds.val_query) + len(ds.val_gallery) == len(full.train)  # nothing lost, nothing added
    assert ds.query == full.query and ds.gallery == full.gallery  # the test split is untouched
    per_camera = Counter((r.pid, r.camid) for r in ds.val_query)
    assert set(per_camera.values()) == {1}  # one query per identity per camera, as Market-1501
    for q in ds.val_query:  # every query has a true match under another camera
        assert any(g.pid == q.pid and g.camid != q.camid for g in ds.val_gallery)
    images = {r.path for r in ds.val_query} | {r.path for r in ds.val_gallery}
    assert not images & {r.path for r in ds.train}
    again = load_dataset("synthetic", world, **WORLD, val_fraction=0.25, val_seed=3)
    other = load_dataset("synthetic", world, **WORLD, val_fraction=0.25, val_seed=4)
    assert again.val_query == ds.val_query and again.train == ds.train
    assert set(other.meta["validation"]["held_out_pids"]) != held


def test_the_folder_formats_label_map_follows_the_relabelling(tmp_path):
    rng = np.random.default_rng(0)
    for person in ("alice", "bob", "carol", "dave", "erin", "frank"):
        for cam in (1, 2):
            for i in range(2):
                folder = tmp_path / "train" / person
                folder.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{person}_c{cam}_{i}.jpg")
    for split in ("query", "gallery"):
        for cam in (1, 2):
            folder = tmp_path / split / "zoe"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(folder / f"zoe_c{cam}_{split}.jpg")
    ds = load_dataset("folder", tmp_path, val_fraction=0.34, val_seed=1)
    maps = ds.meta["label_maps"]
    assert len(maps["val_pid"]) == 2 and len(ds.val_query) == 4  # 2 identities x 2 cameras
    assert sorted(maps["pid"].values())[:4] == [0, 1, 2, 3]  # the four remaining names, relabelled
    by_name = {name: label for name, label in maps["pid"].items() if name != "zoe"}
    for r in ds.train:
        assert Path(r.path).parent.name in by_name and by_name[Path(r.path).parent.name] == r.pid
    for r in ds.val_query:
        assert maps["val_pid"][Path(r.path).parent.name] == r.pid


def test_fractions_that_leave_too_little_fail_with_the_numbers():
    train = [ImageRecord(f"{p}_{c}.jpg", p, c) for p in range(5) for c in range(2)]
    ds = ReIDDataset("x", train, [], [])
    with pytest.raises(DatasetError, match="holds out 0: a validation split needs >= 2"):
        hold_out(ds, 0.05)
    with pytest.raises(DatasetError, match="holds out 5.*training >= 2"):
        hold_out(ds, 0.95)
    single_camera = ReIDDataset("x", [ImageRecord(f"{p}.jpg", p, 0) for p in range(6)], [], [])
    with pytest.raises(DatasetError, match="seen by one camera only"):
        hold_out(single_camera, 0.5)
