"""Config -> data: the dataset, its test slice for debug runs, the augmentations and the loader factories."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from omegaconf import DictConfig

from reid.build.common import to_plain
from reid.data import ReIDDataset, load_dataset
from reid.data.loader import build_test_loader, build_train_loader
from reid.data.records import ImageRecord
from reid.data.transforms import TestTransform, TrainAugment


def build_dataset(cfg: DictConfig) -> ReIDDataset:
    return load_dataset(cfg.dataset.name, cfg.dataset.root, **(to_plain(cfg.dataset.options) or {}))


def limit_test_set(ds: ReIDDataset, max_images: int) -> ReIDDataset:
    """Debug runs: the first ``max_images`` queries and the gallery images of their identities plus as many others."""
    if not max_images:
        return ds
    query = ds.query[:max_images]
    pids = {r.pid for r in query}
    matches = [r for r in ds.gallery if r.pid in pids]
    others = [r for r in ds.gallery if r.pid not in pids][:max_images]
    return ReIDDataset(ds.name, ds.train, query, matches + others, dict(ds.meta))


def train_augment(cfg: DictConfig, device: torch.device) -> TrainAugment:
    """CLIP-ReID's training augmentation (``augment``, docs/method.md §4.4) on the backbone's pixel statistics."""
    a, b = cfg.augment, cfg.backbone
    return TrainAugment(
        b.pixel_mean, b.pixel_std, flip_p=a.flip_p, pad=a.pad, erase_p=a.erase_p, erase_area=tuple(a.erase_area),
        erase_ratio=tuple(a.erase_ratio),
    ).to(device)


def ssl_view_augment(cfg: DictConfig, device: torch.device) -> TrainAugment | None:
    """SVLL-ReID's SSL views: the training flip and crop with the SSL branch's erasing (None without vision SSL)."""
    if cfg.ssl.name == "none" or float(cfg.ssl.weight) == 0:
        return None
    a, v, b = cfg.augment, cfg.ssl.vision, cfg.backbone
    return TrainAugment(
        b.pixel_mean, b.pixel_std, flip_p=a.flip_p, pad=a.pad, erase_p=v.erase_p, erase_area=tuple(v.erase_area),
        erase_ratio=tuple(v.erase_ratio),
    ).to(device)


def test_transform(cfg: DictConfig, device: torch.device) -> TestTransform:
    return TestTransform(cfg.backbone.pixel_mean, cfg.backbone.pixel_std).to(device)


def pin_memory(cfg: DictConfig, device: torch.device) -> bool:
    return device.type == "cuda" if cfg.pin_memory == "auto" else bool(cfg.pin_memory)


def train_loader_factory(
    cfg: DictConfig, records: Sequence[ImageRecord], pin: bool, dist: Any
) -> Callable[[int, int], Any]:
    """(batch_size, num_instances) -> the P×K loader over ``records``; under DDP each rank loads its share."""
    size, workers, seed = tuple(cfg.dataset.size), int(cfg.num_workers), int(cfg.seed)

    def make(batch_size: int, num_instances: int):
        return build_train_loader(
            records,
            size,
            batch_size,
            num_instances,
            workers,
            seed=seed,
            pin_memory=pin,
            distributed=(dist.world_size, dist.rank) if dist.distributed else None,
        )

    return make


def test_loader_factory(cfg: DictConfig, pin: bool, batch_size: int | None = None) -> Callable[..., Any]:
    """(records[, batch_size]) -> an ordered loader at the input size, no augmentation."""
    size, workers = tuple(cfg.dataset.size), int(cfg.num_workers)
    default = int(batch_size or cfg.eval.batch_size)

    def make(records: Sequence[ImageRecord], batch: int | None = None):
        return build_test_loader(records, size, int(batch or default), workers, pin_memory=pin)

    return make
