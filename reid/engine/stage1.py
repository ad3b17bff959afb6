"""CLIP-ReID stage 1: learn per-identity prompts against a frozen CLIP over cached image features.

docs/method.md §3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from reid.models.prompt_learner import PromptLearner
from reid.models.text_encoder import TextEncoder


@torch.no_grad()
def cache_image_features(
    encode: Callable[[torch.Tensor], torch.Tensor],
    loader: torch.utils.data.DataLoader,
    transform: nn.Module,
    device: torch.device,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected features of every training image (test transform, no augmentation, no SIE), kept on ``device``.

    Returns (features (N, D) float32, labels (N,)) in dataset order.
    """
    feats, labels = [], []
    for batch in tqdm(loader, desc="stage1 feature cache", leave=False, disable=not progress):
        images = transform(batch["image"].to(device, non_blocking=True))
        feats.append(encode(images).float())
        labels.append(batch["pid"].to(device))
    return torch.cat(feats), torch.cat(labels)


def epoch_chunks(num: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """A fresh random permutation of all cached features per epoch, cut into batches.

    CLIP-ReID always runs ⌊N/B⌋+1 chunks, so when B divides N its last chunk is empty
    (docs/method.md §11.3); we simply never emit an empty chunk.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(num)
    return [order[i : i + batch_size] for i in range(0, num, batch_size)]


def stage1_batches(
    feats: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int
) -> Callable[[int, int], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    def batches(epoch: int, begin: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in epoch_chunks(len(feats), batch_size, seed, epoch)[begin:]:
            index = torch.as_tensor(idx, device=feats.device)
            yield feats[index], labels[index]

    return batches


@torch.no_grad()
def text_classifier(
    prompt_learner: PromptLearner, text_encoder: TextEncoder, chunk: int, device: torch.device
) -> torch.Tensor:
    """T ∈ R^{N_ids × D}: every identity's prompt feature, computed once at the start of stage 2 (fixed after)."""
    out = []
    for start in range(0, prompt_learner.num_classes, chunk):
        labels = torch.arange(start, min(start + chunk, prompt_learner.num_classes), device=device)
        out.append(text_encoder(prompt_learner(labels), prompt_learner.eot_index).float())
    return torch.cat(out)
