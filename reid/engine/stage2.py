"""Stage 2 (and the whole baseline): fine-tune the image encoder with ID, triplet (and i2t / SSL) losses."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from reid.engine.objectives import ImageObjective


def image_step(
    model: nn.Module,
    augment: nn.Module,
    objective: ImageObjective,
    device: torch.device,
    use_side_info: bool,
    extra_terms: Callable[[dict[str, Any], Any], dict[str, tuple[float, torch.Tensor]]] | None = None,
) -> Callable[[dict[str, Any]], dict[str, torch.Tensor]]:
    """Build the per-batch step: augment on the device, forward, loss terms (+ optional extra terms such as SSL)."""

    def step(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raw = batch["image"].to(device, non_blocking=True)
        main = raw[:, 0] if raw.dim() == 5 else raw
        images = augment(main)
        labels = batch["pid"].to(device, non_blocking=True)
        cams = batch["camid"].to(device, non_blocking=True) if use_side_info else None
        views = batch["viewid"].to(device, non_blocking=True) if use_side_info else None
        out = model(images, cams, views)
        terms = objective(out, labels)
        if extra_terms is not None:
            extra = extra_terms(batch, out)
            for name, (weight, value) in extra.items():
                terms[name] = value
                terms["loss"] = terms["loss"] + weight * value
        return terms

    return step
