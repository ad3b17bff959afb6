"""Tests for the synthetic ReID world: layout, naming, protocol invariants, determinism, caching."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from reid.data.synthetic import (
    ATTRIBUTE_GROUPS,
    MARKET_DIRNAME,
    MUTABLE_GROUPS,
    WorldSpec,
    describe,
    ensure_world,
    generate_world,
    load_attributes,
    load_captions,
)

# Tiny world with fixed per-identity counts, so every file count follows from the spec.
TINY = dict(
    seed=3,
    num_train_ids=6,
    num_test_ids=5,
    num_cameras=3,
    min_cameras_per_id=2,
    max_cameras_per_id=2,
    min_images_per_camera=2,
    max_images_per_camera=2,
    num_distractors=4,
    num_junk=3,
    family_size=3,
    height=64,
    width=32,
)
MARKET_REGEX = re.compile(r"([-\d]+)_c(\d)")
FULL_NAME = re.compile(r"^(-1|\d{4})_c(\d)s([1-6])_(\d{6})_(\d{2})\.jpg$")
SPLITS = ("bounding_box_train", "query", "bounding_box_test")


def _tree(world: Path) -> dict[str, bytes]:
    return {str(p.relative_to(world)): p.read_bytes() for p in sorted(world.rglob("*")) if p.is_file()}


def _parse(world: Path) -> dict[str, list[tuple[int, int]]]:
    """(pid, 1-based camera) per image, per split, read with Market's own regex."""
    out = {}
    for split in SPLITS:
        names = sorted(p.name for p in (world / MARKET_DIRNAME / split).iterdir())
        out[split] = []
        for name in names:
            m = MARKET_REGEX.match(name)
            assert m is not None and FULL_NAME.match(name), name
            out[split].append((int(m.group(1)), int(m.group(2))))
    return out


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "world"
    generate_world(out, WorldSpec(**TINY), progress=False)
    return out


def test_exact_file_counts(tiny_world: Path) -> None:
    parsed = _parse(tiny_world)
    # train: 6 ids x 2 cams x 2 imgs; query: 5 ids x 2 cams; gallery: 5 x 2 x (2-1) + 4 distractors + 3 junk
    assert {s: len(v) for s, v in parsed.items()} == {
        "bounding_box_train": 24, "query": 10, "bounding_box_test": 17}
    meta = json.loads((tiny_world / "world.json").read_text())
    assert meta["counts"] == {"train_images": 24, "query_images": 10, "gallery_images": 17,
                              "train_ids": 6, "test_ids": 5, "distractors": 4, "junk": 3}
    assert meta["format_version"] == 1
    assert meta["spec"] == WorldSpec(**TINY).to_dict()
    assert len(meta["cameras"]) == 3


def test_names_ids_and_cameras(tiny_world: Path) -> None:
    parsed = _parse(tiny_world)
    train_pids = {p for p, _ in parsed["bounding_box_train"]}
    test_pids = {p for p, _ in parsed["query"]}
    gallery_pids = {p for p, _ in parsed["bounding_box_test"]}
    assert len(train_pids) == 6 and len(test_pids) == 5
    assert train_pids.isdisjoint(test_pids)
    assert train_pids | test_pids == set(range(1, 12))
    assert gallery_pids == test_pids | {0, -1}
    assert all(1 <= cam <= 3 for recs in parsed.values() for _, cam in recs)
    names = [p.name for p in (tiny_world / MARKET_DIRNAME).rglob("*.jpg")]
    assert len(names) == len(set(names)) == 51
    counts = Counter(p for p, _ in parsed["bounding_box_test"])
    assert counts[0] == 4 and counts[-1] == 3
    assert -1 not in train_pids | test_pids and 0 not in train_pids | test_pids


def test_query_protocol(tiny_world: Path) -> None:
    parsed = _parse(tiny_world)
    attrs = load_attributes(tiny_world)
    expected = {(pid, cam) for pid, info in attrs.items() if info["split"] == "test" for cam in info["cameras"]}
    assert sorted(parsed["query"]) == sorted(expected)  # one query per (identity, camera)
    gallery = set(parsed["bounding_box_test"])
    for pid, cam in parsed["query"]:
        assert any(g_pid == pid and g_cam != cam for g_pid, g_cam in gallery), (pid, cam)


def test_images_are_rgb_jpegs_of_the_spec_size(tiny_world: Path) -> None:
    for path in sorted((tiny_world / MARKET_DIRNAME).rglob("*.jpg")):
        with Image.open(path) as img:
            assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (32, 64))


def test_same_seed_identical_bytes_other_seed_differs(tiny_world: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_world(again, WorldSpec(**TINY), progress=False)
    assert _tree(again) == _tree(tiny_world)
    other = tmp_path / "other"
    generate_world(other, WorldSpec(**{**TINY, "seed": 4}), progress=False)
    a, b = _tree(tiny_world), _tree(other)
    assert a != b
    assert not [k for k in set(a) & set(b) if a[k] == b[k]]  # no file survives a seed change
    assert a["captions.json"] != b["captions.json"]


def test_generate_refuses_existing_world(tiny_world: Path) -> None:
    with pytest.raises(FileExistsError):
        generate_world(tiny_world, WorldSpec(**TINY), progress=False)


def test_captions_cover_every_identity(tiny_world: Path) -> None:
    captions = load_captions(tiny_world)
    attrs = load_attributes(tiny_world)
    assert set(captions) == set(attrs) == set(range(1, 12))
    assert {info["split"] for info in attrs.values()} == {"train", "test"}
    for pid, text in captions.items():
        assert text == describe(attrs[pid])
        assert text.startswith("a ") and " wearing " in text


def test_describe_exact() -> None:
    attrs = dict(build="slim", height="tall", skin="light", hair_colour="black", hair_style="short",
                 hat="cap", hat_colour="red", upper_colour="orange", sleeves="short", pattern="striped",
                 pattern_colour="white", lower_type="trousers", lower_colour="blue",
                 shoes_colour="white", bag="backpack", bag_colour="black")
    assert describe(attrs) == (
        "a tall, slim person with light skin, short black hair and a red cap, wearing an orange and "
        "white striped short-sleeved shirt, blue trousers and white shoes, carrying a black backpack")
    attrs.update(height="average", build="average", hat="none", hat_colour=None, pattern="logo",
                 lower_type="skirt", lower_colour="olive", bag="none", bag_colour=None)
    assert describe(attrs) == (
        "a person with light skin and short black hair, wearing an orange short-sleeved shirt with a "
        "white logo, an olive skirt and white shoes, with no bag")


def test_families_differ_in_exactly_the_configured_groups(tiny_world: Path) -> None:
    attrs = load_attributes(tiny_world)
    families: dict[str, dict[int, dict]] = {}
    for info in attrs.values():
        families.setdefault(info["family"], {})[info["family_rank"]] = info
    # 6 train ids in families of 3 -> 2 families; 5 test ids -> 3 + 2
    assert sorted(len(f) for f in families.values()) == [2, 3, 3, 3]
    for members in families.values():
        base = members[0]
        for rank, member in members.items():
            changed = [g for g, keys in ATTRIBUTE_GROUPS.items() if any(member[k] != base[k] for k in keys)]
            assert len(changed) == (0 if rank == 0 else 1)
            assert set(changed) <= set(MUTABLE_GROUPS)
    signatures = {json.dumps({k: v for k, v in info.items()
                              if k not in ("split", "family", "family_rank", "cameras")}, sort_keys=True)
                  for info in attrs.values()}
    assert len(signatures) == 11  # every identity looks different from every other


def test_variable_counts_follow_attributes(tmp_path: Path) -> None:
    spec = WorldSpec(**{**TINY, "max_cameras_per_id": 3, "max_images_per_camera": 4, "seed": 11})
    generate_world(tmp_path / "w", spec, progress=False)
    parsed = _parse(tmp_path / "w")
    attrs = load_attributes(tmp_path / "w")
    per_id = Counter(p for p, _ in parsed["bounding_box_train"])
    for pid, info in attrs.items():
        if info["split"] == "train":
            assert 2 * len(info["cameras"]) <= per_id[pid] <= 4 * len(info["cameras"])
            assert {c for p, c in parsed["bounding_box_train"] if p == pid} == set(info["cameras"])
    assert len(parsed["query"]) == sum(len(i["cameras"]) for i in attrs.values() if i["split"] == "test")


def test_ensure_world_reuses_and_regenerates(tmp_path: Path) -> None:
    root = tmp_path / "data"
    world = ensure_world(root, progress=False, **TINY)
    assert world == root / "synthetic"
    assert (world / MARKET_DIRNAME / "query").is_dir()
    stamp = (world / "world.json").stat().st_mtime_ns
    (world / "sentinel").write_text("kept while the spec is unchanged")

    assert ensure_world(root, progress=False, **TINY) == world
    assert (world / "sentinel").exists()
    assert (world / "world.json").stat().st_mtime_ns == stamp

    ensure_world(root, progress=False, **{**TINY, "num_junk": 5})  # spec changed -> regenerated
    assert not (world / "sentinel").exists()
    assert json.loads((world / "world.json").read_text())["counts"]["junk"] == 5
    assert sorted(p.name for p in root.iterdir()) == [".synthetic.lock", "synthetic"]

    (world / "sentinel").write_text("x")
    next(iter(sorted((world / MARKET_DIRNAME / "bounding_box_test").iterdir()))).unlink()
    ensure_world(root, progress=False, **{**TINY, "num_junk": 5})  # incomplete -> regenerated
    assert not (world / "sentinel").exists()
    assert len(list((world / MARKET_DIRNAME / "bounding_box_test").iterdir())) == 19

    (world / "sentinel").write_text("x")
    (world / "world.json").unlink()  # an interrupted write never leaves world.json
    ensure_world(root, progress=False, **{**TINY, "num_junk": 5})
    assert not (world / "sentinel").exists() and (world / "world.json").is_file()


def test_ensure_world_leaves_foreign_folders_alone(tmp_path: Path) -> None:
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "synthetic" / "my_notes.txt").write_text("not a world")
    with pytest.raises(FileExistsError, match="my_notes.txt"):
        ensure_world(tmp_path, progress=False, **TINY)
    assert (tmp_path / "synthetic" / "my_notes.txt").exists()


def test_unknown_and_invalid_options() -> None:
    with pytest.raises(TypeError, match="colour_of_sky"):
        ensure_world("/nonexistent/never/created", colour_of_sky=1)
    with pytest.raises(ValueError, match="num_cameras"):
        WorldSpec(num_cameras=10)
    with pytest.raises(ValueError, match="min_images_per_camera"):
        WorldSpec(min_images_per_camera=1)
    with pytest.raises(ValueError, match="family_differences"):
        WorldSpec(family_size=3, family_differences=0)
    with pytest.raises(TypeError, match="num_junk"):
        WorldSpec(num_junk=2.5)
    assert WorldSpec(light_min=1, light_max=2).to_dict()["light_min"] == 1.0
    assert isinstance(WorldSpec(light_min=1).light_min, float)


def test_camera_style_scales_each_camera_toward_neutral() -> None:
    """camera_style multiplies every camera's drawn offset from a neutral camera; 1 keeps the drawn look exactly."""
    import numpy as np

    from reid.data.synthetic.camera import make_camera

    def look(style: float) -> dict:
        return make_camera(np.random.default_rng([3, 1, 0]), WorldSpec(camera_style=style))

    full, half, none = look(1.0), look(0.5), look(0.0)
    assert WorldSpec().camera_style == 1.0
    assert full["light"] != 1.0 and full["blur"] > 0 and full["noise"] > 0 and full["scale"] < 1
    assert half["light"] - 1 == pytest.approx(0.5 * (full["light"] - 1))
    assert [c - 1 for c in half["cast"]] == pytest.approx([0.5 * (c - 1) for c in full["cast"]])
    assert (half["blur"], half["noise"]) == pytest.approx((0.5 * full["blur"], 0.5 * full["noise"]))
    assert 1 - half["scale"] == pytest.approx(0.5 * (1 - full["scale"]))
    assert (none["light"], none["cast"], none["blur"], none["noise"], none["scale"]) == (1.0, [1.0] * 3, 0.0, 0.0, 1.0)
    # What camera_style does not touch: the view mix and the background scene are the same draws.
    assert (half["view_mix"], half["wall"], half["texture"]) == (full["view_mix"], full["wall"], full["texture"])


def test_camera_style_changes_pixels_not_the_plan(tiny_world: Path, tmp_path: Path) -> None:
    soft = tmp_path / "soft"
    generate_world(soft, WorldSpec(**TINY, camera_style=0.3), progress=False)
    assert _parse(soft) == _parse(tiny_world)
    name = sorted((tiny_world / MARKET_DIRNAME / "query").iterdir())[0].name
    soft_bytes, full_bytes = ((w / MARKET_DIRNAME / "query" / name).read_bytes() for w in (soft, tiny_world))
    assert soft_bytes != full_bytes


def test_scene_sharing_blends_every_camera_toward_one_scene() -> None:
    """0 keeps each camera's own scene (today's world, no draw moved); 1 gives every camera the same scene."""
    import numpy as np

    from reid.data.synthetic.camera import background_plate, shared_scene_plates
    from reid.data.synthetic.plan import camera_rng, plan_world, shared_scene

    spec = WorldSpec(**TINY)
    cameras = plan_world(spec)[2]
    own = [background_plate(cam, spec, camera_rng(spec.seed, c + 1000)) for c, cam in enumerate(cameras)]
    shared = shared_scene(spec)
    assert not any(np.array_equal(shared, p) for p in own)
    assert all(a is b for a, b in zip(shared_scene_plates(own, shared, 0.0), own))
    same = shared_scene_plates(own, shared, 1.0)
    assert all(np.array_equal(p, shared) for p in same)
    half = shared_scene_plates(own, shared, 0.5)
    expected = np.rint(0.5 * own[0].astype(np.float32) + 0.5 * shared.astype(np.float32))
    assert np.array_equal(half[0], expected.astype(np.uint8))
    # Halfway, two cameras' scenes sit half as far apart as before.
    gap = np.abs(own[0].astype(float) - own[1].astype(float)).mean()
    assert np.abs(half[0].astype(float) - half[1].astype(float)).mean() == pytest.approx(0.5 * gap, rel=0.02)
    with pytest.raises(ValueError, match="scene_sharing"):
        WorldSpec(scene_sharing=1.5)


def test_scene_sharing_changes_pixels_not_the_plan(tiny_world: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    generate_world(shared, WorldSpec(**TINY, scene_sharing=0.7), progress=False)
    assert _parse(shared) == _parse(tiny_world)
    name = sorted((tiny_world / MARKET_DIRNAME / "query").iterdir())[0].name
    blended, own = ((w / MARKET_DIRNAME / "query" / name).read_bytes() for w in (shared, tiny_world))
    assert blended != own


def test_camera_style_must_keep_light_and_scale_positive() -> None:
    with pytest.raises(ValueError, match="camera_style"):
        WorldSpec(camera_style=-0.1)
    with pytest.raises(ValueError, match="camera_style"):
        WorldSpec(camera_style=4.0)  # light 1 + 4 * (0.7 - 1) < 0
    assert WorldSpec(camera_style=3.0).camera_style == 3.0
