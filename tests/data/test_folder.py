"""The ``folder`` format (your own data), its validation report, ``python -m reid.prepare`` and the worked example."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from reid.data import DatasetError, load_dataset

# Importing the module registers "folder" with the registry.
from reid.data.formats.folder import (
    NO_CAMERA,
    NO_CAMERA_QUERY,
    W_DUPLICATES,
    W_QUERY_NOT_IN_GALLERY,
    W_SAME_CAMERA_ONLY,
    W_SINGLE_IMAGE,
    W_SKIPPED,
    W_TRAIN_TEST_OVERLAP,
    ValidationReport,
    label_map,
    load_folder,
    validate_folder_dataset,
    write_label_maps,
)
from reid.prepare import main as prepare_main

PROJECT = Path(__file__).resolve().parents[2]
HEADER = "path,pid,camid,split"

# Two train people seen by two cameras, two test people matched across cameras, one gallery-only person.
GOOD_ROWS = [
    "imgs/a1.jpg,alice,north,train,woman in red,x",
    "imgs/a2.jpg,alice,south,train,woman in red,",
    "imgs/b1.jpg,bob,north,train,,",
    "imgs/b2.jpg,bob,south,train,,",
    "imgs/c1.jpg,carol,north,query,,",
    "imgs/c2.jpg,carol,south,gallery,,",
    "imgs/d1.jpg,dave,south,query,,",
    "imgs/d2.jpg,dave,north,gallery,,",
    "imgs/e1.jpg,eve,east,gallery,,",
]


def rel(ds, split: str) -> list[tuple[str, int, int, int]]:
    root = Path(ds.meta["dataset_dir"])
    return [(Path(r.path).relative_to(root).as_posix(), r.pid, r.camid, r.viewid) for r in getattr(ds, split)]


def write_manifest(root: Path, rows: list[str], trees, header: str = HEADER + ",caption,notes",
                   name: str = "manifest.csv", images: bool = True) -> Path:
    """The manifest plus a valid image for every path it names."""
    root.mkdir(parents=True, exist_ok=True)
    delimiter = "\t" if name.endswith(".tsv") else ","
    if images:
        for row in rows:
            path = row.split(delimiter)[0]
            if path:
                trees.image(root / path)
    manifest = root / name
    manifest.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return manifest


def write_tree(root: Path, trees, files: dict[str, list[str]]) -> Path:
    """``{"train/alice": ["north_001.jpg", ...]}`` → images at root/train/alice/north_001.jpg."""
    for folder, names in files.items():
        for name in names:
            trees.image(root / folder / name)
    return root


TREE = {
    "train/alice": ["north_001.jpg", "south_001.jpg"],
    "train/bob": ["north_001.jpg", "south_001.jpg", "south_002.jpg"],
    "query/carol": ["north_001.jpg"],
    "gallery/carol": ["south_001.jpg", "south_002.jpg"],
    "gallery/dave": ["north_001.jpg"],
}


# ------------------------------------------------------------------ manifest form


def test_manifest_string_labels_exact_mapping_and_json(tmp_path, trees, capsys):
    write_manifest(tmp_path, GOOD_ROWS, trees)
    ds = load_folder(tmp_path)
    maps = {"pid": {"alice": 0, "bob": 1, "carol": 2, "dave": 3, "eve": 4},
            "camid": {"east": 0, "north": 1, "south": 2}}
    assert ds.meta["label_maps"] == maps
    assert rel(ds, "train") == [("imgs/a1.jpg", 0, 1, 0), ("imgs/a2.jpg", 0, 2, 0),
                                ("imgs/b1.jpg", 1, 1, 0), ("imgs/b2.jpg", 1, 2, 0)]
    assert rel(ds, "query") == [("imgs/c1.jpg", 2, 1, 0), ("imgs/d1.jpg", 3, 2, 0)]
    assert rel(ds, "gallery") == [("imgs/c2.jpg", 2, 2, 0), ("imgs/d2.jpg", 3, 1, 0), ("imgs/e1.jpg", 4, 0, 0)]
    assert ds.name == "folder" and ds.num_train_pids == 2 and ds.num_cams == 3 and ds.num_views == 1
    assert ds.meta["source"] == "manifest" and ds.meta["manifest"] == str(tmp_path / "manifest.csv")
    assert ds.meta["captions"] == {
        str(tmp_path / "imgs/a1.jpg"): "woman in red",
        str(tmp_path / "imgs/a2.jpg"): "woman in red",
    }
    assert ds.meta["extra_columns"]["notes"][str(tmp_path / "imgs/a1.jpg")] == "x"
    assert ds.meta["manifest_lines"][str(tmp_path / "imgs/c1.jpg")] == 6
    report = ds.meta["validation"]
    assert report.ok and report.warnings == [] and report.fatal == []
    assert report.counts == {"train": (2, 4, 2), "query": (2, 2, 2), "gallery": (3, 3, 3)}
    printed = capsys.readouterr().out
    assert "OK: no problems found" in printed and "Dataset check: folder dataset" in printed

    out = write_label_maps(ds, tmp_path / "run" / "label_maps.json")
    assert out == tmp_path / "run" / "label_maps.json"
    assert json.loads(out.read_text(encoding="utf-8")) == maps


def test_pid_map_train_first_natural_order_shared_by_query_and_gallery(tmp_path, trees):
    rows = [
        "i/1.jpg,10,c1,train", "i/2.jpg,10,c2,train", "i/3.jpg,2,c1,train", "i/4.jpg,2,c2,train",
        "i/5.jpg,zed,c1,query", "i/6.jpg,zed,c2,gallery", "i/7.jpg,007,c2,query", "i/8.jpg,007,c1,gallery",
        "i/9.jpg,2,c1,query", "i/10.jpg,2,c2,gallery",
    ]
    write_manifest(tmp_path, rows, trees, header=HEADER)
    ds = load_folder(tmp_path)
    # Train ids first, natural order ("2" before "10"); test-only ids after them; "2" keeps its number in test.
    assert ds.meta["label_maps"]["pid"] == {"2": 0, "10": 1, "007": 2, "zed": 3}
    assert ds.meta["label_maps"]["camid"] == {"c1": 0, "c2": 1}
    assert [r.pid for r in ds.train] == [1, 1, 0, 0]
    assert [r.pid for r in ds.query] == [3, 2, 0] and [r.pid for r in ds.gallery] == [3, 2, 0]
    assert ds.meta["validation"].warning(W_TRAIN_TEST_OVERLAP) == (W_TRAIN_TEST_OVERLAP, 1, ["2"])


def test_manifest_tsv_views_absolute_paths_and_registry(tmp_path, trees):
    outside = tmp_path / "elsewhere" / "x.jpg"  # an absolute path is taken as it is
    rows = [
        "a.jpg\tp1\t1\ttrain\tfront", "b.jpg\tp1\t2\tTrain\tback", f"{outside}\tp2\t1\tquery\tback",
        "c.jpg\tp2\t2\tgallery\tside",
    ]
    root = tmp_path / "data"
    write_manifest(root, rows, trees, header="path\tpid\tcamid\tsplit\tviewid", name="manifest.tsv")

    ds = load_dataset("folder", root, validate=True)
    assert ds.meta["label_maps"]["viewid"] == {"back": 0, "front": 1, "side": 2}
    assert [(r.camid, r.viewid) for r in ds.train] == [(0, 1), (1, 0)]
    assert ds.query[0].path == str(outside) and ds.query[0].viewid == 0
    assert ds.gallery[0].viewid == 2 and ds.num_views == 3
    assert ds.meta["skipped_corrupt"] == 0


def test_named_manifest_option_and_unknown_option(tmp_path, trees):
    write_manifest(tmp_path, GOOD_ROWS, trees, name="people.csv")
    with pytest.raises(DatasetError, match="found neither a manifest"):
        load_folder(tmp_path)
    assert len(load_folder(tmp_path, manifest="people.csv").gallery) == 3
    with pytest.raises(DatasetError, match=r"manifest '.*nope\.csv' \(option manifest\) does not exist"):
        load_folder(tmp_path, manifest="nope.csv")

    with pytest.raises(DatasetError, match=r"accepts \['manifest', 'camera_pattern', 'validate', 'skip_corrupt'\]"):
        load_dataset("folder", tmp_path, camera_regex="x")


def test_both_manifests_is_ambiguous(tmp_path, trees):
    write_manifest(tmp_path, GOOD_ROWS, trees)
    (tmp_path / "manifest.tsv").write_text("path\tpid\tcamid\tsplit\n")
    with pytest.raises(DatasetError, match="set the option manifest to the one to use"):
        load_folder(tmp_path)


# ------------------------------------------------------------------ malformed manifests


def test_missing_column(tmp_path, trees):
    manifest = write_manifest(tmp_path, ["a.jpg,north,train"], trees, header="path,camid,split")
    with pytest.raises(DatasetError) as err:
        load_folder(tmp_path)
    assert str(err.value) == (
        f"{manifest}:1: missing column(s) pid; the header must name path, pid, camid, split (found: path, camid, split)"
    )


def test_tab_separated_csv_gets_a_hint(tmp_path, trees):
    write_manifest(tmp_path, ["a.jpg\tp\tc\ttrain"], trees, header="path\tpid\tcamid\tsplit", images=False)
    with pytest.raises(DatasetError, match=r"the header is tab-separated: name the file \.tsv"):
        load_folder(tmp_path)


def test_bad_split_value_names_line(tmp_path, trees):
    rows = [*GOOD_ROWS[:2], "imgs/z.jpg,zoe,north,test,,"]
    manifest = write_manifest(tmp_path, rows, trees)
    with pytest.raises(DatasetError) as err:
        load_folder(tmp_path)
    assert str(err.value) == (
        f"manifest '{manifest}' has 1 bad row(s):\n  {manifest}:4: split 'test' is not one of train, query, gallery"
    )


def test_empty_pid_and_wrong_field_count_all_reported(tmp_path, trees):
    rows = [*GOOD_ROWS[:3], "imgs/z.jpg,,north,train,,", "imgs/y.jpg,yan,north,train", *GOOD_ROWS[3:]]
    manifest = write_manifest(tmp_path, rows, trees)
    with pytest.raises(DatasetError) as err:
        load_folder(tmp_path)
    assert str(err.value) == (
        f"manifest '{manifest}' has 2 bad row(s):\n"
        f"  {manifest}:5: empty pid\n"
        f"  {manifest}:6: expected 6 fields as in the header, got 4"
    )


def test_partially_empty_camid_is_fatal(tmp_path, trees):
    rows = [*GOOD_ROWS[:2], "imgs/b1.jpg,bob,,train,,", *GOOD_ROWS[3:]]
    manifest = write_manifest(tmp_path, rows, trees)
    with pytest.raises(DatasetError, match=rf"{manifest}:4: empty camid \(other rows have one"):
        load_folder(tmp_path)


def test_missing_file_names_manifest_line(tmp_path, trees, capsys):
    manifest = write_manifest(tmp_path, GOOD_ROWS, trees)
    (tmp_path / "imgs" / "d2.jpg").unlink()
    missing = tmp_path / "imgs" / "d2.jpg"
    with pytest.raises(DatasetError) as err:
        load_folder(tmp_path)
    assert str(err.value) == (
        f"folder dataset '{tmp_path}' failed validation with 1 fatal problem(s):\n"
        f"  - {manifest}:9: image file '{missing}' does not exist"
    )
    assert f"FATAL (1): fix these before training\n    - {manifest}:9: image file" in capsys.readouterr().out
    # validate=false skips every file check (for a dataset that has been checked before).
    assert len(load_folder(tmp_path, validate=False).gallery) == 3


def test_corrupt_image_is_fatal_unless_skipped(tmp_path, trees):
    manifest = write_manifest(tmp_path, GOOD_ROWS, trees)
    bad = tmp_path / "imgs" / "a1.jpg"
    bad.write_bytes(trees.jpeg_bytes()[:40])
    with pytest.raises(DatasetError) as err:
        load_folder(tmp_path)
    message = str(err.value)
    assert f"  - {manifest}:2: unreadable image '{bad}' (" in message
    assert message.endswith(
        "\nDrop unreadable images with dataset.options.skip_corrupt=true (load_dataset(..., skip_corrupt=True))."
    )


def test_skip_corrupt_drops_before_labelling(tmp_path, trees, capsys):
    manifest = write_manifest(tmp_path, GOOD_ROWS, trees)
    for name in ("a1.jpg", "a2.jpg"):  # every image of alice
        (tmp_path / "imgs" / name).write_bytes(b"")
    ds = load_folder(tmp_path, skip_corrupt=True)
    assert ds.meta["skipped_corrupt"] == 2
    # alice is gone: bob is train id 0 and the maps no longer mention alice.
    assert ds.meta["label_maps"]["pid"] == {"bob": 0, "carol": 1, "dave": 2, "eve": 3}
    assert [r.pid for r in ds.train] == [0, 0]
    report = ds.meta["validation"]
    assert report.warnings[0] == (W_SKIPPED, 2, [f"{manifest}:2", f"{manifest}:3"])
    assert set(report.unreadable) == {str(tmp_path / "imgs/a1.jpg"), str(tmp_path / "imgs/a2.jpg")}
    assert f"WARNING: 2 {W_SKIPPED}; e.g. {manifest}:2, {manifest}:3" in capsys.readouterr().out


def test_empty_split(tmp_path, trees):
    manifest = write_manifest(tmp_path, [r for r in GOOD_ROWS if ",query," not in r], trees)
    with pytest.raises(DatasetError) as err:
        load_folder(tmp_path)
    assert str(err.value) == f"query split is empty: no row of '{manifest}' has split 'query'"


def test_empty_manifest(tmp_path):
    (tmp_path / "manifest.csv").write_text("")
    with pytest.raises(DatasetError, match=r"manifest.csv:1: the manifest is empty"):
        load_folder(tmp_path)


# ------------------------------------------------------------------ warnings


def test_warnings_are_counted_with_examples(tmp_path, trees, capsys):
    rows = [
        "t/a1.jpg,alice,c1,train", "t/a2.jpg,alice,c2,train",
        "t/b1.jpg,bob,c1,train",                             # single-image training identity
        "t/c1.jpg,carol,c1,train",                           # single-image training identity, also in test
        "q/c1.jpg,carol,c1,query", "g/c2.jpg,carol,c2,gallery",
        "q/f1.jpg,frank,c1,query",                           # absent from the gallery
        "q/g1.jpg,gina,c1,query", "g/g2.jpg,gina,c1,gallery",  # gallery only under the query's camera
        "q/h1.jpg,hal,c2,query", "g/h2.jpg,hal,c1,gallery",
        "g/h2.jpg,hal,c1,gallery",                           # listed twice
    ]
    manifest = write_manifest(tmp_path, rows, trees, header=HEADER)
    ds = load_folder(tmp_path)
    report = ds.meta["validation"]
    assert report.ok
    assert report.warnings == [
        (W_SINGLE_IMAGE, 2, ["bob", "carol"]),
        (W_QUERY_NOT_IN_GALLERY, 1, ["frank"]),
        (W_SAME_CAMERA_ONLY, 1, ["g1.jpg (gina)"]),
        (W_TRAIN_TEST_OVERLAP, 1, ["carol"]),
        (W_DUPLICATES, 1, [f"{manifest}:12"]),
    ]
    assert report.counts == {"train": (3, 4, 2), "query": (4, 4, 2), "gallery": (3, 4, 2)}
    printed = capsys.readouterr().out
    assert f"WARNING: 2 {W_SINGLE_IMAGE}; e.g. bob, carol" in printed
    assert f"WARNING: 1 {W_QUERY_NOT_IN_GALLERY}; e.g. frank" in printed


def test_report_format_and_examples_are_capped(tmp_path, trees):
    rows = [f"t/{i}.jpg,p{i},c1,train" for i in range(1, 8)] + ["q/x.jpg,x,c1,query", "g/x.jpg,x,c2,gallery"]
    write_manifest(tmp_path, rows, trees, header=HEADER)
    ds = load_folder(tmp_path)
    report = validate_folder_dataset(ds, check_images=False)
    assert report.warning(W_SINGLE_IMAGE) == (W_SINGLE_IMAGE, 7, ["p1", "p2", "p3", "p4", "p5"])
    assert report.format() == "\n".join([
        f"Dataset check: folder dataset {tmp_path / 'manifest.csv'}",
        "  split   | ids | images | cameras",
        "  train   |   7 |      7 |       1",
        "  query   |   1 |      1 |       1",
        "  gallery |   1 |      1 |       1",
        f"  WARNING: 7 {W_SINGLE_IMAGE}; e.g. p1, p2, p3, p4, p5",
    ])


def test_validate_a_hand_built_dataset_without_meta(tmp_path, trees):
    from reid.data import ImageRecord, ReIDDataset

    image = str(trees.image(tmp_path / "x.jpg"))
    ds = ReIDDataset("mine", [ImageRecord(image, 0, 0)], [], [ImageRecord(str(tmp_path / "gone.jpg"), 5, 1)])
    report = validate_folder_dataset(ds)
    assert isinstance(report, ValidationReport)
    assert report.fatal == [
        "query split is empty: no usable images",
        f"{tmp_path / 'gone.jpg'}: image file '{tmp_path / 'gone.jpg'}' does not exist",
    ]
    assert report.warning(W_SINGLE_IMAGE) == (W_SINGLE_IMAGE, 1, ["0"])


def test_manifest_without_cameras_gives_queries_their_own(tmp_path, trees):
    rows = ["a.jpg,p,,train", "b.jpg,p,,train", "c.jpg,q,,query", "d.jpg,q,,gallery"]
    write_manifest(tmp_path, rows, trees, header=HEADER)
    ds = load_folder(tmp_path)
    assert ds.meta["label_maps"]["camid"] == {NO_CAMERA: 0, NO_CAMERA_QUERY: 1}
    assert [r.camid for r in (*ds.train, *ds.query, *ds.gallery)] == [0, 0, 1, 0]
    assert ds.meta["validation"].notes == [
        f"the camid column is empty: no camera information (query images get camera '{NO_CAMERA_QUERY}', all others "
        f"'{NO_CAMERA}')"
    ]


# ------------------------------------------------------------------ tree form


def test_tree_string_labels_and_string_cameras(tmp_path, trees):
    write_tree(tmp_path, trees, TREE)
    ds = load_folder(tmp_path, camera_pattern="^(north|south)_")
    assert ds.meta["label_maps"] == {"pid": {"alice": 0, "bob": 1, "carol": 2, "dave": 3},
                                     "camid": {"north": 0, "south": 1}}
    assert rel(ds, "train") == [("train/alice/north_001.jpg", 0, 0, 0), ("train/alice/south_001.jpg", 0, 1, 0),
                                ("train/bob/north_001.jpg", 1, 0, 0), ("train/bob/south_001.jpg", 1, 1, 0),
                                ("train/bob/south_002.jpg", 1, 1, 0)]
    assert rel(ds, "query") == [("query/carol/north_001.jpg", 2, 0, 0)]
    assert rel(ds, "gallery") == [("gallery/carol/south_001.jpg", 2, 1, 0), ("gallery/carol/south_002.jpg", 2, 1, 0),
                                  ("gallery/dave/north_001.jpg", 3, 0, 0)]
    assert ds.meta["source"] == "tree" and ds.meta["validation"].warnings == []
    write_label_maps(ds, tmp_path / "maps.json")
    assert json.loads((tmp_path / "maps.json").read_text())["camid"] == {"north": 0, "south": 1}


def test_tree_market_names_with_default_pattern(tmp_path, trees):
    write_tree(tmp_path, trees, {
        "train/0007": ["0007_c2s1_000101_01.jpg", "0007_c10s1_000101_01.jpg"],
        "query/0002": ["0002_c1s1_000601_00.jpg"],
        "gallery/0002": ["0002_c3s1_000901_01.jpg"],
    })
    ds = load_folder(tmp_path)
    assert ds.meta["label_maps"]["camid"] == {"1": 0, "2": 1, "3": 2, "10": 3}
    assert [r.camid for r in ds.train] == [3, 1]  # sorted by name: c10 before c2


@pytest.mark.parametrize("pattern, why", [(None, "camera_pattern is null"),
                                          (r"c(\d+)", r"camera_pattern 'c(\d+)' matches no file name")])
def test_tree_without_camera_information(tmp_path, trees, pattern, why):
    write_tree(tmp_path, trees, TREE)
    ds = load_folder(tmp_path, camera_pattern=pattern)
    assert ds.meta["label_maps"]["camid"] == {NO_CAMERA: 0, NO_CAMERA_QUERY: 1}
    assert (
        {r.camid for r in ds.train} == {0}
        and {r.camid for r in ds.query} == {1}
        and {r.camid for r in ds.gallery} == {0}
    )
    assert ds.meta["validation"].notes[0].startswith(why + ": no camera information")


def test_tree_partial_camera_match_names_the_files(tmp_path, trees):
    files = {**TREE, "gallery/dave": ["IMG_0001.jpg"], "train/bob": ["north_001.jpg", "snap.jpg"]}
    write_tree(tmp_path, trees, files)
    with pytest.raises(DatasetError) as err:
        load_folder(tmp_path, camera_pattern="^(north|south)_")
    assert str(err.value) == (
        "camera_pattern '^(north|south)_' matches 6 of 8 image file names but not these 2: "
        f"{tmp_path / 'train/bob/snap.jpg'}, {tmp_path / 'gallery/dave/IMG_0001.jpg'}. Make it match every file name, "
        "or set camera_pattern: null to load the data without camera information."
    )


def test_tree_errors(tmp_path, trees):
    with pytest.raises(DatasetError, match="root folder '.*' does not exist"):
        load_folder(tmp_path / "nothing")
    write_tree(tmp_path, trees, {"train/alice": ["a.jpg"], "query/bob": ["b.jpg"]})
    with pytest.raises(
        DatasetError, match=r"found neither a manifest \(manifest.csv or manifest.tsv\) nor the folder\(s\) gallery/"
    ):
        load_folder(tmp_path)
    (tmp_path / "gallery" / "bob").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"gallery split is empty: no images in '.*gallery/<identity>/'"):
        load_folder(tmp_path)
    trees.image(tmp_path / "gallery" / "loose.jpg")
    with pytest.raises(
        DatasetError, match=r"1 image\(s\) lie directly in '.*gallery' but belong in an identity folder"
    ):
        load_folder(tmp_path)


def test_label_map_is_natural_and_order_free():
    assert label_map(["cam10", "cam2", "cam1", "cam2"]) == {"cam1": 0, "cam2": 1, "cam10": 2}
    assert label_map(["1", "01", "b", "a"]) == {"01": 0, "1": 1, "a": 2, "b": 3}


# ------------------------------------------------------------------ config


def test_hydra_config_feeds_the_loader(tmp_path, trees):
    write_tree(tmp_path, trees, TREE)

    with initialize_config_dir(config_dir=str(PROJECT / "conf")):
        cfg = compose("train", overrides=["dataset=folder", f"dataset.root={tmp_path}",
                                          'dataset.options.camera_pattern="^(north|south)_"'])
        missing = compose("train", overrides=["dataset=folder"])
    assert cfg.dataset.kind == "person" and list(cfg.dataset.size) == [256, 128]
    options = OmegaConf.to_container(cfg.dataset.options, resolve=True)
    assert options == {"manifest": None, "camera_pattern": "^(north|south)_", "validate": True, "skip_corrupt": False,
                       "val_fraction": 0.0, "val_seed": 0}
    ds = load_dataset(cfg.dataset.name, cfg.dataset.root, **options)
    assert ds.meta["label_maps"]["camid"] == {"north": 0, "south": 1}
    defaults = OmegaConf.load(PROJECT / "conf" / "dataset" / "folder.yaml")
    assert defaults.options.camera_pattern == r"c(\d+)"
    with pytest.raises(Exception, match="Missing mandatory value"):
        _ = missing.dataset.root


# ------------------------------------------------------------------ python -m reid.prepare


def read_rows(manifest: Path) -> list[list[str]]:
    return [line.split(",") for line in manifest.read_text().splitlines()]


def test_prepare_tree(tmp_path, trees, capsys):
    images = write_tree(tmp_path / "mydata", trees, {**TREE, "train/alice": ["c1_001.jpg", "c2_001.jpg"],
                                                     "train/bob": ["c1_001.jpg", "c2_001.jpg", "c2_002.jpg"],
                                                     "query/carol": ["c1_001.jpg"],
                                                     "gallery/carol": ["c2_001.jpg", "c2_002.jpg"],
                                                     "gallery/dave": ["c1_001.jpg"]})
    out = images / "manifest.csv"
    assert prepare_main([str(images), "--out", str(out)]) == 0
    rows = read_rows(out)
    assert rows[0] == ["path", "pid", "camid", "split"]
    assert rows[1:4] == [
        ["train/alice/c1_001.jpg", "alice", "1", "train"],
        ["train/alice/c2_001.jpg", "alice", "2", "train"],
        ["train/bob/c1_001.jpg", "bob", "1", "train"],
    ]
    printed = capsys.readouterr().out
    assert f"wrote 9 rows to {out}" in printed
    assert "  train:        2 ids        5 images" in printed
    assert f"train on it with: python -m reid.train dataset=folder dataset.root={images}" in printed
    ds = load_folder(images)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (5, 1, 3)
    assert ds.meta["label_maps"]["pid"] == {"alice": 0, "bob": 1, "carol": 2, "dave": 3}


def market_flat(folder: Path, trees, num_ids: int = 6) -> Path:
    """Every identity under cameras 1 and 2, two images each, plus one junk image."""
    for pid in range(1, num_ids + 1):
        for cam in (1, 2):
            for k in (1, 2):
                trees.image(folder / f"{pid:04d}_c{cam}s1_{100 * cam + k:06d}_01.jpg")
    trees.image(folder / "-1_c1s1_000001_00.jpg")
    return folder


def test_prepare_flat_market_style_seeded(tmp_path, trees, capsys):
    images = market_flat(tmp_path / "crops", trees)
    out = tmp_path / "lists" / "mine.csv"
    argv = [str(images), "--layout", "flat", "--out", str(out), "--ignore-pid=-1", "--seed", "3"]
    assert prepare_main(argv) == 0
    first = out.read_text()
    assert prepare_main(argv) == 0 and out.read_text() == first  # same seed, same manifest
    rows = read_rows(out)[1:]
    assert all(r[0].startswith("../crops/") for r in rows)
    by_split = {s: [r for r in rows if r[3] == s] for s in ("train", "query", "gallery")}
    # 3 of 6 identities for test; one query per (test identity, camera), the rest gallery.
    assert [len(by_split[s]) for s in ("train", "query", "gallery")] == [12, 6, 6]
    test_ids = {r[1] for r in by_split["query"]}
    assert len(test_ids) == 3 and test_ids == {r[1] for r in by_split["gallery"]}
    assert not test_ids & {r[1] for r in by_split["train"]}
    assert sorted((r[1], r[2]) for r in by_split["query"]) == sorted(
        (pid, cam) for pid in test_ids for cam in ("1", "2")
    )
    printed = capsys.readouterr().out
    assert "dataset.options.manifest=mine.csv" in printed and "cameras: 2 (1, 2)" in printed

    ds = load_folder(out.parent, manifest="mine.csv")
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (12, 6, 6)
    assert ds.num_train_pids == 3 and ds.meta["validation"].warnings == []
    assert prepare_main([*argv[:-1], "4"]) == 0 and out.read_text() != first


def test_prepare_identity_layout_without_cameras_and_single_camera_ids(tmp_path, trees, capsys):
    images = tmp_path / "people"
    for person, names in {"ann": ["1.jpg", "2.jpg", "3.jpg"], "ben": ["1.jpg", "2.jpg"], "cy": ["1.jpg"],
                          "dee": ["1.jpg", "2.jpg"]}.items():
        for name in names:
            trees.image(images / person / name)
    out = images / "manifest.csv"
    argv = [
        str(images),
        "--layout",
        "identity",
        "--camera-pattern",
        "none",
        "--test-fraction",
        "0.99",
        "--out",
        str(out),
    ]
    assert prepare_main(argv) == 0
    # 3 test identities (the fraction is capped to leave one for training); one query each, keeping a
    # gallery image; cy has a single image and stays in the gallery as a distractor.
    assert read_rows(out)[1:] == [
        ["ann/1.jpg", "ann", "", "gallery"], ["ann/2.jpg", "ann", "", "query"], ["ann/3.jpg", "ann", "", "gallery"],
        ["ben/1.jpg", "ben", "", "gallery"], ["ben/2.jpg", "ben", "", "query"], ["cy/1.jpg", "cy", "", "gallery"],
        ["dee/1.jpg", "dee", "", "train"], ["dee/2.jpg", "dee", "", "train"],
    ]
    printed = capsys.readouterr().out
    assert "cameras: none found in the file names (camid left empty)" in printed
    assert "1 test identities went entirely to the gallery as distractors" in printed and printed.count(": cy\n") == 1
    ds = load_folder(images)
    assert ds.meta["label_maps"]["camid"] == {NO_CAMERA: 0, NO_CAMERA_QUERY: 1}


def _images(shape: dict[str, int], pids: list[str]):
    from reid.prepare import Image

    return [Image(f"/x/{pid}_c{cam}_{k}.jpg", pid, cam) for pid in pids for cam, n in shape.items() for k in range(n)]


def test_prepare_queries_keep_a_match_under_another_camera():
    from reid.prepare import split_images

    # Camera 1 twice, camera 2 once: a query from camera 2 would leave only camera-1 images,
    # the camera of the other query, so only camera 1 gives a query.
    rows, gallery_only = split_images(_images({"1": 2, "2": 1}, ["p1", "p2", "p3", "p4"]), 0.5, 1, seed=0)
    queries = [r for r in rows if r.split == "query"]
    assert len(queries) == 2 and {q.camid for q in queries} == {"1"} and gallery_only == []
    assert sum(r.split == "gallery" for r in rows) == 4
    # One image per camera: camera 1 gives the query, camera 2's image is its match.
    rows, _ = split_images(_images({"1": 1, "2": 1}, ["p1", "p2"]), 0.5, 1, seed=0)
    assert [(r.camid, r.split) for r in rows if r.split != "train"] == [("1", "query"), ("2", "gallery")]
    # Seen by one camera only: nothing can match a query, so the identity stays in the gallery.
    rows, gallery_only = split_images(_images({"1": 3}, ["p1", "p2"]), 0.5, 1, seed=0)
    assert len(gallery_only) == 1 and not any(r.split == "query" for r in rows)
    with pytest.raises(DatasetError, match="--test-fraction must be between 0 and 1"):
        split_images(_images({"1": 3}, ["p1", "p2"]), 1.0, 1, seed=0)
    with pytest.raises(DatasetError, match="need at least 2 identities"):
        split_images(_images({"1": 3}, ["p1"]), 0.5, 1, seed=0)


def test_prepare_errors_go_to_stderr(tmp_path, trees, capsys):
    images = tmp_path / "flat"
    for name in ["0001_c1_1.jpg", "0001_c2_1.jpg", "0002_c1_1.jpg", "0002_x.jpg"]:
        trees.image(images / name)
    code = prepare_main([str(images), "--layout", "flat", "--out", str(tmp_path / "m.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: camera_pattern 'c(\\d+)' matches 3 of 4 image file names but not these 1: ")
    assert err.rstrip().endswith("or pass --camera-pattern none to load the data without camera information.")
    assert not (tmp_path / "m.csv").exists()
    assert prepare_main([str(tmp_path / "nope"), "--out", str(tmp_path / "m.csv")]) == 2
    assert prepare_main([str(images), "--layout", "tree", "--out", str(tmp_path / "m.csv")]) == 2
    assert "--layout tree: '" in capsys.readouterr().err


def test_prepare_runs_as_a_module_with_check(tmp_path, trees):
    images = market_flat(tmp_path / "crops", trees, num_ids=4)
    out = images / "manifest.csv"
    result = subprocess.run(
        [sys.executable, "-m", "reid.prepare", str(images), "--layout", "flat", "--ignore-pid=-1",
         "--out", str(out), "--check"],
        cwd=PROJECT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote 16 rows to {out}" in result.stdout
    assert "Dataset check: folder dataset" in result.stdout and "OK: no problems found" in result.stdout
    help_text = subprocess.run([sys.executable, "-m", "reid.prepare", "--help"], cwd=PROJECT,
                               capture_output=True, text=True, timeout=60).stdout
    assert "--queries-per-camera" in help_text and "--layout {tree,identity,flat}" in help_text


# ------------------------------------------------------------------ worked example


TINY_WORLD = dict(
    seed=3, num_train_ids=6, num_test_ids=5, num_cameras=3, min_cameras_per_id=2, max_cameras_per_id=2,
    min_images_per_camera=2, max_images_per_camera=2, num_distractors=4, num_junk=3, family_size=3,
    height=64, width=32,
)


def load_example():
    path = PROJECT / "experiments" / "own_data_example" / "make_folder_dataset.py"
    spec = importlib.util.spec_from_file_location("make_folder_dataset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worked_example_builds_a_loadable_string_labelled_tree(tmp_path):
    example = load_example()
    out = tmp_path / "mydata"
    counts = example.make_folder_dataset(out, tmp_path / "world", **TINY_WORLD)
    # 6 train ids x 2 cameras x 2 images; 5 test ids: one query per (id, camera); 4 distractors; junk left out.
    assert counts == {"train": 24, "query": 10, "gallery": 14}
    assert sorted(p.name for p in (out / "train").iterdir()) == ["ada", "bruno", "cleo", "dmitri", "esme", "farid"]
    assert sorted(p.name for p in (out / "gallery").iterdir()) == ["greta", "hugo", "ines", "jonas", "kiri", "unknown"]
    ds = load_folder(out, camera_pattern=example.CAMERA_PATTERN)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (24, 10, 14)
    assert ds.meta["label_maps"]["pid"] == {
        "ada": 0, "bruno": 1, "cleo": 2, "dmitri": 3, "esme": 4, "farid": 5,
        "greta": 6, "hugo": 7, "ines": 8, "jonas": 9, "kiri": 10, "unknown": 11,
    }
    assert set(ds.meta["label_maps"]["camid"]) <= {"north", "south", "east"}
    assert ds.meta["validation"].warnings == [] and ds.num_train_pids == 6
    assert example.person_name(27) == "bruno2"


def test_worked_example_command_line(tmp_path, monkeypatch, capsys):
    example = load_example()
    monkeypatch.setattr(example, "SMALL_WORLD", {k: v for k, v in TINY_WORLD.items() if k != "seed"})
    assert example.main(["--out", str(tmp_path / "mydata"), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {tmp_path / 'mydata'}: train 24 images, query 10 images, gallery 14 images\n")
    assert f"dataset.root={tmp_path / 'mydata'} 'dataset.options.camera_pattern=\"^([a-z]+)-\"'" in printed
    # beside the tree: only train/, query/, gallery/ are read
    assert (tmp_path / "mydata" / ".world" / "synthetic").is_dir()
