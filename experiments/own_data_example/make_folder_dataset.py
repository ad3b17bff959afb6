"""Worked example: turn the synthetic world into a ``folder`` dataset with string labels.

It stands in for "your own data": identities get readable names (``ada``,
``bruno``, ...), cameras get place names (``north``, ``lobby``, ...), and the
images are laid out as the folder format's tree::

    <out>/train/ada/north-001.jpg
    <out>/query/cleo/lobby-001.jpg
    <out>/gallery/cleo/gate-001.jpg
    <out>/gallery/unknown/...        (the world's distractors: people never queried)

The camera is the word before the dash, so the dataset is loaded with
``camera_pattern: '^([a-z]+)-'``. Run::

    python experiments/own_data_example/make_folder_dataset.py --out /tmp/mydata
    python -m reid.train dataset=folder dataset.root=/tmp/mydata \\
        'dataset.options.camera_pattern="^([a-z]+)-"' 'dataset.size=[128,64]' experiment=demo
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from reid.data.synthetic import (
    GALLERY_DIRNAME,
    MARKET_DIRNAME,
    QUERY_DIRNAME,
    TRAIN_DIRNAME,
    ensure_world,
)

# The regex that reads the camera back from the names written here (no backslashes: easy to pass to Hydra).
CAMERA_PATTERN = "^([a-z]+)-"
DISTRACTOR_NAME = "unknown"
FIRST_NAMES = (
    "ada", "bruno", "cleo", "dmitri", "esme", "farid", "greta", "hugo", "ines", "jonas",
    "kiri", "lars", "mina", "nils", "olga", "pablo", "quinn", "rosa", "sami", "tove",
    "umar", "vera", "wren", "xavi", "yara", "zeno",
)
CAMERA_NAMES = ("north", "south", "east", "west", "lobby", "gate", "park", "dock", "yard")
SPLIT_FOLDERS = {TRAIN_DIRNAME: "train", QUERY_DIRNAME: "query", GALLERY_DIRNAME: "gallery"}
_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")
# A small world: renders in seconds. Any reid.data.synthetic.WorldSpec field can be overridden.
SMALL_WORLD = dict(
    num_train_ids=24, num_test_ids=24, num_cameras=4, max_cameras_per_id=4, num_distractors=32, num_junk=0
)


def person_name(index: int) -> str:
    """Readable, unique name for the ``index``-th identity: ada, bruno, ..., ada2, bruno2, ..."""
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    round_ = index // len(FIRST_NAMES)
    return first if round_ == 0 else f"{first}{round_ + 1}"


def make_folder_dataset(out: Path, world_root: Path, **world_options: object) -> dict[str, int]:
    """Write the tree under ``out`` (replacing an earlier one) and return images per split.

    Junk images (pid -1) are left out; distractors (pid 0) go to ``gallery/unknown``.
    """
    world = ensure_world(world_root, progress=False, **world_options) / MARKET_DIRNAME
    sources: dict[str, list[tuple[int, int, Path]]] = {}
    for folder in SPLIT_FOLDERS:
        parsed = []
        for path in sorted((world / folder).glob("*.jpg")):
            match = _MARKET_NAME.match(path.name)
            if match is not None and int(match.group(1)) >= 0:
                parsed.append((int(match.group(1)), int(match.group(2)) - 1, path))
        sources[folder] = parsed
    # Training identities are named first, so train is ada, bruno, ... and test follows on.
    train_pids = sorted({pid for pid, _, _ in sources[TRAIN_DIRNAME]})
    test_pids = sorted(
        {pid for f in (QUERY_DIRNAME, GALLERY_DIRNAME) for pid, _, _ in sources[f] if pid > 0} - set(train_pids)
    )
    names = {pid: person_name(i) for i, pid in enumerate([*train_pids, *test_pids])}
    names[0] = DISTRACTOR_NAME
    for split in SPLIT_FOLDERS.values():
        if (out / split).exists():
            shutil.rmtree(out / split)
    counts: dict[str, int] = {}
    for folder, split in SPLIT_FOLDERS.items():
        numbers: dict[tuple[int, int], int] = defaultdict(int)
        for pid, cam, path in sources[folder]:
            numbers[pid, cam] += 1
            target = out / split / names[pid] / f"{CAMERA_NAMES[cam]}-{numbers[pid, cam]:03d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        counts[split] = len(sources[folder])
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a small folder-format dataset (string labels) "
                                     "from the synthetic world.")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write (train/, query/, gallery/)")
    parser.add_argument("--world-root", type=Path, default=None,
                        help="where the synthetic world is rendered or reused (default: <out>/.world)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default: %(default)s)")
    args = parser.parse_args(argv)
    out = args.out.expanduser().absolute()
    counts = make_folder_dataset(out, args.world_root or out / ".world", seed=args.seed, **SMALL_WORLD)
    print(f"wrote {out}: " + ", ".join(f"{split} {n} images" for split, n in counts.items()))
    print(f"train on it: python -m reid.train dataset=folder dataset.root={out} "
          f"'dataset.options.camera_pattern=\"{CAMERA_PATTERN}\"' 'dataset.size=[128,64]' experiment=demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
