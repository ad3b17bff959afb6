"""Your own data (``folder``): a manifest file, or a train/query/gallery tree of identity folders.

Real projects rarely have a benchmark's file naming, so this format takes labels
from a spreadsheet-like manifest (``manifest.csv`` / ``manifest.tsv``: columns
``path, pid, camid, split`` plus optional ``viewid``, ``caption`` and anything
else) or from folder names (``train/<identity>/<image>``, ``query/...``,
``gallery/...``, camera read from the file name by a regex).

Identity, camera and view labels may be any strings. They are mapped to
contiguous integers, in natural sort order (``"2"`` before ``"10"``), and the
mapping is returned in ``meta["label_maps"]`` so results can be read back in the
user's own names:

* pid: training identities get ``0..N-1``; identities seen only in query or
  gallery get ``N, N+1, ...``. One map serves every split, so the same string
  always gets the same integer (a query identity matches its gallery images).
* camid: ``0..C-1`` over all splits.

Without camera information (``camera_pattern: null``, no file name matching
it, or an empty ``camid`` column) query images get camera ``"unknown-query"``
and all other images ``"unknown"``. The Market protocol discards gallery
images of the query's identity *from the query's camera*; one shared camera
would discard every true match, so the query side gets its own (as VehicleID
does).

Problems are collected before training starts: those that make the data
unusable (missing columns, bad split value, empty pid, missing or unreadable
file, empty split, camera pattern matching only some names) raise a
:class:`DatasetError` naming the file and manifest line; the rest (identities
with one image, query identities absent from the gallery, ...) are counted
warnings in a :class:`ValidationReport` that the loader prints.
"""
from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from reid.data.errors import DatasetError
from reid.data.formats.common import MAX_NAMES_SHOWN
from reid.data.image_check import image_problem
from reid.data.images import list_images
from reid.data.records import ImageRecord, ReIDDataset
from reid.data.registry import register_dataset

NAME = "folder"
OFFICIAL_NAME = "folder dataset"
SPLITS = ("train", "query", "gallery")
MANIFEST_NAMES = ("manifest.csv", "manifest.tsv")
REQUIRED_COLUMNS = ("path", "pid", "camid", "split")
VIEW_COLUMN = "viewid"
CAPTION_COLUMN = "caption"
# Market-1501 naming: the camera number follows a "c" (0002_c1s1_000451_03.jpg).
DEFAULT_CAMERA_PATTERN = r"c(\d+)"
# Camera labels used when the data carries no camera information (see module docstring).
NO_CAMERA = "unknown"
NO_CAMERA_QUERY = "unknown-query"
_NO_CAMERA_NOTE = f"query images get camera '{NO_CAMERA_QUERY}', all others '{NO_CAMERA}'"
# Bad manifest rows and fatal problems shown in one error message before summarising.
MAX_ERRORS_SHOWN = 10

W_SINGLE_IMAGE = "training identities with a single image (no positive pair for the triplet loss)"
W_QUERY_NOT_IN_GALLERY = (
    "query identities absent from the gallery (their queries cannot be matched and are left out of the scores)"
)
W_SAME_CAMERA_ONLY = (
    "query images whose identity is in the gallery only under the query's own camera "
    "(the same-camera filter removes those matches, so these queries are left out of the scores)"
)
W_TRAIN_TEST_OVERLAP = "identities present in both train and test (query/gallery): test scores will be optimistic"
W_DUPLICATES = "images listed more than once"
W_SKIPPED = "unreadable images skipped (skip_corrupt)"

TREE_LAYOUT = "\n".join(
    ["<root>/", *(f"  {split}/<identity>/<image>.jpg   (e.g. {split}/alice/c1_0001.jpg)" for split in SPLITS)]
)


class Entry(NamedTuple):
    """One image as read from the manifest or the tree, labels still strings."""

    split: str
    path: str  # absolute
    pid: str
    camid: str
    viewid: str | None  # None: no view labels in this dataset
    line: int | None  # manifest line number; None for the tree form
    extra: dict[str, str]  # other manifest columns (caption, ...)


_NUMBER = re.compile(r"(\d+)")


def label_sort_key(label: str) -> tuple[tuple[str | int, ...], str]:
    """Natural order ("cam2" before "cam10"), ties broken by the raw string ("01" vs "1")."""
    parts = _NUMBER.split(label)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), label


def label_map(labels: Iterable[str]) -> dict[str, int]:
    """Distinct labels → 0..K-1 in natural sort order (independent of file or row order)."""
    return {label: index for index, label in enumerate(sorted(set(labels), key=label_sort_key))}


def _shown(items: Sequence[str], limit: int = MAX_NAMES_SHOWN) -> str:
    listed = ", ".join(items[:limit])
    return listed + (f" and {len(items) - limit} more" if len(items) > limit else "")


def compile_pattern(pattern: str, option: str) -> re.Pattern[str]:
    """``re.compile`` with an error that names the option the regex came from."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise DatasetError(f"{option} '{pattern}' is not a valid regular expression: {exc}") from None


def search_label(regex: re.Pattern[str], text: str) -> str | None:
    """The regex's first group (or whole match) found anywhere in ``text``; None if absent or empty."""
    match = regex.search(text)
    if match is None:
        return None
    label = match.group(1) if regex.groups else match.group(0)
    return label or None


def camera_labels(
    paths: Sequence[str], camera_pattern: str | None, off_switch: str = "set camera_pattern: null"
) -> list[str] | None:
    """Camera label of each file, read from its name; None when the names carry no camera.

    All or nothing: a pattern that matches some names but not others means the
    pattern is wrong for this data, which silently mislabelled cameras would hide.
    """
    if camera_pattern is None:
        return None
    regex = compile_pattern(camera_pattern, "camera_pattern")
    found = [search_label(regex, Path(p).name) for p in paths]
    unmatched = [p for p, label in zip(paths, found) if label is None]
    if len(unmatched) == len(paths):
        return None
    if unmatched:
        raise DatasetError(
            f"camera_pattern '{camera_pattern}' matches {len(paths) - len(unmatched)} of {len(paths)} "
            f"image file names but not these {len(unmatched)}: {_shown(unmatched)}. Make it match every "
            f"file name, or {off_switch} to load the data without camera information."
        )
    return [label for label in found if label is not None]


def no_camera_label(split: str) -> str:
    """Camera of an image when the data has none: query images get their own (see module docstring)."""
    return NO_CAMERA_QUERY if split == "query" else NO_CAMERA


# --------------------------------------------------------------------------- manifest


def find_manifest(root: Path, manifest: str | os.PathLike[str] | None) -> Path | None:
    """The manifest to read: the named one (relative to root), else manifest.csv/.tsv, else None."""
    if manifest is not None:
        path = Path(manifest).expanduser()
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            raise DatasetError(f"{OFFICIAL_NAME}: manifest '{path}' (option manifest) does not exist")
        return path
    found = [root / name for name in MANIFEST_NAMES if (root / name).is_file()]
    if len(found) > 1:
        raise DatasetError(
            f"{OFFICIAL_NAME}: both {' and '.join(map(str, found))} exist; "
            "set the option manifest to the one to use"
        )
    return found[0] if found else None


def _read_header(reader: Iterator[list[str]], manifest: Path, delimiter: str) -> list[str]:
    header = next(reader, None)
    if header is None:
        raise DatasetError(
            f"{manifest}:1: the manifest is empty; its first line must be the header "
            f"{delimiter.join(REQUIRED_COLUMNS)}"
        )
    columns = [c.strip().lower() for c in header]
    repeated = sorted(c for c, n in Counter(columns).items() if n > 1)
    if repeated:
        raise DatasetError(f"{manifest}:1: column(s) {', '.join(repeated)} appear more than once in the header")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        hint = ""
        if len(columns) == 1 and delimiter == "," and "\t" in header[0]:
            hint = " (the header is tab-separated: name the file .tsv)"
        elif len(columns) == 1 and delimiter == "\t" and "," in header[0]:
            hint = " (the header is comma-separated: name the file .csv)"
        raise DatasetError(
            f"{manifest}:1: missing column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(REQUIRED_COLUMNS)} (found: {', '.join(columns)}){hint}"
        )
    return columns


def read_manifest(manifest: Path) -> list[Entry]:
    """Rows of a manifest as entries; every bad row is reported at once, with its line number.

    ``.tsv`` files are tab-separated, anything else comma-separated; a UTF-8 BOM
    (spreadsheet exports) is ignored, cells are stripped, blank lines skipped.
    Paths are relative to the manifest's folder (absolute paths are kept).
    """
    delimiter = "\t" if manifest.suffix.lower() == ".tsv" else ","
    base = manifest.parent
    entries: list[Entry] = []
    errors: list[str] = []
    with open(manifest, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        columns = _read_header(reader, manifest, delimiter)
        extra_columns = [c for c in columns if c not in REQUIRED_COLUMNS and c != VIEW_COLUMN]
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            where = f"{manifest}:{line}"
            if len(fields) != len(columns):
                errors.append(f"{where}: expected {len(columns)} fields as in the header, got {len(fields)}")
                continue
            row = dict(zip(columns, (f.strip() for f in fields)))
            split = row["split"].lower()
            bad = False
            if not row["path"]:
                errors.append(f"{where}: empty path")
                bad = True
            if split not in SPLITS:
                errors.append(f"{where}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
                bad = True
            if not row["pid"]:
                errors.append(f"{where}: empty pid")
                bad = True
            if bad:
                continue
            path = Path(row["path"])
            entries.append(
                Entry(
                    split=split,
                    path=os.path.normpath(path if path.is_absolute() else base / path),
                    pid=row["pid"],
                    camid=row["camid"],
                    viewid=row.get(VIEW_COLUMN),
                    line=line,
                    extra={c: row[c] for c in extra_columns},
                )
            )
    errors += _partial_column_errors(entries, "camid", manifest) + _partial_column_errors(
        entries, VIEW_COLUMN, manifest
    )
    if errors:
        shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise DatasetError(f"manifest '{manifest}' has {len(errors)} bad row(s):\n  {shown}{more}")
    return entries


def _partial_column_errors(entries: Sequence[Entry], column: str, manifest: Path) -> list[str]:
    """A camid/viewid column must be filled in every row or in none (none: no such labels)."""
    values = [getattr(e, column) for e in entries]
    empty = [e.line for e, v in zip(entries, values) if v == ""]
    if not empty or len(empty) == len(entries):
        return []
    return [
        f"{manifest}:{line}: empty {column} (other rows have one: fill it in every row, "
        f"or leave the column empty in every row for data without {column} labels)"
        for line in empty
    ]


def _fill_manifest_cameras(entries: list[Entry]) -> tuple[list[Entry], str | None]:
    """Apply the no-camera rule when the camid column is empty in every row; drop empty views."""
    note = None
    if entries and all(e.camid == "" for e in entries):
        entries = [e._replace(camid=no_camera_label(e.split)) for e in entries]
        note = f"the camid column is empty: no camera information ({_NO_CAMERA_NOTE})"
    if entries and all(e.viewid == "" for e in entries):
        entries = [e._replace(viewid=None) for e in entries]
    return entries, note


# --------------------------------------------------------------------------- tree


def scan_tree(root: Path, camera_pattern: str | None) -> tuple[list[Entry], str | None]:
    """Entries of ``root/{train,query,gallery}/<identity>/<image>``, cameras from file names.

    Identity folders are visited in sorted name order and images sorted by name,
    so the record order does not depend on the file system. Hidden folders are skipped.
    """
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise DatasetError(
            f"{OFFICIAL_NAME} '{root}': found neither a manifest ({' or '.join(MANIFEST_NAMES)}) nor the "
            f"folder(s) {', '.join(f'{s}/' for s in missing)} of the tree layout.\n"
            f"Expected a manifest with columns {','.join(REQUIRED_COLUMNS)}, or this layout:\n{TREE_LAYOUT}"
        )
    entries: list[Entry] = []
    for split in SPLITS:
        split_dir = root / split
        loose = list_images(split_dir)
        if loose:
            raise DatasetError(
                f"{len(loose)} image(s) lie directly in '{split_dir}' but belong in an identity folder "
                f"({split}/<identity>/<image>): {_shown([str(p) for p in loose])}"
            )
        identity_dirs = sorted(
            (d for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name
        )
        before = len(entries)
        for identity_dir in identity_dirs:
            for image in list_images(identity_dir):
                entries.append(Entry(split, str(image), identity_dir.name, "", None, None, {}))
        if len(entries) == before:
            raise DatasetError(f"{split} split is empty: no images in '{split_dir}/<identity>/'")
    cameras = camera_labels([e.path for e in entries], camera_pattern)
    if cameras is None:
        why = (
            "camera_pattern is null"
            if camera_pattern is None
            else f"camera_pattern '{camera_pattern}' matches no file name"
        )
        note = f"{why}: no camera information ({_NO_CAMERA_NOTE})"
        return [e._replace(camid=no_camera_label(e.split)) for e in entries], note
    return [e._replace(camid=c) for e, c in zip(entries, cameras)], None


# --------------------------------------------------------------------------- dataset


def assemble(entries: Sequence[Entry], meta: dict) -> ReIDDataset:
    """String-labelled entries → a ReIDDataset with integer labels and ``meta["label_maps"]``."""
    train_ids = {e.pid for e in entries if e.split == "train"}
    test_only = {e.pid for e in entries if e.split != "train"} - train_ids
    pid_map = label_map(train_ids)
    pid_map.update({pid: len(pid_map) + i for pid, i in label_map(test_only).items()})
    maps: dict[str, dict[str, int]] = {"pid": pid_map, "camid": label_map(e.camid for e in entries)}
    has_views = any(e.viewid is not None for e in entries)
    if has_views:
        maps["viewid"] = label_map(e.viewid for e in entries if e.viewid is not None)
    splits: dict[str, list[ImageRecord]] = {s: [] for s in SPLITS}
    lines: dict[str, int] = {}
    captions: dict[str, str] = {}
    extra: dict[str, dict[str, str]] = defaultdict(dict)
    for e in entries:
        view = maps["viewid"][e.viewid] if has_views and e.viewid is not None else 0
        splits[e.split].append(ImageRecord(e.path, pid_map[e.pid], maps["camid"][e.camid], view))
        if e.line is not None:
            lines.setdefault(e.path, e.line)
        for column, value in e.extra.items():
            if column == CAPTION_COLUMN:
                if value:
                    captions[e.path] = value
            else:
                extra[column][e.path] = value
    meta = {**meta, "label_maps": maps, "manifest_lines": lines, "captions": captions, "extra_columns": dict(extra)}
    meta.setdefault("skipped_corrupt", 0)
    return ReIDDataset(name=NAME, train=splits["train"], query=splits["query"], gallery=splits["gallery"], meta=meta)


def _require_manifest_splits(entries: Sequence[Entry], manifest: Path) -> None:
    present = {e.split for e in entries}
    for split in SPLITS:
        if split not in present:
            raise DatasetError(f"{split} split is empty: no row of '{manifest}' has split '{split}'")


def read_folder(
    root: Path, manifest: str | os.PathLike[str] | None, camera_pattern: str | None
) -> tuple[list[Entry], dict]:
    """Entries and base meta from the manifest if there is one, else from the tree."""
    path = find_manifest(root, manifest)
    meta: dict = {"official_name": OFFICIAL_NAME, "dataset_dir": str(root)}
    if path is not None:
        entries, note = _fill_manifest_cameras(read_manifest(path))
        _require_manifest_splits(entries, path)
        meta.update(source="manifest", manifest=str(path))
    else:
        entries, note = scan_tree(root, camera_pattern)
        meta.update(source="tree", camera_pattern=camera_pattern)
    if note is not None:
        meta["camera_note"] = note
    return entries, meta


@register_dataset(NAME)
def load_folder(
    root: Path,
    manifest: str | None = None,
    camera_pattern: str | None = DEFAULT_CAMERA_PATTERN,
    validate: bool = True,
    skip_corrupt: bool = False,
) -> ReIDDataset:
    """Load a user's own data from ``root`` (a manifest, else the tree layout).

    ``validate`` checks every file (exists, decodes) and the identity structure,
    prints the report and raises on fatal problems; ``skip_corrupt`` drops
    unreadable images (before labels are assigned) instead of failing.
    ``camera_pattern`` applies to the tree form only.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{OFFICIAL_NAME}: root folder '{root}' does not exist")
    entries, meta = read_folder(root, manifest, camera_pattern)
    ds = assemble(entries, meta)
    if not validate:
        return ds
    report = validate_folder_dataset(ds, skip_corrupt=skip_corrupt)
    if skip_corrupt and report.unreadable and not report.fatal:
        # Drop before labelling, so train pids stay 0..N-1 and the label maps stay true.
        skipped = report.unreadable
        skipped_warning = (W_SKIPPED, len(skipped), [_where(ds, p) for p in list(skipped)[:MAX_NAMES_SHOWN]])
        ds = assemble([e for e in entries if e.path not in skipped], meta)
        ds.meta["skipped_corrupt"] = len(skipped)
        report = validate_folder_dataset(ds, check_images=False)
        report.unreadable = skipped
        report.warnings.insert(0, skipped_warning)
    ds.meta["validation"] = report
    print(report.format(), flush=True)
    if report.fatal:
        shown = "\n  - ".join(report.fatal[:MAX_ERRORS_SHOWN])
        more = (
            f"\n  ... and {len(report.fatal) - MAX_ERRORS_SHOWN} more" if len(report.fatal) > MAX_ERRORS_SHOWN else ""
        )
        hint = (
            "\nDrop unreadable images with dataset.options.skip_corrupt=true (load_dataset(..., skip_corrupt=True))."
        ) if report.unreadable and not skip_corrupt else ""
        raise DatasetError(
            f"{OFFICIAL_NAME} '{root}' failed validation with {len(report.fatal)} fatal problem(s):\n  - "
            f"{shown}{more}{hint}"
        )
    return ds


def write_label_maps(ds: ReIDDataset, path: str | os.PathLike[str]) -> Path:
    """Write ``ds.meta["label_maps"]`` as JSON (string label → integer, per kind) and return the path.

    Training logs this file with the run, so a classifier row or an evaluation
    result can be traced back to the user's own identity and camera names.
    """
    maps = ds.meta.get("label_maps")
    if maps is None:
        raise DatasetError(f"dataset {ds.name!r} has no meta['label_maps'] (only the folder format records one)")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(maps, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


# --------------------------------------------------------------------------- validation


@dataclass
class ValidationReport:
    """What a user must fix (``fatal``) and should look at (``warnings``) before training."""

    dataset: str
    counts: dict[str, tuple[int, int, int]]  # split -> (identities, images, cameras)
    fatal: list[str] = field(default_factory=list)
    warnings: list[tuple[str, int, list[str]]] = field(default_factory=list)  # (message, count, examples)
    notes: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why it cannot be decoded

    @property
    def ok(self) -> bool:
        return not self.fatal

    def warning(self, message: str) -> tuple[str, int, list[str]] | None:
        """The warning with this message, if it was raised."""
        return next((w for w in self.warnings if w[0] == message), None)

    def format(self) -> str:
        """A plain-text report: counts per split, notes, fatal problems, then counted warnings."""
        header = ("split", "ids", "images", "cameras")
        rows = [(s, *map(str, self.counts.get(s, (0, 0, 0)))) for s in SPLITS]
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
        table = [
            "  " + " | ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:]))])
            for r in (header, *rows)
        ]
        lines = [f"Dataset check: {self.dataset}", *table]
        lines += [f"  note: {n}" for n in self.notes]
        if self.fatal:
            lines.append(f"  FATAL ({len(self.fatal)}): fix these before training")
            lines += [f"    - {f}" for f in self.fatal[:MAX_ERRORS_SHOWN]]
            if len(self.fatal) > MAX_ERRORS_SHOWN:
                lines.append(f"    ... and {len(self.fatal) - MAX_ERRORS_SHOWN} more")
        for message, count, examples in self.warnings:
            lines.append(f"  WARNING: {count} {message}; e.g. {', '.join(examples)}")
        if not self.fatal and not self.warnings:
            lines.append("  OK: no problems found")
        return "\n".join(lines)


def _where(ds: ReIDDataset, path: str) -> str:
    """``manifest:line`` for a manifest row, else the path itself."""
    line = ds.meta.get("manifest_lines", {}).get(path)
    return f"{ds.meta['manifest']}:{line}" if line is not None else path


def _check_images(paths: Sequence[str]) -> dict[str, str]:
    """path -> problem for every file that does not decode (threads: PIL decodes without the GIL)."""
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = list(pool.map(image_problem, paths, chunksize=64))
    return {p: why for p, why in zip(paths, problems) if why is not None}


def validate_folder_dataset(
    ds: ReIDDataset, *, check_images: bool = True, skip_corrupt: bool = False
) -> ValidationReport:
    """Check a loaded dataset before training; names come from ``meta["label_maps"]`` when present.

    Fatal: an empty split, a missing file, an unreadable file (a warning instead
    when ``skip_corrupt``). Warnings: training identities with one image, query
    identities absent from the gallery or present there only under the query's
    camera, identities in both train and test, duplicate images.
    """
    pid_names = {v: k for k, v in ds.meta.get("label_maps", {}).get("pid", {}).items()}

    def name(pid: int) -> str:
        return pid_names.get(pid, str(pid))

    def names(pids: Iterable[int]) -> list[str]:
        return sorted((name(p) for p in pids), key=label_sort_key)

    source = ds.meta.get("manifest") or ds.meta.get("dataset_dir") or ds.name
    counts = {
        s: (len({r.pid for r in recs}), len(recs), len({r.camid for r in recs}))
        for s in SPLITS
        for recs in [getattr(ds, s)]
    }
    report = ValidationReport(dataset=f"{OFFICIAL_NAME} {source}", counts=counts)
    if "camera_note" in ds.meta:
        report.notes.append(ds.meta["camera_note"])
    report.fatal += [f"{s} split is empty: no usable images" for s in SPLITS if not getattr(ds, s)]

    records = [*ds.train, *ds.query, *ds.gallery]
    occurrences = Counter(r.path for r in records)
    paths = list(occurrences)
    missing = [p for p in paths if not os.path.isfile(p)]
    report.fatal += [f"{_where(ds, p)}: image file '{p}' does not exist" for p in missing]
    if check_images:
        missing_set = set(missing)
        report.unreadable = _check_images([p for p in paths if p not in missing_set])
        if not skip_corrupt:
            report.fatal += [f"{_where(ds, p)}: unreadable image '{p}' ({why})" for p, why in report.unreadable.items()]
        elif report.unreadable:
            examples = [_where(ds, p) for p in list(report.unreadable)[:MAX_NAMES_SHOWN]]
            report.warnings.append((W_SKIPPED, len(report.unreadable), examples))

    def warn(message: str, items: list[str]) -> None:
        if items:
            report.warnings.append((message, len(items), items[:MAX_NAMES_SHOWN]))

    train_counts = Counter(r.pid for r in ds.train)
    warn(W_SINGLE_IMAGE, names(p for p, n in train_counts.items() if n == 1))
    gallery_cams: dict[int, set[int]] = defaultdict(set)
    for r in ds.gallery:
        gallery_cams[r.pid].add(r.camid)
    query_ids = {r.pid for r in ds.query}
    warn(W_QUERY_NOT_IN_GALLERY, names(query_ids - set(gallery_cams)))
    warn(
        W_SAME_CAMERA_ONLY,
        [
            f"{Path(r.path).name} ({name(r.pid)})"
            for r in ds.query
            if r.pid in gallery_cams and gallery_cams[r.pid] <= {r.camid}
        ],
    )
    warn(W_TRAIN_TEST_OVERLAP, names(set(train_counts) & (query_ids | set(gallery_cams))))
    warn(W_DUPLICATES, [_where(ds, p) for p, n in occurrences.items() if n > 1])
    return report
