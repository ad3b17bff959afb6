"""Circle loss (Sun et al., CVPR 2020), pair-based form, on the batch's L2-normalised features.

A worked example of adding a loss (docs/extending.md): this module and ``circle_weight`` in conf/loss/baseline.yaml
are all it took. With s_p / s_n the cosine similarities of an anchor to its positives / negatives,
L = softplus( logsumexp_n γ·α_n·(s_n − Δ_n) + logsumexp_p −γ·α_p·(s_p − Δ_p) ), α_p = [1 + m − s_p]₊,
α_n = [s_n + m]₊ (no gradient through the α), Δ_p = 1 − m, Δ_n = m; averaged over anchors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from reid.losses.terms import TermFn, TermSpec, register_term
from reid.losses.triplet import TAPS


def circle_loss(feats: torch.Tensor, labels: torch.Tensor, scale: float = 64.0, margin: float = 0.25) -> torch.Tensor:
    x = F.normalize(feats.float(), dim=1)
    sim = x @ x.t()
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    negative = ~same
    if not bool(positive.any()) or not bool(negative.any()):
        raise ValueError("circle loss needs at least two images of one identity and two identities in the batch")
    alpha_p = (1 + margin - sim.detach()).clamp_min(0)
    alpha_n = (sim.detach() + margin).clamp_min(0)
    logit_p = (-scale * alpha_p * (sim - (1 - margin))).masked_fill(~positive, float("-inf"))
    logit_n = (scale * alpha_n * (sim - margin)).masked_fill(~negative, float("-inf"))
    per_anchor = torch.logsumexp(logit_p, dim=1) + torch.logsumexp(logit_n, dim=1)
    has_both = positive.any(dim=1) & negative.any(dim=1)  # an anchor without a positive contributes nothing
    return F.softplus(per_anchor[has_both]).mean()


def _circle_term(scale: float = 64.0, margin: float = 0.25, on: str = "last") -> TermFn:
    tap = TAPS[on]
    return lambda o: circle_loss(o["train"].triplet_feats[tap], o["labels"], scale, margin)


register_term(TermSpec(
    "image", "circle", "loss.circle_weight", _circle_term,
    {"scale": "loss.circle_scale", "margin": "loss.circle_margin", "on": "loss.circle_on"},  # optional keys
    order=50, summary="circle loss on the batch's normalised f_last (Sun et al. 2020; docs/extending.md)",
))
