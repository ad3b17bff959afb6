"""Test-time feature extraction: descriptors for a list of images, optionally flip-averaged."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


@torch.no_grad()
def extract_features(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    flip: bool = False,
    use_side_info: bool = True,
    desc: str = "features",
    progress: bool = True,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Returns (features float32 on CPU, pids, camids) in loader order.

    Runs in fp32 without autocast, as CLIP-ReID's inference. ``flip`` averages the
    descriptor of the image and of its horizontal mirror (an opt-in test-time trick).
    """
    was_training = model.training
    model.eval()
    feats, pids, camids = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        images = transform(batch["image"].to(device, non_blocking=True))
        cams = batch["camid"].to(device) if use_side_info else None
        views = batch["viewid"].to(device) if use_side_info else None
        f = model(images, cams, views).float()
        if flip:
            f = (f + model(images.flip(-1), cams, views).float()) / 2
        feats.append(f.cpu())
        pids.append(batch["pid"].numpy())
        camids.append(batch["camid"].numpy())
    model.train(was_training)
    return torch.cat(feats), np.concatenate(pids), np.concatenate(camids)
