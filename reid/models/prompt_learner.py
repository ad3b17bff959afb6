"""Per-identity learnable prompt tokens: "A photo of a X X X X person." (docs/method.md §2.5).

The fixed prefix ("SOT a photo of a") and suffix ("person . EOT" + padding) are
embeddings of the real tokens, frozen buffers; only ``cls_ctx`` (N_ids × n_ctx × D,
init N(0, init_std²)) is learned, and the X tokens' own embeddings are not used.
The buffers hold all 77 positions, as CLIP-ReID's ``token_prefix`` / ``token_suffix``
do (so its checkpoints map onto them one to one); the prompts use the suffix up to EOT.
"""
from __future__ import annotations

import torch
from torch import nn

CTX_WORD = "X"


class PromptLearner(nn.Module):
    def __init__(
        self,
        num_classes: int,
        token_ids: torch.Tensor,
        ctx_token_id: int,
        n_ctx: int,
        token_embedding: nn.Embedding,
        init_std: float,
        truncate_after_eot: bool = True,
    ):
        """``token_ids``: (77,) ids of the template with ``n_ctx`` context tokens (id ``ctx_token_id``) in a row."""
        super().__init__()
        ids = token_ids.long()
        x_id = ctx_token_id
        if not bool((ids == x_id).any()):
            raise ValueError(f"context token {x_id} not found in the template ids")
        start = int((ids == x_id).nonzero()[0])
        if not torch.equal(ids[start : start + n_ctx], torch.full((n_ctx,), x_id)):
            raise ValueError(f"the template must contain {n_ctx} consecutive '{CTX_WORD}' context tokens")
        # EOT is the highest id (49407) of the template: CLIP pools there (index 11 for the 4-token template).
        self.eot_index = int(ids.argmax())
        # Under the causal mask no position attends to a later one, so tokens after EOT cannot change the
        # EOT state: dropping them is exact and makes the text pass 77/12 ≈ 6x cheaper.
        end = self.eot_index + 1 if truncate_after_eot else len(ids)
        self.suffix_used = end - start - n_ctx
        with torch.no_grad():
            emb = token_embedding(ids[None].to(token_embedding.weight.device)).float().cpu()
        self.register_buffer("prefix", emb[:, :start].clone())
        self.register_buffer("suffix", emb[:, start + n_ctx :].clone())
        self.cls_ctx = nn.Parameter(torch.empty(num_classes, n_ctx, emb.shape[-1]))
        nn.init.normal_(self.cls_ctx, std=init_std)
        self.n_ctx = n_ctx

    @property
    def num_classes(self) -> int:
        return self.cls_ctx.shape[0]

    def full_prompts(self, labels: torch.Tensor) -> torch.Tensor:
        """(B, L, D) prompt embeddings for identity labels (L = 77, or EOT index + 1 when truncated)."""
        ctx = self.cls_ctx[labels]
        b = ctx.shape[0]
        suffix = self.suffix[:, : self.suffix_used]
        return torch.cat([self.prefix.expand(b, -1, -1), ctx, suffix.expand(b, -1, -1)], dim=1)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.full_prompts(labels)

