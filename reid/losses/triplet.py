"""Batch-hard triplet loss on Euclidean distances of un-normalised features (docs/method.md §4.2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from reid.losses.terms import Outputs, TermFn, TermSpec, register_term

# The depths a triplet term can sit at: TrainOutput.triplet_feats = [f_mid, f_last, f_proj].
TAPS = {"mid": 0, "last": 1, "proj": 2}


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


def _triplet_term(margin: float, on: list[str]) -> TermFn:
    """Σ over the chosen depths (CLIP-ReID: all three) of the batch-hard triplet on the un-normalised features."""
    unknown = sorted(set(on) - set(TAPS))
    if unknown:
        raise ValueError(f"loss.triplet_on has unknown entries {unknown}; known: {sorted(TAPS)}")
    taps = [TAPS[name] for name in on]

    def term(outputs: Outputs) -> torch.Tensor:
        feats, labels = outputs["train"].triplet_feats, outputs["labels"]
        return sum(batch_hard_triplet(feats[i], labels, margin) for i in taps)

    return term


register_term(
    TermSpec(
        "image",
        "triplet",
        "loss.triplet_weight",
        _triplet_term,
        {"margin": "loss.triplet_margin", "on": "loss.triplet_on"},
        order=20,
        summary="batch-hard triplet at f_mid, f_last and f_proj (docs/method.md §4.2)",
    )
)
