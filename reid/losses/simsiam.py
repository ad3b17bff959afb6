"""SimSiam's symmetric negative cosine with stop-gradient (the negative-free SSL alternative, docs/method.md §8.3.6)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """−½[cos(p1, sg(z2)) + cos(p2, sg(z1))]: predictions p, targets z (detached here)."""
    return -0.5 * (
        F.cosine_similarity(p1.float(), z2.detach().float(), dim=1).mean()
        + F.cosine_similarity(p2.float(), z1.detach().float(), dim=1).mean()
    )
