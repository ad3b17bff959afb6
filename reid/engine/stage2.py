"""Stage 2 (and the whole baseline): fine-tune the image encoder with ID, triplet (and i2t / SSL) losses."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from reid.engine.objectives import ImageObjective


class Stage2Net(nn.Module):
    """Everything stage 2 trains, behind one forward, so DistributedDataParallel sees one forward per step.

    ``forward(images, camids, viewids, ssl_views)`` runs the ReID model on the
    (augmented) main images and, when SVLL's vision SSL is on, the image encoder
    on the two extra views (class token after ``ln_post``, no SIE) and the SSL
    head on them. Returns ``(TrainOutput, ssl_loss or None)``. The step augments
    outside, since augmentation has no parameters and draws from the RNG.
    """

    def __init__(self, model: nn.Module, ssl_head: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.ssl_head = ssl_head

    def forward(
        self,
        images: torch.Tensor,
        camids: torch.Tensor | None = None,
        viewids: torch.Tensor | None = None,
        ssl_views: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[Any, torch.Tensor | None]:
        out = self.model(images, camids, viewids)
        if ssl_views is None:
            return out, None
        if self.ssl_head is None:
            raise ValueError("Stage2Net got SSL views but was built without an SSL head")
        v1 = self.model.encoder(ssl_views[0], None, None)[1]
        v2 = self.model.encoder(ssl_views[1], None, None)[1]
        return out, self.ssl_head(v1, v2)


def stage2_step(
    net: nn.Module,
    augment: nn.Module,
    objective: ImageObjective,
    device: torch.device,
    use_side_info: bool,
    ssl_augment: nn.Module | None = None,
    ssl_weight: float = 0.0,
) -> Callable[[dict[str, Any]], dict[str, torch.Tensor]]:
    """The per-batch step over a :class:`Stage2Net` (or its DistributedDataParallel wrapper).

    RNG draws in a fixed order: the main view's augmentation first, then the two SSL
    views' (the forward passes draw nothing).
    """

    def step(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raw = batch["image"].to(device, non_blocking=True)
        main = raw[:, 0] if raw.dim() == 5 else raw
        images = augment(main)
        labels = batch["pid"].to(device, non_blocking=True)
        cams = batch["camid"].to(device, non_blocking=True) if use_side_info else None
        views = batch["viewid"].to(device, non_blocking=True) if use_side_info else None
        ssl_views = (ssl_augment(raw), ssl_augment(raw)) if ssl_augment is not None else None
        out, ssl_loss = net(images, cams, views, ssl_views)
        terms = objective(out, labels)
        if ssl_loss is not None:
            terms["ssl_vis"] = ssl_loss
            terms["loss"] = terms["loss"] + ssl_weight * ssl_loss
        return terms

    return step
