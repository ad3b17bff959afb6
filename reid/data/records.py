"""The one record type every dataset parser returns.

A ``NamedTuple`` so that code written for torchreid / CLIP-ReID, which unpacks
``img_path, pid, camid, viewid = record``, keeps working unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class ImageRecord(NamedTuple):
    """One image: file path, identity, 0-based camera, 0-based view (0 when unknown)."""

    path: str
    pid: int
    camid: int
    viewid: int = 0


@dataclass
class ReIDDataset:
    """Train/query/gallery splits of one dataset, with train pids relabelled to 0..N-1."""

    name: str
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    # Extra facts a parser wants to hand on (e.g. the VehicleID trial index, class names).
    meta: dict = field(default_factory=dict)

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})

    @property
    def num_cams(self) -> int:
        """Camera count over all splits: the size an SIE table must have."""
        return 1 + max(r.camid for r in (*self.train, *self.query, *self.gallery))

    @property
    def num_views(self) -> int:
        return 1 + max(r.viewid for r in (*self.train, *self.query, *self.gallery))
