"""SVLL-ReID's two self-supervised heads and the language views (docs/method.md §8.2, §8.3).

language (stage 1): two masked copies of the prompts of the batch's distinct identities
→ frozen text encoder → projector → NT-Xent (or SimSiam). vision (stage 2): two extra
random-erased views → image encoder class token (no SIE) → projector → NT-Xent (or SimSiam).
"""
from __future__ import annotations

import torch
from torch import nn

from reid.losses.ntxent import nt_xent
from reid.losses.simsiam import simsiam_loss
from reid.models.prompt_learner import PromptLearner
from reid.models.text_encoder import TextEncoder


def mask_prompts(prompts: torch.Tensor, mask_prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each embedding entry independently with probability ``mask_prob``, as SVLL: no 1/(1−p) rescale, all
    77 tokens."""
    keep = torch.rand(prompts.shape, device=prompts.device, generator=generator) >= mask_prob
    return prompts * keep


SSL_FAMILIES = ("simclr", "simsiam")  # ssl.family


class SSLHead(nn.Module):
    """An optional projector (+ the SimSiam predictor) and the family's loss on two views.

    SimCLR: NT-Xent on the projections. SimSiam: −½[cos(p1, sg(z2)) + cos(p2, sg(z1))] with p = predictor(z); z is
    the projection, or the raw feature when there is no projector (SVLL-ReID's form: the image class token).
    """

    def __init__(
        self,
        family: str,
        projector: nn.Module | None,
        temperature: float | None = None,
        predictor: nn.Module | None = None,
        mask_prob: float = 0.0,
        trainable: bool = True,
        mask_same_identity: bool = False,
    ):
        """``mask_prob``: the language head's masking of prompt entries; ``trainable``: whether the stage optimiser
        trains the head (SVLL's text MLP is left out of its stage-1 optimiser: a fixed random projection)."""
        super().__init__()
        self.mask_prob, self.trainable = float(mask_prob), bool(trainable)
        self.mask_same_identity = bool(mask_same_identity)  # NT-Xent only: same-identity pairs leave the denominators
        if family not in SSL_FAMILIES:
            raise ValueError(f"ssl family must be simclr or simsiam, got {family!r}")
        if family == "simsiam" and predictor is None:
            raise ValueError("simsiam needs a predictor")
        if family == "simclr" and (projector is None or temperature is None):
            raise ValueError("simclr needs a projector and a temperature")
        self.family, self.projector, self.predictor, self.temperature = family, projector, predictor, temperature

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z1, z2 = v1.float(), v2.float()
        if self.projector is not None:
            z1, z2 = self.projector(z1), self.projector(z2)
        if self.family == "simclr":
            with torch.autocast(device_type=z1.device.type, enabled=False):  # loss arithmetic in fp32 (objectives.py)
                return nt_xent(z1, z2, self.temperature, labels if self.mask_same_identity else None)
        return simsiam_loss(self.predictor(z1), self.predictor(z2), z1, z2)


def language_views_loss(
    prompt_learner: PromptLearner, text_encoder: TextEncoder, head: SSLHead, labels: torch.Tensor
) -> torch.Tensor | None:
    """The SSL loss of two masked copies of the prompts of the batch's distinct identities (None with one identity)."""
    ids = torch.unique(labels)  # distinct identities: duplicates would be false negatives
    if ids.numel() < 2:  # a single-identity chunk has no negatives (and a BN of batch 1 fails)
        return None
    prompts = prompt_learner.full_prompts(ids)
    t1 = text_encoder(mask_prompts(prompts, head.mask_prob), prompt_learner.eot_index)
    t2 = text_encoder(mask_prompts(prompts, head.mask_prob), prompt_learner.eot_index)
    return head(t1, t2)
