"""A validation split carved out of the training identities, so that model selection never looks at the test set.

``hold_out`` moves a seeded fraction of the training identities into a validation query and gallery, split as
Market-1501 splits its test identities: for every held-out identity seen by at least two cameras, one image per camera
(drawn from the seed) is a query, the rest is gallery (an identity seen by one camera cannot be matched across
cameras: all of its images join the gallery as distractors). The remaining training identities are relabelled to
0..N-1. Works on any format, the folder format included (its string label map follows the relabelling).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from reid.data.errors import DatasetError
from reid.data.records import ImageRecord, ReIDDataset

MIN_VALIDATION_IDS = 2   # a ranking needs another identity to rank against
MIN_TRAIN_IDS = 2        # a P×K batch needs two identities at least


def hold_out(ds: ReIDDataset, fraction: float, seed: int = 0) -> ReIDDataset:
    """``ds`` with ``val_query`` / ``val_gallery`` made of ``fraction`` of its training identities (seeded)."""
    if not 0 < fraction < 1:
        raise DatasetError(f"dataset.options.val_fraction must be in (0, 1), got {fraction}")
    ids = sorted({r.pid for r in ds.train})
    n_val = int(round(fraction * len(ids)))
    if n_val < MIN_VALIDATION_IDS or len(ids) - n_val < MIN_TRAIN_IDS:
        raise DatasetError(
            f"dataset.options.val_fraction={fraction} of {len(ids)} training identities holds out {n_val}: a "
            f"validation split needs >= {MIN_VALIDATION_IDS} and training >= {MIN_TRAIN_IDS}; choose another fraction"
        )
    rng = np.random.default_rng([seed, len(ids)])
    held = {int(p) for p in rng.choice(ids, size=n_val, replace=False)}
    groups: dict[int, dict[int, list[ImageRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in ds.train:
        if r.pid in held:
            groups[r.pid][r.camid].append(r)
    query, gallery = [], []
    for pid in sorted(groups):
        cameras = groups[pid]
        for cam in sorted(cameras):
            images = cameras[cam]
            pick = int(rng.integers(len(images))) if len(cameras) >= 2 else -1
            query += [images[pick]] if pick >= 0 else []
            gallery += [r for i, r in enumerate(images) if i != pick]
    if not query:
        raise DatasetError("the validation identities are each seen by one camera only: no cross-camera query exists")
    kept = sorted(set(ids) - held)
    relabel = {old: new for new, old in enumerate(kept)}
    train = [r._replace(pid=relabel[r.pid]) for r in ds.train if r.pid not in held]
    meta = dict(ds.meta)
    meta["validation"] = {"fraction": fraction, "seed": seed, "held_out_pids": sorted(held), "train_relabel": relabel}
    if "label_maps" in meta:  # the folder format: names of the remaining training identities follow the relabelling
        maps = {k: dict(v) for k, v in meta["label_maps"].items()}
        names = {label: name for name, label in maps["pid"].items()}
        maps["val_pid"] = {names[p]: p for p in sorted(held)}
        maps["pid"] = {name: relabel.get(label, label) for name, label in maps["pid"].items() if label not in held}
        meta["label_maps"] = maps
    return ReIDDataset(ds.name, train, ds.query, ds.gallery, meta, val_query=query, val_gallery=gallery)
