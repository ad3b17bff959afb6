"""``python -m reid.prepare``: write a ``folder``-format manifest from a folder of images.

The common cases need no script of one's own:

* ``--layout tree``: ``<split>/<identity>/<image>`` with split train/query/gallery
  (the manifest mirrors the folders; handy to add captions in a spreadsheet);
* ``--layout identity``: ``<identity>/<image>``, one folder per identity;
* ``--layout flat``: one folder of Market-style names (``0002_c1s1_000451_03.jpg``),
  identity and camera read by regexes.

For ``identity`` and ``flat`` the tool makes the splits itself, seeded: a
fraction of the identities become test identities, and of each test identity
``--queries-per-camera`` images per camera go to the query and the rest to the
gallery, as Market-1501 does. A query is only taken if the identity keeps a
gallery image under another camera (otherwise the same-camera filter would
leave it unmatched), so an identity seen by one camera stays in the gallery as
a distractor.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from reid.data.errors import DatasetError
from reid.data.formats.folder import (
    DEFAULT_CAMERA_PATTERN,
    REQUIRED_COLUMNS,
    SPLITS,
    camera_labels,
    compile_pattern,
    label_sort_key,
    load_folder,
    search_label,
)
from reid.data.images import list_images

LAYOUTS = ("tree", "identity", "flat")
# Market-style names start with the identity: everything before the first underscore.
DEFAULT_PID_PATTERN = r"^([^_]+)_"


class Row(NamedTuple):
    """One manifest row before paths are made relative; camid '' means no camera information."""

    path: str
    pid: str
    camid: str
    split: str


class Image(NamedTuple):
    path: str
    pid: str
    camid: str


def _identity_dirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)


def _with_cameras(items: list[tuple[str, str, str]], camera_pattern: str | None) -> list[tuple[str, str, str, str]]:
    """(path, pid, split) + camera label from the file name ('' when names carry no camera)."""
    cameras = camera_labels([path for path, _, _ in items], camera_pattern, "pass --camera-pattern none")
    return [(path, pid, cameras[i] if cameras else "", split) for i, (path, pid, split) in enumerate(items)]


def collect_tree(images_dir: Path, camera_pattern: str | None) -> list[Row]:
    """Rows of ``<split>/<identity>/<image>``: split and identity from the folders."""
    missing = [s for s in SPLITS if not (images_dir / s).is_dir()]
    if missing:
        raise DatasetError(
            f"--layout tree: '{images_dir}' lacks the folder(s) {', '.join(missing)}; expected "
            "<split>/<identity>/<image> with split train, query, gallery (or use --layout identity / flat)"
        )
    items = [
        (str(image), identity_dir.name, split)
        for split in SPLITS
        for identity_dir in _identity_dirs(images_dir / split)
        for image in list_images(identity_dir)
    ]
    return [Row(*item) for item in _with_cameras(items, camera_pattern)]


def collect_identity(images_dir: Path, camera_pattern: str | None) -> list[Image]:
    """Images of ``<identity>/<image>``: identity from the folder, camera from the file name."""
    items = [(str(image), d.name, "") for d in _identity_dirs(images_dir) for image in list_images(d)]
    return [Image(path, pid, cam) for path, pid, cam, _ in _with_cameras(items, camera_pattern)]


def collect_flat(images_dir: Path, pid_pattern: str, camera_pattern: str | None) -> list[Image]:
    """Images directly in ``images_dir``; identity and camera read from the file names."""
    regex = compile_pattern(pid_pattern, "--pid-pattern")
    paths = [str(p) for p in list_images(images_dir)]
    pids = [search_label(regex, Path(p).name) for p in paths]
    unmatched = [p for p, pid in zip(paths, pids) if pid is None]
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
        raise DatasetError(
            f"--pid-pattern '{pid_pattern}' finds no identity in {len(unmatched)} of {len(paths)} file names: {shown}"
        )
    items = [(p, pid, "") for p, pid in zip(paths, pids) if pid is not None]
    return [Image(path, pid, cam) for path, pid, cam, _ in _with_cameras(items, camera_pattern)]


def _can_take(pools: dict[str, list[Image]], cam: str, query_cams: set[str]) -> bool:
    """Whether one more query from ``cam`` keeps every query matchable from another camera.

    After the draw, gallery images must remain in two cameras, or in one camera
    that no query comes from. Without cameras ('') the loader gives queries their
    own camera, so any remaining gallery image is a match.
    """
    if not pools[cam]:
        return False
    if cam == "":
        return len(pools[cam]) >= 2
    left = {c for c, pool in pools.items() if len(pool) - (c == cam) > 0}
    return len(left) >= 2 or (len(left) == 1 and not left & (query_cams | {cam}))


def split_images(
    images: Sequence[Image], test_fraction: float, queries_per_camera: int, seed: int
) -> tuple[list[Row], list[str]]:
    """Seeded train/test split of identities, then query/gallery per (test identity, camera).

    Returns the rows and the test identities kept entirely in the gallery (no
    second camera to be matched from).
    """
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"--test-fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if queries_per_camera < 1:
        raise DatasetError(f"--queries-per-camera must be >= 1, got {queries_per_camera}")
    by_pid: dict[str, list[Image]] = defaultdict(list)
    for image in images:
        by_pid[image.pid].append(image)
    identities = sorted(by_pid, key=label_sort_key)
    if len(identities) < 2:
        raise DatasetError(f"need at least 2 identities to make a train and a test split, found {len(identities)}")
    rng = random.Random(seed)
    order = identities[:]
    rng.shuffle(order)
    num_test = min(max(round(test_fraction * len(order)), 1), len(order) - 1)
    test_ids = set(order[:num_test])
    rows: list[Row] = []
    gallery_only: list[str] = []
    for pid in identities:
        members = sorted(by_pid[pid], key=lambda im: im.path)
        if pid not in test_ids:
            rows += [Row(im.path, pid, im.camid, "train") for im in members]
            continue
        pools: dict[str, list[Image]] = defaultdict(list)
        for im in members:
            pools[im.camid].append(im)
        for pool in pools.values():
            rng.shuffle(pool)
        queries: list[Image] = []
        for cam in sorted(pools, key=label_sort_key):
            for _ in range(queries_per_camera):
                if not _can_take(pools, cam, {q.camid for q in queries}):
                    break
                queries.append(pools[cam].pop())
        if not queries:
            gallery_only.append(pid)
        chosen = {im.path for im in queries}
        rows += [Row(im.path, pid, im.camid, "query" if im.path in chosen else "gallery") for im in members]
    return rows, gallery_only


def write_manifest(rows: Sequence[Row], out: Path) -> None:
    """CSV (or TSV for a ``.tsv`` name) with paths relative to the manifest's folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    delimiter = "\t" if out.suffix.lower() == ".tsv" else ","
    with open(out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(REQUIRED_COLUMNS)
        for row in rows:
            writer.writerow([Path(os.path.relpath(row.path, out.parent)).as_posix(), row.pid, row.camid, row.split])


def describe(rows: Sequence[Row], out: Path, gallery_only: Sequence[str]) -> str:
    """What was written: counts per split, cameras, and how to load it."""
    lines = [f"wrote {len(rows)} rows to {out}"]
    for split in SPLITS:
        chosen = [r for r in rows if r.split == split]
        lines.append(f"  {split + ':':8} {len({r.pid for r in chosen}):6d} ids {len(chosen):8d} images")
    cameras = sorted({r.camid for r in rows} - {""}, key=label_sort_key)
    lines.append(f"  cameras: {len(cameras)} ({', '.join(cameras[:10])}{' ...' if len(cameras) > 10 else ''})"
                 if cameras else "  cameras: none found in the file names (camid left empty)")
    if gallery_only:
        lines.append(
            f"  note: {len(gallery_only)} test identities went entirely to the gallery as distractors (no query "
            f"would keep a gallery match: one camera only, or one image): {', '.join(gallery_only[:5])}"
        )
    override = "" if out.name == "manifest.csv" else f" dataset.options.manifest={out.name}"
    lines.append(f"train on it with: python -m reid.train dataset=folder dataset.root={out.parent}{override}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reid.prepare",
        description="Write a manifest (path,pid,camid,split) for the 'folder' dataset from a folder of images.",
        epilog=(
            "examples:\n"
            "  python -m reid.prepare mydata --out mydata/manifest.csv                  # "
            "mydata/{train,query,gallery}/<id>/\n"
            "  python -m reid.prepare people --layout identity --out people/manifest.csv # people/<id>/*.jpg\n"
            "  python -m reid.prepare crops --layout flat --out crops/manifest.csv \\\n"
            "      --pid-pattern '^([^_]+)_' --camera-pattern 'c(\\d+)' --test-fraction 0.5 --seed 0\n"
            "then: python -m reid.train dataset=folder dataset.root=<folder of the manifest>"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images_dir", type=Path, help="folder holding the images")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write (.csv, or .tsv for tabs); "
                        "paths in it are relative to its folder")
    parser.add_argument("--layout", choices=LAYOUTS, default="tree",
                        help="tree: <split>/<id>/<img>; identity: <id>/<img>; flat: <img> with the id in the name "
                             "(default: tree)")
    parser.add_argument("--camera-pattern", default=DEFAULT_CAMERA_PATTERN,
                        help="regex searched in each file name; its first group (or the match) is the camera. "
                             "'none' = no camera information. It must match every name or none "
                             "(default: %(default)s)")
    parser.add_argument("--pid-pattern", default=DEFAULT_PID_PATTERN,
                        help="flat layout: regex whose first group (or the match) is the identity "
                             "(default: %(default)s, the text before the first underscore)")
    parser.add_argument("--ignore-pid", action="append", default=[], metavar="PID",
                        help="identity label to leave out, e.g. Market junk: --ignore-pid=-1 (repeatable)")
    parser.add_argument("--test-fraction", type=float, default=0.5,
                        help="identity/flat layouts: fraction of identities used for testing (default: %(default)s)")
    parser.add_argument("--queries-per-camera", type=int, default=1,
                        help="identity/flat layouts: query images per (test identity, camera) (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the identity and query draws (default: %(default)s)"
    )
    parser.add_argument("--check", action="store_true",
                        help="load the written manifest back and print the dataset check (reads every image)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, write the manifest, print what was written; 2 on bad input."""
    args = build_parser().parse_args(argv)
    images_dir: Path = args.images_dir.expanduser().absolute()
    out: Path = args.out.expanduser().absolute()
    camera_pattern = None if args.camera_pattern.lower() in ("none", "null", "") else args.camera_pattern
    try:
        if not images_dir.is_dir():
            raise DatasetError(f"images folder '{images_dir}' does not exist")
        gallery_only: list[str] = []
        if args.layout == "tree":
            rows = collect_tree(images_dir, camera_pattern)
            rows = [r for r in rows if r.pid not in args.ignore_pid]
        else:
            if args.layout == "identity":
                images = collect_identity(images_dir, camera_pattern)
            else:
                images = collect_flat(images_dir, args.pid_pattern, camera_pattern)
            images = [im for im in images if im.pid not in args.ignore_pid]
            rows, gallery_only = split_images(images, args.test_fraction, args.queries_per_camera, args.seed)
        if not rows:
            raise DatasetError(f"no images (.jpg, .jpeg, .png) found for --layout {args.layout} in '{images_dir}'")
        write_manifest(rows, out)
        print(describe(rows, out, gallery_only), flush=True)
        if args.check:
            load_folder(out.parent, manifest=out.name)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
