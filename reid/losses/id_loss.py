"""Identity cross-entropy with label smoothing (CLIP-ReID's CrossEntropyLabelSmooth).

Target = (1 - eps) * onehot + eps / N, which is exactly torch's ``label_smoothing=eps``.
Computed in fp32 whatever the autocast dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from reid.losses.terms import Outputs, TermFn, TermSpec, register_term


def id_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)


def _id_term(label_smoothing: float) -> TermFn:
    """ID: Σ over both BNNeck classifiers (on f_last and on f_proj) of the label-smoothed cross-entropy."""

    def term(outputs: Outputs) -> torch.Tensor:
        out, labels = outputs["train"], outputs["labels"]
        return sum(id_loss(logits, labels, label_smoothing) for logits in out.logits)

    return term


def _image_to_text_term(label_smoothing: float) -> TermFn:
    """CLIP-ReID's stage-2 image-to-text loss: label-smoothed CE of f_proj · Tᵀ against the fixed text classifier."""

    def term(outputs: Outputs) -> torch.Tensor:
        logits = outputs["train"].proj.float() @ outputs["text_classifier"].float().t()
        return id_loss(logits, outputs["labels"], label_smoothing)

    return term


def classifier_accuracy(outputs: Outputs) -> torch.Tensor:
    """Top-1 of the f_last classifier on the training batch (logged as <stage>/acc; no gradient)."""
    return (outputs["train"].logits[0].argmax(dim=1) == outputs["labels"]).float().mean()


register_term(TermSpec(
    "image", "id", "loss.id_weight", _id_term, {"label_smoothing": "loss.label_smoothing"}, order=10,
    summary="label-smoothed ID cross-entropy on both BNNeck classifiers (docs/method.md §4.2)",
))
register_term(
    TermSpec(
        "image",
        "i2t",
        "loss.i2t_weight",
        _image_to_text_term,
        {"label_smoothing": "loss.label_smoothing"},
        needs=("text_classifier",),
        order=30,
        summary="image-to-text cross-entropy against the learned prompts (docs/method.md §4.2)",
    )
)
