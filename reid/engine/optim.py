"""Optimiser with CLIP-ReID's parameter groups: biases get lr × bias_lr_factor and their own weight decay."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def param_groups(
    named: Iterable[tuple[str, nn.Parameter]],
    lr: float,
    weight_decay: float,
    bias_lr_factor: float,
    weight_decay_bias: float,
) -> list[dict]:
    groups: list[dict] = []
    for name, p in named:
        if not p.requires_grad:
            continue
        if "bias" in name:
            groups.append({"params": [p], "lr": lr * bias_lr_factor, "weight_decay": weight_decay_bias, "name": name})
        else:
            groups.append({"params": [p], "lr": lr, "weight_decay": weight_decay, "name": name})
    if not groups:
        raise ValueError(
            "the optimiser got no trainable parameters (AMP would fail with 'No inf checks were recorded')"
        )
    return groups


def build_optimizer(
    named: Iterable[tuple[str, nn.Parameter]],
    name: str,
    lr: float,
    weight_decay: float,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: float | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    momentum: float = 0.9,
    fused: bool | None = None,
) -> torch.optim.Optimizer:
    """Adam (coupled L2, as torch.optim.Adam), AdamW or SGD over per-parameter groups."""
    wdb = weight_decay if weight_decay_bias is None else weight_decay_bias
    groups = param_groups(named, lr, weight_decay, bias_lr_factor, wdb)
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name](groups, lr=lr, betas=tuple(betas), momentum=momentum, fused=fused)


# name -> factory(groups, lr, betas, momentum, fused): the config's optimizer.name choices.
OPTIMIZERS = {
    "adam": lambda g, lr, betas, momentum, fused: torch.optim.Adam(g, lr=lr, betas=betas, fused=fused),
    "adamw": lambda g, lr, betas, momentum, fused: torch.optim.AdamW(g, lr=lr, betas=betas, fused=fused),
    "sgd": lambda g, lr, betas, momentum, fused: torch.optim.SGD(g, lr=lr, momentum=momentum, fused=fused),
}
