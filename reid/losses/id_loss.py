"""Identity cross-entropy with label smoothing (CLIP-ReID's CrossEntropyLabelSmooth).

Target = (1 - eps) * onehot + eps / N, which is exactly torch's ``label_smoothing=eps``.
Computed in fp32 whatever the autocast dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def id_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
