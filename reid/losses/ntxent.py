"""NT-Xent (SimCLR) loss in SVLL-ReID's SLIP-style form (docs/method.md §8.2.6).

For n pairs (z1_i, z2_i), L2-normalised: anchor i of view a has its positive i in view
b and 2n−2 negatives (the other cross-view and same-view embeddings; self-similarity
masked). L = ½[CE(a → [b ; a]) + CE(b → [a ; b])], averaged over anchors. fp32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_SELF_MASK = -1e9  # as SLIP: large negative, not -inf, so an all-masked row cannot produce NaN


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``labels`` (a documented departure from SVLL-ReID, off by default): pairs of the same identity other than the
    anchor's own positive leave the denominators, so the K−1 same-identity images of a P×K batch stop being negatives.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent needs two (n, d) views of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 2:
        raise ValueError("nt_xent needs at least 2 pairs (one positive and negatives)")
    a = F.normalize(z1.float(), dim=1)
    b = F.normalize(z2.float(), dim=1)
    n = a.shape[0]
    eye = torch.eye(n, device=a.device, dtype=torch.bool)
    same = eye if labels is None else labels[:, None] == labels[None, :]
    logits_aa = (a @ a.t() / temperature).masked_fill(same, _SELF_MASK)
    logits_bb = (b @ b.t() / temperature).masked_fill(same, _SELF_MASK)
    cross = same & ~eye  # the positive (the diagonal) stays
    logits_ab = (a @ b.t() / temperature).masked_fill(cross, _SELF_MASK)
    logits_ba = (b @ a.t() / temperature).masked_fill(cross, _SELF_MASK)
    target = torch.arange(n, device=a.device)
    loss_a = F.cross_entropy(torch.cat([logits_ab, logits_aa], dim=1), target)
    loss_b = F.cross_entropy(torch.cat([logits_ba, logits_bb], dim=1), target)
    return (loss_a + loss_b) / 2
