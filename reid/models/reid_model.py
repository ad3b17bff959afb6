"""The ReID image model: CLIP image encoder + two BNNeck heads, shared by every method."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reid.models.heads import BNNeckClassifier


@dataclass
class TrainOutput:
    """What the losses need from one training forward pass."""

    logits: list[torch.Tensor]  # [classifier(BN(f_last)), classifier_proj(BN(f_proj))]
    triplet_feats: list[torch.Tensor]  # [f_mid, f_last, f_proj], before BN, un-normalised
    proj: torch.Tensor  # f_proj, for the image-to-text loss


NECK_FEATS = ("before", "after")  # backbone.neck_feat: the descriptor before or after the BNNecks


class ReIDModel(nn.Module):
    """Wraps an encoder returning (f_mid, f_last, f_proj) and adds BNNeck heads on f_last and f_proj.

    ``neck_feat`` picks the test descriptor: "before" (CLIP-ReID's default) concatenates
    [f_last, f_proj] before the BNs, "after" after them.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, classifier_std: float, neck_feat: str = "before"):
        super().__init__()
        if neck_feat not in NECK_FEATS:
            raise ValueError(f"neck_feat must be 'before' or 'after', got {neck_feat!r}")
        self.encoder = encoder
        self.head = BNNeckClassifier(encoder.width, num_classes, classifier_std)
        self.head_proj = BNNeckClassifier(encoder.proj_dim, num_classes, classifier_std)
        self.neck_feat = neck_feat

    @property
    def side_info(self) -> tuple[bool, bool]:
        """(camera, view): which ids the encoder's side-information embedding reads."""
        return tuple(self.encoder.side_info)  # type: ignore[return-value]

    @property
    def descriptor_dim(self) -> int:
        return self.encoder.width + self.encoder.proj_dim

    def forward(
        self, images: torch.Tensor, camids: torch.Tensor | None = None, viewids: torch.Tensor | None = None
    ) -> TrainOutput | torch.Tensor:
        f_mid, f_last, f_proj = self.encoder(images, camids, viewids)
        if not self.training:
            if self.neck_feat == "after":
                return torch.cat([self.head.bn(f_last), self.head_proj.bn(f_proj)], dim=1)
            return torch.cat([f_last, f_proj], dim=1)
        logits, _ = self.head(f_last)
        logits_proj, _ = self.head_proj(f_proj)
        return TrainOutput(logits=[logits, logits_proj], triplet_feats=[f_mid, f_last, f_proj], proj=f_proj)

    def encode_projected(self, images: torch.Tensor) -> torch.Tensor:
        """The projected feature alone (stage-1 cache: no SIE, as CLIP-ReID)."""
        return self.encoder(images, None, None)[2]
