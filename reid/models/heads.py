"""BNNeck + bias-free classifier, the head CLIP-ReID puts on each of two features (docs/method.md §2.4)."""
from __future__ import annotations

import torch
from torch import nn


class BNNeckClassifier(nn.Module):
    """BatchNorm1d with a frozen zero bias, then a bias-free linear classifier initialised N(0, std²)."""

    def __init__(self, dim: int, num_classes: int, classifier_std: float):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=classifier_std)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (logits, feature after BN)."""
        bn_feat = self.bn(feat)
        return self.classifier(bn_feat), bn_feat
