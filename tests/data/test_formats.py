"""Dataset parsers, the registry and the summary, on tiny trees in the real layouts."""
from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pytest

import reid.data.registry as registry
from reid.data import (
    DatasetError,
    ImageRecord,
    ReIDDataset,
    format_summary,
    load_dataset,
    register_dataset,
    summary_metrics,
)
from reid.data.summary import summary_rows


def names(records: list[ImageRecord]) -> list[str]:
    return [Path(r.path).name for r in records]


def triples(records: list[ImageRecord]) -> list[tuple[str, int, int, int]]:
    return [(Path(r.path).name, r.pid, r.camid, r.viewid) for r in records]


# ---------------------------------------------------------------- Market-style


def test_market1501_exact_records(tmp_path, trees):
    trees.market(tmp_path)
    ds = load_dataset("market1501", tmp_path)
    assert ds.name == "market1501"
    # Sorted by file name; pids 2, 7, 30 -> 0, 1, 2; cameras 0-based; junk and Thumbs.db gone.
    assert triples(ds.train) == [
        ("0002_c1s1_000451_01.jpg", 0, 0, 0),
        ("0002_c3s1_000551_01.jpg", 0, 2, 0),
        ("0007_c2s1_000101_01.jpg", 1, 1, 0),
        ("0030_c5s2_000301_01.jpg", 2, 4, 0),
        ("0030_c6s2_000201_02.jpg", 2, 5, 0),
    ]
    assert triples(ds.query) == [
        ("0002_c2s1_000601_00.jpg", 2, 1, 0),
        ("0007_c1s1_000701_00.jpg", 7, 0, 0),
        ("0030_c4s1_000801_00.jpg", 30, 3, 0),
    ]
    # Distractors (pid 0) stay in the gallery with their original pid.
    assert triples(ds.gallery) == [
        ("0000_c1s1_000001_01.jpg", 0, 0, 0),
        ("0000_c2s1_000002_01.jpg", 0, 1, 0),
        ("0002_c1s1_000901_01.jpg", 2, 0, 0),
        ("0007_c3s1_001001_01.jpg", 7, 2, 0),
        ("0030_c6s1_001101_01.jpg", 30, 5, 0),
    ]
    assert ds.meta["junk_dropped"] == 3
    assert ds.meta["skipped_corrupt"] == 0
    assert ds.meta["official_name"] == "Market-1501"
    assert ds.num_train_pids == 3 and ds.num_cams == 6 and ds.num_views == 1
    assert all(Path(r.path).is_absolute() for r in ds.gallery)


def test_market_relative_root_is_made_absolute(tmp_path, trees, monkeypatch):
    trees.market(tmp_path)
    monkeypatch.chdir(tmp_path.parent)
    ds = load_dataset("market1501", tmp_path.name)
    assert ds.train[0].path == str(tmp_path / trees.MARKET_TOP / "bounding_box_train" / "0002_c1s1_000451_01.jpg")


@pytest.mark.parametrize("name, maker", [("dukemtmc", "duke"), ("occ_duke", "occ_duke")])
def test_duke_family(tmp_path, trees, name, maker):
    getattr(trees, maker)(tmp_path)
    ds = load_dataset(name, tmp_path)
    assert triples(ds.train) == [
        ("0005_c1_f0046182.jpg", 0, 0, 0),
        ("0005_c8_f0046200.jpg", 0, 7, 0),
        ("0012_c2_f0051000.jpg", 1, 1, 0),
        ("0400_c7_f0100000.jpg", 2, 6, 0),
    ]
    assert [(r.pid, r.camid) for r in ds.query] == [(5, 1), (400, 7)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(5, 2), (400, 5), (7000, 3)]
    assert ds.num_cams == 8


def test_missing_top_folder_names_path_layout_and_official_name(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("market1501", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "Market-1501-v15.09.15") in message
    assert "Market-1501:" in message
    assert "bounding_box_train/" in message and "bounding_box_test/" in message


def test_missing_duke_query_folder(tmp_path, trees):
    dataset_dir = trees.duke(tmp_path)
    for f in (dataset_dir / "query").iterdir():
        f.unlink()
    (dataset_dir / "query").rmdir()
    with pytest.raises(DatasetError, match="DukeMTMC-reID") as err:
        load_dataset("dukemtmc", tmp_path)
    assert str(dataset_dir / "query") in str(err.value)


def test_empty_split_names_folder(tmp_path, trees):
    dataset_dir = trees.market(tmp_path)
    for f in (dataset_dir / "query").glob("*.jpg"):
        f.unlink()  # only Thumbs.db is left
    with pytest.raises(DatasetError, match="query split is empty") as err:
        load_dataset("market1501", tmp_path)
    assert str(dataset_dir / "query") in str(err.value)


def test_junk_only_split_is_empty(tmp_path, trees):
    dataset_dir = trees.market(tmp_path)
    for f in (dataset_dir / "query").glob("*.jpg"):
        f.unlink()
    trees.image(dataset_dir / "query" / "-1_c1s1_000001_00.jpg")
    with pytest.raises(DatasetError, match="query split is empty"):
        load_dataset("market1501", tmp_path)


def test_image_with_bad_name_is_an_error(tmp_path, trees):
    dataset_dir = trees.market(tmp_path)
    bad = trees.image(dataset_dir / "bounding_box_test" / "holiday_photo.png")
    with pytest.raises(DatasetError, match="does not match") as err:
        load_dataset("market1501", tmp_path)
    assert str(bad) in str(err.value)


def test_camera_out_of_range_is_an_error(tmp_path, trees):
    dataset_dir = trees.market(tmp_path)
    bad = trees.image(dataset_dir / "query" / "0002_c7s1_000001_00.jpg")
    with pytest.raises(DatasetError, match=r"camera 7 is outside 1\.\.6") as err:
        load_dataset("market1501", tmp_path)
    assert str(bad) in str(err.value)


# ---------------------------------------------------------------------- MSMT17


@pytest.mark.parametrize(
    "version, top",
    [("V1", None), ("V2", None), ("V1", "MSMT17"), ("V2", "MSMT17")],
)
def test_msmt17_releases(tmp_path, trees, version, top):
    top_dir = trees.msmt17(tmp_path, version, top)
    ds = load_dataset("msmt17", tmp_path)
    assert ds.meta["version"] == version
    assert ds.meta["dataset_dir"] == str(top_dir)
    # train + val merged; camera = third "_" field minus 1.
    assert triples(ds.train) == [
        ("0000_000_01_0303morning_0015_0.jpg", 0, 0, 0),
        ("0000_001_05_0303morning_0020_1.jpg", 0, 4, 0),
        ("0001_000_15_0303noon_0100_0.jpg", 1, 14, 0),
        ("0002_000_03_0303afternoon_0200_0.jpg", 2, 2, 0),
    ]
    assert [(r.pid, r.camid) for r in ds.query] == [(0, 1), (3, 3)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(0, 6), (3, 7), (5, 8)]
    train_dir = "train" if version == "V1" else "mask_train_v2"
    assert ds.train[0].path == str(top_dir / train_dir / "0000" / "0000_000_01_0303morning_0015_0.jpg")


def test_msmt17_two_releases_need_version(tmp_path, trees):
    trees.msmt17(tmp_path, "V1")
    trees.msmt17(tmp_path, "V2")
    with pytest.raises(DatasetError, match="several releases"):
        load_dataset("msmt17", tmp_path)
    assert load_dataset("msmt17", tmp_path, version="V2").meta["version"] == "V2"
    with pytest.raises(DatasetError, match="version must be one of"):
        load_dataset("msmt17", tmp_path, version="V3")


def test_msmt17_missing_everything(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("msmt17", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "MSMT17_V1") in message and "MSMT17_V2" in message
    assert "list_query.txt" in message and "mask_train_v2" in message


def test_msmt17_missing_list_file(tmp_path, trees):
    top_dir = trees.msmt17(tmp_path, "V1")
    (top_dir / "list_val.txt").unlink()
    with pytest.raises(DatasetError, match="MSMT17: expected file") as err:
        load_dataset("msmt17", tmp_path)
    assert str(top_dir / "list_val.txt") in str(err.value)


def test_msmt17_top_without_image_folders(tmp_path):
    (tmp_path / "MSMT17_V2" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="lacks its image folders") as err:
        load_dataset("msmt17", tmp_path)
    assert str(tmp_path / "MSMT17_V2") in str(err.value)


def test_msmt17_version_ignores_other_broken_top(tmp_path, trees):
    trees.msmt17(tmp_path, "V1")
    (tmp_path / "MSMT17_V2").mkdir()
    assert load_dataset("msmt17", tmp_path, version="V1").meta["version"] == "V1"
    with pytest.raises(DatasetError, match="MSMT17 release V2: folder .*MSMT17_V2' exists but lacks"):
        load_dataset("msmt17", tmp_path, version="V2")


def test_msmt17_listed_image_missing(tmp_path, trees):
    top_dir = trees.msmt17(tmp_path, "V1")
    gone = top_dir / "test" / "0005" / "0005_000_09_0304noon_0005_0.jpg"
    gone.unlink()
    with pytest.raises(DatasetError, match="1 image") as err:
        load_dataset("msmt17", tmp_path)
    assert str(gone) in str(err.value) and "list_gallery.txt" in str(err.value)


def test_msmt17_bad_lines(tmp_path, trees):
    top_dir = trees.msmt17(tmp_path, "V1")
    (top_dir / "list_query.txt").write_text("0000/0000_000_02_x_0001_0.jpg zero\n")
    with pytest.raises(DatasetError, match=r"list_query.txt:1: pid 'zero' is not an integer"):
        load_dataset("msmt17", tmp_path)
    (top_dir / "list_query.txt").write_text("0000/0000_000_16_x_0001_0.jpg 0\n")
    with pytest.raises(DatasetError, match=r"camera 16 is outside 1\.\.15"):
        load_dataset("msmt17", tmp_path)
    (top_dir / "list_query.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match="has no entries"):
        load_dataset("msmt17", tmp_path)


# ----------------------------------------------------------------------- VeRi


def test_veri_with_view_labels_in_dataset_folder(tmp_path, trees):
    trees.veri(tmp_path)
    ds = load_dataset("veri776", tmp_path)
    assert triples(ds.train) == [
        ("0001_c001_00016450_0.jpg", 0, 0, 3),
        ("0001_c002_00016460_0.jpg", 0, 1, 4),
        ("0005_c014_00020000_1.jpg", 1, 13, 0),
        ("0040_c020_00030000_0.jpg", 2, 19, 7),
    ]
    assert triples(ds.query) == [
        ("0002_c002_00030600_0.jpg", 2, 1, 1),
        ("0009_c010_00040000_0.jpg", 9, 9, 2),
    ]
    assert [(r.pid, r.camid, r.viewid) for r in ds.gallery] == [(2, 2, 5), (9, 10, 6), (9, 11, 2)]
    assert ds.num_cams == 20 and ds.num_views == 8
    assert ds.meta["dropped_no_view"] == 0


def test_veri_without_labels_fails_naming_the_files_and_ignores_cwd(tmp_path, trees, monkeypatch, caplog):
    root = tmp_path / "data"
    trees.veri(root, keypoints=False)
    # CLIP-ReID would read these cwd-relative files; we must not.
    cwd = tmp_path / "cwd"
    trees.keypoints(cwd / "datasets")
    trees.keypoints(cwd)
    monkeypatch.chdir(cwd)
    with pytest.raises(DatasetError) as err:
        load_dataset("veri776", root)
    for name in ("keypoint_train.txt", "keypoint_test.txt"):
        assert str(root / "VeRi" / name) in str(err.value)
    assert "dataset.options.without_views=true" in str(err.value)
    # The hint, applied: every view id 0, said once.
    with caplog.at_level(logging.WARNING, logger="reid.data.formats.veri776"):
        ds = load_dataset("veri776", root, without_views=True)
    assert {r.viewid for r in (*ds.train, *ds.query, *ds.gallery)} == {0}
    assert ds.meta["view_labels"] is None
    assert "without_views=True: every view id is 0" in caplog.text


def test_veri_explicit_keypoint_dir(tmp_path, trees):
    root = tmp_path / "data"
    trees.veri(root, keypoints=False)
    trees.keypoints(tmp_path / "labels")
    ds = load_dataset("veri776", root, keypoint_dir=tmp_path / "labels")
    assert [r.viewid for r in ds.train] == [3, 4, 0, 7]
    # Relative keypoint_dir is relative to root, not the cwd.
    trees.keypoints(root / "views")
    ds = load_dataset("veri776", root, keypoint_dir="views")
    assert [r.viewid for r in ds.query] == [1, 2]
    with pytest.raises(DatasetError, match="keypoint_dir is set") as err:
        load_dataset("veri776", root, keypoint_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "keypoint_train.txt") in str(err.value)


def test_veri_only_one_label_file_is_an_error(tmp_path, trees):
    dataset_dir = trees.veri(tmp_path)
    (dataset_dir / "keypoint_train.txt").unlink()
    with pytest.raises(DatasetError, match="only one view label file") as err:
        load_dataset("veri776", tmp_path)
    assert str(dataset_dir / "keypoint_train.txt") in str(err.value)


def test_veri_unlabelled_images_error_or_counted_drop(tmp_path, trees, caplog):
    dataset_dir = trees.veri(tmp_path, keypoints=False)
    skipped = ("0005_c014_00020000_1.jpg", "0009_c012_00040020_0.jpg")
    trees.keypoints(dataset_dir, skip=skipped)
    with pytest.raises(DatasetError, match="2 image\\(s\\) have no view label") as err:
        load_dataset("veri776", tmp_path)
    assert skipped[0] in str(err.value)
    with caplog.at_level(logging.WARNING, logger="reid.data.formats.veri776"):
        ds = load_dataset("veri776", tmp_path, drop_missing_views=True)
    assert ds.meta["dropped_no_view"] == 2
    assert "dropped 2 image(s)" in caplog.text
    # Pid 5 lost its only image, so the remaining train pids 1, 40 relabel to 0, 1.
    assert [(r.pid, r.viewid) for r in ds.train] == [(0, 3), (0, 4), (1, 7)]
    assert len(ds.gallery) == 2


def test_veri_bad_view_class(tmp_path, trees):
    dataset_dir = trees.veri(tmp_path)
    with open(dataset_dir / "keypoint_test.txt", "a") as handle:
        handle.write("image_test/0009_c012_00040020_0.jpg 1 2 9\n")
    with pytest.raises(DatasetError, match=r"keypoint_test.txt:6: view class 9 is outside 0\.\.7"):
        load_dataset("veri776", tmp_path)


# ------------------------------------------------------------------ VehicleID


def test_vehicleid_train_and_split(tmp_path, trees):
    dataset_dir = trees.vehicleid(tmp_path)
    ds = load_dataset("vehicleid", tmp_path, trial=3, seed=7)
    assert [(Path(r.path).name, r.pid, r.camid, r.viewid) for r in ds.train] == [
        ("0000001.jpg", 0, 0, 0), ("0000002.jpg", 0, 0, 0), ("0000003.jpg", 1, 0, 0),
        ("0000004.jpg", 1, 0, 0), ("0000005.jpg", 1, 0, 0), ("0000006.jpg", 2, 0, 0),
    ]
    assert ds.train[0].path == str(dataset_dir / "image" / "0000001.jpg")
    # One gallery image per test vehicle (camera 1), all others are queries (camera 0).
    assert [r.pid for r in ds.gallery] == [3, 4, 11, 17]
    assert {r.camid for r in ds.gallery} == {1} and {r.camid for r in ds.query} == {0}
    assert sorted(r.pid for r in ds.query) == [3, 3, 4, 17, 17, 17]
    all_test = {f"{n}.jpg" for n, _ in trees.VEHICLEID_LISTS["test_list_800.txt"]}
    assert set(names(ds.query)) | set(names(ds.gallery)) == all_test
    assert not set(names(ds.query)) & set(names(ds.gallery))
    keys = ("test_size", "trial", "seed", "num_test_ids")
    assert {k: ds.meta[k] for k in keys} == {"test_size": 800, "trial": 3, "seed": 7, "num_test_ids": 4}


def test_vehicleid_trials_reproducible_and_different(tmp_path, trees):
    trees.vehicleid(tmp_path)

    def gallery(trial: int, seed: int = 0) -> tuple[str, ...]:
        return tuple(names(load_dataset("vehicleid", tmp_path, trial=trial, seed=seed).gallery))

    assert gallery(2) == gallery(2)
    assert load_dataset("vehicleid", tmp_path, trial=2).query == load_dataset("vehicleid", tmp_path, trial=2).query
    assert len({gallery(t) for t in range(6)}) > 1
    assert len({gallery(0, seed=s) for s in range(6)}) > 1


def test_vehicleid_test_sizes(tmp_path, trees):
    trees.vehicleid(tmp_path)
    ds = load_dataset("vehicleid", tmp_path, test_size=1600)
    assert [r.pid for r in ds.gallery] == [21, 22] and len(ds.query) == 2
    with pytest.raises(DatasetError, match=r"test_size must be one of \(800, 1600, 2400\)"):
        load_dataset("vehicleid", tmp_path, test_size=3200)
    # test_list_2400 has one vehicle with two images: one query, one gallery.
    assert len(load_dataset("vehicleid", tmp_path, test_size=2400).query) == 1


def test_vehicleid_missing_list_and_image(tmp_path, trees):
    dataset_dir = trees.vehicleid(tmp_path)
    (dataset_dir / "train_test_split" / "test_list_800.txt").unlink()
    with pytest.raises(DatasetError, match="VehicleID: expected file") as err:
        load_dataset("vehicleid", tmp_path)
    assert str(dataset_dir / "train_test_split" / "test_list_800.txt") in str(err.value)
    assert "train_test_split/" in str(err.value)
    (dataset_dir / "image" / "0000003.jpg").unlink()
    with pytest.raises(DatasetError, match="train_list.txt") as err:
        load_dataset("vehicleid", tmp_path, test_size=1600)
    assert str(dataset_dir / "image" / "0000003.jpg") in str(err.value)


def test_vehicleid_malformed_line(tmp_path, trees):
    dataset_dir = trees.vehicleid(tmp_path)
    with open(dataset_dir / "train_test_split" / "train_list.txt", "a") as handle:
        handle.write("0000001 5 extra\n")
    with pytest.raises(DatasetError, match=r"train_list.txt:7: expected 2 whitespace-separated fields, got 3"):
        load_dataset("vehicleid", tmp_path)


# --------------------------------------------------- image checks (all formats)


def _corrupt(path: Path, kind: str, good: bytes) -> None:
    data = {
        "zero": b"",
        "text": b"this is not an image",
        "truncated": good[: len(good) // 2],
        "no_end_marker": good[:-2],
    }[kind]
    path.write_bytes(data)


@pytest.mark.parametrize("kind", ["zero", "text", "truncated", "no_end_marker"])
def test_verify_images_names_corrupt_file(tmp_path, trees, kind):
    dataset_dir = trees.market(tmp_path)
    bad = dataset_dir / "query" / "0007_c1s1_000701_00.jpg"
    _corrupt(bad, kind, trees.jpeg_bytes())
    assert len(load_dataset("market1501", tmp_path).query) == 3  # not checked by default
    with pytest.raises(DatasetError, match="1 corrupt or unreadable image") as err:
        load_dataset("market1501", tmp_path, verify_images=True)
    assert str(bad) in str(err.value)


def test_jpeg_end_marker_padding_is_accepted(tmp_path, trees):
    dataset_dir = trees.market(tmp_path)
    (dataset_dir / "query" / "0007_c1s1_000701_00.jpg").write_bytes(trees.jpeg_bytes() + b"\x00" * 100)
    assert load_dataset("market1501", tmp_path, verify_images=True).meta["skipped_corrupt"] == 0


def test_verify_images_passes_clean_tree(tmp_path, trees):
    trees.msmt17(tmp_path, "V2")
    ds = load_dataset("msmt17", tmp_path, verify_images=True)
    assert ds.meta["skipped_corrupt"] == 0 and len(ds.gallery) == 3


def test_skip_corrupt_drops_counts_and_relabels(tmp_path, trees, caplog):
    dataset_dir = trees.market(tmp_path)
    good = trees.jpeg_bytes()
    _corrupt(dataset_dir / "bounding_box_train" / "0007_c2s1_000101_01.jpg", "zero", good)
    _corrupt(dataset_dir / "bounding_box_test" / "0000_c2s1_000002_01.jpg", "truncated", good)
    with caplog.at_level(logging.WARNING, logger="reid.data.image_check"):
        ds = load_dataset("market1501", tmp_path, skip_corrupt=True)
    assert ds.meta["skipped_corrupt"] == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipping 2 corrupt image(s)" in warnings[0].getMessage()
    assert "0007_c2s1_000101_01.jpg" in warnings[0].getMessage()
    # Pid 7 vanished from train: pids 2, 30 are relabelled 0, 1.
    assert [r.pid for r in ds.train] == [0, 0, 1, 1]
    assert len(ds.gallery) == 4


def test_skip_corrupt_that_empties_a_split(tmp_path, trees):
    dataset_dir = trees.veri(tmp_path)
    for name in trees.VERI_FILES["image_query"]:
        (dataset_dir / "image_query" / name).write_bytes(b"")
    with pytest.raises(DatasetError, match="query split of .* is empty after dropping corrupt"):
        load_dataset("veri776", tmp_path, skip_corrupt=True)


# ------------------------------------------------------------------- registry


def test_unknown_name_lists_known(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("cuhk03", tmp_path)
    message = str(err.value)
    assert "'cuhk03'" in message
    for known in ("dukemtmc", "market1501", "msmt17", "occ_duke", "synthetic", "vehicleid", "veri776"):
        assert known in message


def test_bad_option_lists_accepted(tmp_path, trees):
    trees.vehicleid(tmp_path)
    with pytest.raises(DatasetError, match=r"accepts \['test_size', 'trial', 'seed'\]"):
        load_dataset("vehicleid", tmp_path, test_szie=800)


def test_register_dataset_adds_a_format(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_dataset("tiny")
    def load_tiny(root: Path, size: int = 1) -> ReIDDataset:
        records = [ImageRecord(str(root / f"{i}.jpg"), i, 0) for i in range(size)]
        return ReIDDataset("tiny", records, records, records)

    ds = load_dataset("tiny", tmp_path, size=2)
    assert [r.pid for r in ds.train] == [0, 1] and ds.meta["root"] == str(tmp_path)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("tiny")(lambda root: ds)


def test_synthetic_parses_the_world_with_the_market_parser(tmp_path, trees, monkeypatch):
    calls = []

    def ensure_world(root, **options):
        calls.append((Path(root), options))
        world = Path(root) / "world_seed3"
        trees.market(world)
        return world

    fake = types.ModuleType("reid.data.synthetic")
    fake.ensure_world = ensure_world
    monkeypatch.setitem(sys.modules, "reid.data.synthetic", fake)
    ds = load_dataset("synthetic", tmp_path, seed=3, num_ids=4)
    assert calls == [(tmp_path, {"seed": 3, "num_ids": 4})]
    assert ds.name == "synthetic" and ds.meta["world_dir"] == str(tmp_path / "world_seed3")
    assert [r.pid for r in ds.train] == [0, 0, 1, 2, 2] and len(ds.gallery) == 5


# -------------------------------------------------------------------- summary


def test_summary_rows_table_and_metrics(tmp_path, trees):
    trees.market(tmp_path)
    ds = load_dataset("market1501", tmp_path)
    assert summary_rows(ds) == [("train", 3, 5, 5), ("query", 3, 3, 3), ("gallery", 4, 5, 4)]
    assert format_summary(ds) == "\n".join(
        [
            "Dataset statistics: market1501",
            "  --------------------------------------",
            "  subset  | # ids | # images | # cameras",
            "  --------------------------------------",
            "  train   |     3 |        5 |         5",
            "  query   |     3 |        3 |         3",
            "  gallery |     4 |        5 |         4",
            "  --------------------------------------",
        ]
    )
    assert summary_metrics(ds) == {
        "data.train.ids": 3, "data.train.images": 5, "data.train.cameras": 5,
        "data.query.ids": 3, "data.query.images": 3, "data.query.cameras": 3,
        "data.gallery.ids": 4, "data.gallery.images": 5, "data.gallery.cameras": 4,
    }


def test_data_package_does_not_import_torch():
    import subprocess

    code = "import sys, reid.data; reid.data.registered_datasets(); print('torch' in sys.modules)"
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root
    )
    assert result.stdout.strip() == "False"
