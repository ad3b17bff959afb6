"""DataLoaders for training (PK batches) and testing (sequential).

Workers only decode and resize (:class:`ImageDataset`); batches come out as
uint8 and are augmented afterwards, batched, by :class:`TrainAugment` /
:class:`TestTransform` on the training device.  Typical loop::

    loader = build_train_loader(records, (256, 128), 64, 4, num_workers=2, seed=0, pin_memory=True)
    augment = TrainAugment(mean=(0.5,) * 3, std=(0.5,) * 3).to(device)
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            images = augment(batch["image"].to(device, non_blocking=True))
"""
from __future__ import annotations

import random
import signal
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

from reid.data.image_dataset import ImageDataset
from reid.data.records import ImageRecord
from reid.data.sampler import DistributedPKSampler, PKSampler

_INT_KEYS = ("pid", "camid", "viewid", "index")


def collate(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack :class:`ImageDataset` samples: ``image`` (B, …, 3, H, W) uint8 and int64 (B,) label tensors.

    Images decoded without a resize step are CHW views of HWC memory; those are
    stacked as HWC (a plain copy, several times faster than transposing each)
    and returned as a channels-last view, which the batched transforms read
    directly.  Contiguous CHW images are stacked as they are.  Stacking goes
    through ``default_collate`` so that, inside a worker, the batch is written
    straight into shared memory (no extra copy on the way to the main process).
    """
    if not samples:
        raise ValueError("cannot collate an empty batch")
    images = [s["image"] for s in samples]
    if images[0].shape[-3] > 1 and images[0].stride(-3) == 1:  # channels innermost in memory
        stacked = default_collate([im.movedim(-3, -1) for im in images]).movedim(-1, -3)
    else:
        stacked = default_collate(images)
    out: dict[str, torch.Tensor] = {"image": stacked}
    for key in _INT_KEYS:
        out[key] = torch.tensor([s[key] for s in samples], dtype=torch.int64)
    return out


def seed_worker(worker_id: int) -> None:
    """Set a worker up: it ignores SIGTERM, and seeds ``random`` and NumPy from torch's per-worker seed.

    SLURM and Kubernetes send SIGTERM to every process of the job: a worker that died of it would make the main
    process fail ("DataLoader worker is killed") before it could write its mid-epoch checkpoint. The main process
    stops its workers itself when it exits (:func:`stop_workers`). Decoding draws no random numbers today; the
    seeding keeps any future per-worker randomness reproducible and different across workers.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def stop_workers() -> int:
    """Kill the worker processes this process still has (SIGKILL; they ignore SIGTERM); returns how many.

    The entry points call it on the way out. The persistent training loaders keep their workers until they are
    garbage-collected; when the job ends by an exception they are still referenced from its traceback, and at
    interpreter exit multiprocessing would stop them with SIGTERM, which they ignore, and wait for them forever.
    Anything worth keeping (the checkpoint, the MLflow run) is written by then.
    """
    import multiprocessing
    import threading

    children = multiprocessing.active_children()
    if children and threading.current_thread() is threading.main_thread():
        # torch's SIGCHLD handler raises "DataLoader worker ... is killed by signal" for a worker that dies of a
        # signal: here that is the point, so the default handler goes back first.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for child in children:
        child.kill()
    for child in children:
        child.join()
    return len(children)


def _loader_kwargs(num_workers: int, pin_memory: bool, prefetch_factor: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"num_workers": int(num_workers), "pin_memory": bool(pin_memory), "collate_fn": collate}
    if num_workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=int(prefetch_factor), worker_init_fn=seed_worker)
        if sys.platform.startswith("linux"):
            # An explicit fork context: inside a joblib (loky) sweep worker the default context fails
            # ("'Process' object has no attribute 'env'"); fork is what Linux uses by default anyway.
            kwargs["multiprocessing_context"] = "fork"
    return kwargs


def build_train_loader(
    records: Sequence[ImageRecord],
    size: tuple[int, int],
    batch_size: int,
    num_instances: int,
    num_workers: int,
    seed: int,
    interpolation: str = "bicubic",
    num_views: int = 1,
    pin_memory: bool = False,
    distributed: tuple[int, int] | None = None,
    prefetch_factor: int = 2,
    draft: bool = False,
    resize_backend: str = "torch",
) -> DataLoader:
    """PK-sampled training loader; call ``loader.sampler.set_epoch(epoch)`` before each epoch.

    Args:
        records: training images (pids already relabelled or not: only equality matters).
        size: (H, W) input size.
        batch_size: global batch P×K; with ``distributed=(R, r)`` each rank loads batch_size / R.
        num_instances: K.
        num_workers: decoding worker processes (0: decode in the main process).
        seed: sampler seed (epoch plan = f(seed, epoch)) and worker-seed base.
        interpolation: PIL resize filter, "bicubic" as CLIP-ReID's training transform.
        num_views: identical copies per sample, (B, V, 3, H, W), for multi-view augmentation.
        pin_memory: pin batches for asynchronous host→GPU copies.
        distributed: (num_replicas, rank) to use :class:`DistributedPKSampler`.
        prefetch_factor: batches each worker prepares ahead.
        draft: JPEG draft-mode decoding for large images (see :func:`decode_image`).
        resize_backend: "torch" (fast) or "pil" (bit-identical to CLIP-ReID), see :mod:`reid.data.image_dataset`.
    """
    dataset = ImageDataset(records, size, interpolation, num_views, draft, resize_backend)
    pids = [r.pid for r in dataset.records]
    sampler: PKSampler
    if distributed is None:
        sampler = PKSampler(pids, batch_size, num_instances, seed)
    else:
        num_replicas, rank = distributed
        sampler = DistributedPKSampler(pids, batch_size, num_instances, seed, num_replicas, rank)
    return DataLoader(
        dataset,
        batch_size=sampler.local_batch_size,
        sampler=sampler,
        drop_last=True,
        generator=torch.Generator().manual_seed(int(seed)),
        **_loader_kwargs(num_workers, pin_memory, prefetch_factor),
    )


def build_test_loader(
    records: Sequence[ImageRecord],
    size: tuple[int, int],
    batch_size: int,
    num_workers: int,
    interpolation: str = "bilinear",
    pin_memory: bool = False,
    prefetch_factor: int = 2,
    draft: bool = False,
    resize_backend: str = "torch",
) -> DataLoader:
    """Loader over ``records`` in their order, with no sampler randomness.

    For query/gallery feature extraction, and for stage-1 feature caching of the
    training images (docs/method.md §3.2: test transform, no augmentation; CLIP-ReID
    shuffles that loader, which changes nothing since every cached feature keeps
    its ``index`` and ``pid``).
    """
    dataset = ImageDataset(records, size, interpolation, 1, draft, resize_backend)
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=False,
        drop_last=False,
        **_loader_kwargs(num_workers, pin_memory, prefetch_factor),
    )
