"""Calling HF CLIP encoder layers one by one, across transformers 4.x and 5.x.

CLIP-ReID needs features from inside the encoders (the 11th ViT block, the text
EOT state of learned prompt embeddings), so we iterate over ``encoder.layers``
ourselves. The layer signature changed between transformers 4.x
(``hidden, attention_mask, causal_attention_mask`` -> tuple) and 5.x
(``hidden, attention_mask`` -> tensor); this module hides the difference.
"""
from __future__ import annotations

import inspect
from functools import cache

import torch
from torch import nn


@cache
def _takes_causal_mask(layer_cls: type) -> bool:
    return "causal_attention_mask" in inspect.signature(layer_cls.forward).parameters


def run_layer(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Apply one CLIP encoder layer with an additive attention mask (or None)."""
    if _takes_causal_mask(type(layer)):
        out = layer(hidden, None, mask)
    else:
        out = layer(hidden, mask)
    return out[0] if isinstance(out, tuple) else out


def causal_mask(length: int, batch: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Additive (batch, 1, L, L) mask: 0 on and below the diagonal, dtype-min above (CLIP's text mask)."""
    mask = torch.full((length, length), torch.finfo(dtype).min, dtype=dtype, device=device).triu_(1)
    return mask[None, None].expand(batch, 1, length, length)
