"""Supervised contrastive operator of CLIP-ReID stage 1 (docs/method.md §3.3).

SC(A, B, a, b) = -mean_i [ mean_{j: b_j = a_i} log softmax_k(A_i · B_k)_j ], temperature 1,
no feature normalisation. Computed in fp32 with max subtraction (log_softmax).
"""
from __future__ import annotations

import torch

from reid.losses.terms import TermFn, TermSpec, register_term


def supervised_contrastive(
    anchors: torch.Tensor, contrast: torch.Tensor, anchor_labels: torch.Tensor, contrast_labels: torch.Tensor
) -> torch.Tensor:
    logits = anchors.float() @ contrast.float().t()
    log_prob = torch.log_softmax(logits, dim=1)
    positive = (anchor_labels[:, None] == contrast_labels[None, :]).float()
    counts = positive.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("every anchor needs at least one positive in the contrast set")
    return -((positive * log_prob).sum(dim=1) / counts).mean()


def _image_to_text() -> TermFn:
    return lambda o: supervised_contrastive(o["image"], o["text"], o["labels"], o["labels"])


def _text_to_image() -> TermFn:
    return lambda o: supervised_contrastive(o["text"], o["image"], o["labels"], o["labels"])


register_term(TermSpec("prompt", "i2t", "loss.prompt_i2t_weight", _image_to_text, order=10,
                       summary="image-to-text supervised contrastive of stage 1 (docs/method.md §3.3)"))
register_term(TermSpec("prompt", "t2i", "loss.prompt_t2i_weight", _text_to_image, order=20,
                       summary="text-to-image supervised contrastive of stage 1 (docs/method.md §3.3)"))
