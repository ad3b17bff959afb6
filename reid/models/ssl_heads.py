"""Projection / prediction heads of the self-supervised branches (SVLL-ReID, docs/method.md §8)."""
from __future__ import annotations

import torch
from torch import nn


class ProjectionMLP(nn.Module):
    """Linear → BN → ReLU → Linear → BN → ReLU → Linear (SVLL: 512/768 → 4096 → 4096 → 256).

    ``svll_init`` reproduces SVLL's image-MLP init (``initialize_mlp``): Kaiming-normal linear weights (fan-in, ReLU)
    and BN affine ~ U(0, 1); the linear biases keep PyTorch's default init, which that function never touches.
    SVLL's text MLP keeps PyTorch's default init throughout.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, svll_init: bool = False):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim),
        )
        if svll_init:
            for m in self.net:
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm1d):
                    nn.init.uniform_(m.weight)
                    nn.init.uniform_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SimSiamPredictor(nn.Module):
    """SimSiam prediction MLP: dim → hidden (BN, ReLU) → dim, bias everywhere, PyTorch's default init.

    SVLL-ReID's ``prediction_MLP`` (768 → 512 → 768 on the image class token), in the same order
    (linear1, bn1, relu, layer2) so its checkpoints map onto ``net.0``, ``net.1`` and ``net.3``.
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
