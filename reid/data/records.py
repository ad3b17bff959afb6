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
    # A validation split held out of the training identities (dataset.options.val_fraction; reid.data.validation).
    val_query: list[ImageRecord] = field(default_factory=list)
    val_gallery: list[ImageRecord] = field(default_factory=list)

    @property
    def has_validation(self) -> bool:
        return bool(self.val_query)

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})

    @property
    def num_cams(self) -> int:
        """Camera count over all splits: the size an SIE table must have."""
        return 1 + max(r.camid for r in self._all())

    @property
    def num_views(self) -> int:
        return 1 + max(r.viewid for r in self._all())

    def _all(self) -> tuple[ImageRecord, ...]:
        return (*self.train, *self.query, *self.gallery, *self.val_query, *self.val_gallery)
