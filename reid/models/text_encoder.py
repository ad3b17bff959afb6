"""CLIP text encoder over token *embeddings* (learned prompts), pooled at the EOT position (docs/method.md §2.5, §12.4).

HF's ``CLIPTextTransformer.forward`` only takes token ids, so we run its layers
ourselves: + position embedding, causal blocks, final LayerNorm, EOT gather,
``text_projection``. Equal to HF's ``get_text_features`` when fed the embeddings of real ids.
"""
from __future__ import annotations

import torch
from torch import nn

from reid.models.hf_layers import causal_mask, run_layer


class TextEncoder(nn.Module):
    def __init__(self, text_model: nn.Module, text_projection: nn.Linear):
        super().__init__()
        self.position_embedding = text_model.embeddings.position_embedding
        self.layers = text_model.encoder.layers
        self.final_layer_norm = text_model.final_layer_norm
        self.text_projection = text_projection

    @property
    def width(self) -> int:
        return self.position_embedding.embedding_dim

    def forward(self, prompts: torch.Tensor, eot_index: torch.Tensor | int) -> torch.Tensor:
        """prompts: (B, L, D) token embeddings; eot_index: position of EOT per row (or one int for all)."""
        batch, length, _ = prompts.shape
        positions = torch.arange(length, device=prompts.device)
        x = prompts + self.position_embedding(positions)[None]
        mask = causal_mask(length, batch, x.dtype, x.device)
        for layer in self.layers:
            x = run_layer(layer, x, mask)
        x = self.final_layer_norm(x)
        if isinstance(eot_index, int):
            pooled = x[:, eot_index]
        else:
            pooled = x[torch.arange(batch, device=x.device), eot_index]
        return self.text_projection(pooled)
