"""Decode-and-resize dataset: the only per-image work done in DataLoader workers.

Workers decode with PIL and resize to the network input size, returning uint8
tensors; all random augmentation runs afterwards on whole batches
(:mod:`reid.data.transforms`), on the GPU when there is one.  This keeps the
CPU side light (uint8 is 4× smaller than float through the worker queues and
pinned memory) and leaves the augmentation batched and device-agnostic.

The resize is PIL's own ``Image.resize`` with the requested filter, i.e. the
same call torchvision's ``Resize`` makes on PIL images in CLIP-ReID (bicubic for
training, bilinear for testing), so the pixels match the reference pipeline.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from reid.data.errors import DatasetError
from reid.data.records import ImageRecord

INTERPOLATIONS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def decode_image(path: str, size: tuple[int, int], resample: Image.Resampling, draft: bool = False) -> torch.Tensor:
    """Read ``path`` as RGB, resize to ``size`` = (H, W); returns a uint8 (3, H, W) tensor.

    ``draft=True`` lets the JPEG decoder downscale by 1/2, 1/4 or 1/8 while
    decoding when the image is at least that much larger than ``size``: much
    faster for big images (VeRi, MSMT17), not bit-identical to a full decode.

    Raises:
        DatasetError: naming ``path`` when the file is missing, unreadable or corrupt.
    """
    height, width = size
    try:
        with Image.open(path) as img:
            if draft:
                img.draft("RGB", (width, height))
            img = img.convert("RGB")
            if img.size != (width, height):
                img = img.resize((width, height), resample=resample)
            array = np.array(img, dtype=np.uint8, copy=True)
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError...
        raise DatasetError(f"cannot decode image {path}: {type(exc).__name__}: {exc}") from exc
    return torch.from_numpy(array).permute(2, 0, 1)


class ImageDataset(torch.utils.data.Dataset):
    """Images of a list of :class:`ImageRecord`, decoded and resized, with their labels.

    Args:
        records: the images.
        size: (H, W) network input size.
        interpolation: PIL filter name; CLIP-ReID uses "bicubic" to train and "bilinear" to test.
        num_views: >1 returns that many identical copies stacked as (V, 3, H, W), for
            pipelines that augment each view independently later (SVLL-ReID's extra views).
        draft: let the JPEG decoder downscale large images while decoding (see :func:`decode_image`).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        size: tuple[int, int],
        interpolation: str,
        num_views: int = 1,
        draft: bool = False,
    ) -> None:
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {interpolation!r} not in {sorted(INTERPOLATIONS)}")
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f"size must be a positive (H, W) pair, got {size}")
        self.records = list(records)
        self.size = (int(size[0]), int(size[1]))
        self.interpolation = interpolation
        self.resample = INTERPOLATIONS[interpolation]
        self.num_views = int(num_views)
        self.draft = bool(draft)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        image = decode_image(record.path, self.size, self.resample, self.draft)
        if self.num_views > 1:
            image = image.unsqueeze(0).expand(self.num_views, *image.shape)
        return {
            "image": image,
            "pid": int(record.pid),
            "camid": int(record.camid),
            "viewid": int(record.viewid),
            "index": int(index),
        }
