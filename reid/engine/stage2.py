"""The network of an image stage (CLIP-ReID stage 2, the whole baseline) behind one forward."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class Stage2Net(nn.Module):
    """Everything stage 2 trains, behind one forward, so DistributedDataParallel sees one forward per step.

    ``forward(images, camids, viewids, ssl_views)`` runs the ReID model on the
    (augmented) main images and, when SVLL's vision SSL is on, the image encoder
    on the two extra views (class token after ``ln_post``, no SIE) and the SSL
    head on them. Returns ``(TrainOutput, ssl_loss or None)``. The step augments
    outside, since augmentation has no parameters and draws from the RNG.
    ``detach``: the SSL head sees the views' features without their gradient, so the
    term trains only the head (a control: does the term change the encoder?).
    """

    def __init__(self, model: nn.Module, ssl_head: nn.Module | None = None, detach: bool = False):
        super().__init__()
        self.model = model
        self.ssl_head = ssl_head
        self.detach = detach

    def forward(
        self,
        images: torch.Tensor,
        camids: torch.Tensor | None = None,
        viewids: torch.Tensor | None = None,
        ssl_views: tuple[torch.Tensor, torch.Tensor] | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[Any, torch.Tensor | None]:
        out = self.model(images, camids, viewids)
        if ssl_views is None:
            return out, None
        if self.ssl_head is None:
            raise ValueError("Stage2Net got SSL views but was built without an SSL head")
        v1 = self.model.encoder(ssl_views[0], None, None)[1]
        v2 = self.model.encoder(ssl_views[1], None, None)[1]
        if self.detach:
            v1, v2 = v1.detach(), v2.detach()
        return out, self.ssl_head(v1, v2, labels)


def image_step(
    net: nn.Module, augment: nn.Module, objective: Callable[[dict[str, Any]], dict[str, torch.Tensor]],
    device: torch.device, side_info: bool, ssl_augment: nn.Module | None = None,
    text_weights: torch.Tensor | Callable[[], torch.Tensor] | None = None,
) -> Callable[[dict[str, Any]], dict[str, torch.Tensor]]:
    """The per-batch step over a :class:`Stage2Net` (or its DDP wrapper): augment, forward, the objective's terms.

    RNG draws in a fixed order: the main view's augmentation first, then the two SSL views' (the forward passes
    draw nothing). The step's outputs: ``train`` (the TrainOutput), ``labels``, ``text_classifier`` (CLIP-ReID) and
    ``ssl_vis`` (SVLL's vision term, computed in the forward). ``text_weights`` may be a callable, for a method
    whose text classifier changes during the stage (called once per step, after the forward).
    """

    def step(batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raw = batch["image"].to(device, non_blocking=True)
        main = raw[:, 0] if raw.dim() == 5 else raw
        images = augment(main)
        labels = batch["pid"].to(device, non_blocking=True)
        cams = batch["camid"].to(device, non_blocking=True) if side_info else None
        views = batch["viewid"].to(device, non_blocking=True) if side_info else None
        ssl_views = (ssl_augment(raw), ssl_augment(raw)) if ssl_augment is not None else None
        out, ssl_loss = net(images, cams, views, ssl_views, labels)
        outputs: dict[str, Any] = {"train": out, "labels": labels}
        if text_weights is not None:
            outputs["text_classifier"] = text_weights() if callable(text_weights) else text_weights
        if ssl_loss is not None:
            outputs["ssl_vis"] = ssl_loss
        return objective(outputs)

    return step
