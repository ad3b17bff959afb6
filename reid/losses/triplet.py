"""Batch-hard triplet loss on Euclidean distances of un-normalised features (docs/method.md §4.2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def euclidean_distances(x: torch.Tensor) -> torch.Tensor:
    """sqrt(clamp(|a|² + |b|² - 2ab, 1e-12)), as the public code computes it."""
    sq = x.pow(2).sum(dim=1, keepdim=True)
    d2 = sq + sq.t() - 2.0 * x @ x.t()
    return d2.clamp(min=1e-12).sqrt()


def batch_hard_triplet(feats: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """For each anchor: farthest positive and closest negative; mean of relu(d_ap - d_an + margin).

    ``margin <= 0`` selects the soft-margin form log(1 + exp(d_ap - d_an)).
    """
    dist = euclidean_distances(feats.float())
    same = labels[:, None] == labels[None, :]
    if not bool((~same).any()):
        raise ValueError("batch-hard triplet needs at least two identities in the batch")
    d_ap = dist.masked_fill(~same, float("-inf")).max(dim=1).values
    d_an = dist.masked_fill(same, float("inf")).min(dim=1).values
    if margin > 0:
        return F.relu(d_ap - d_an + margin).mean()
    return F.softplus(d_ap - d_an).mean()
