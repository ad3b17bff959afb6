"""Stage-2 objective: weighted ID, triplet (at several depths) and image-to-text terms (docs/method.md §4.2)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from reid.losses import batch_hard_triplet, id_loss
from reid.models.reid_model import TrainOutput


@dataclass(frozen=True)
class ImageLossConfig:
    id_weight: float
    triplet_weight: float
    i2t_weight: float
    label_smoothing: float
    triplet_margin: float
    # Which of [f_mid, f_last, f_proj] get a triplet term (CLIP-ReID: all three).
    triplet_on: tuple[str, ...] = ("mid", "last", "proj")


_FEAT_INDEX = {"mid": 0, "last": 1, "proj": 2}


class ImageObjective:
    """L = w_id·Σ CE_ls(logits) + w_tri·Σ triplet(feats) + w_i2t·CE_ls(f_proj · Tᵀ)."""

    def __init__(self, cfg: ImageLossConfig, text_classifier: torch.Tensor | None = None):
        unknown = set(cfg.triplet_on) - set(_FEAT_INDEX)
        if unknown:
            raise ValueError(f"loss.triplet_on has unknown entries {sorted(unknown)}; known: {sorted(_FEAT_INDEX)}")
        self.cfg = cfg
        self.text_classifier = text_classifier

    def __call__(self, out: TrainOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        # The loss arithmetic in fp32 even inside the training step's autocast region, which would otherwise run
        # the losses' matmuls in bf16/fp16 (the triplet's |a|²+|b|²-2ab cancels: ~10% off under bf16).
        with torch.autocast(device_type=labels.device.type, enabled=False):
            return self._terms(out, labels)

    def _terms(self, out: TrainOutput, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.cfg
        terms: dict[str, torch.Tensor] = {}
        terms["id"] = sum(id_loss(lg, labels, c.label_smoothing) for lg in out.logits)
        terms["triplet"] = sum(
            batch_hard_triplet(out.triplet_feats[_FEAT_INDEX[name]], labels, c.triplet_margin) for name in c.triplet_on
        )
        total = c.id_weight * terms["id"] + c.triplet_weight * terms["triplet"]
        if self.text_classifier is not None and c.i2t_weight != 0:
            logits = out.proj.float() @ self.text_classifier.float().t()
            terms["i2t"] = id_loss(logits, labels, c.label_smoothing)
            total = total + c.i2t_weight * terms["i2t"]
        terms["loss"] = total
        with torch.no_grad():
            terms["acc"] = (out.logits[0].argmax(dim=1) == labels).float().mean()
        return terms
