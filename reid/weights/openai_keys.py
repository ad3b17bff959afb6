"""OpenAI CLIP's transformer key names <-> Hugging Face CLIP's, both ways, exactly.

OpenAI's code (and CLIP-ReID's, SVLL-ReID's, open_clip's, which keep its names) stores one fused attention input
projection per block, ``attn.in_proj_weight`` of 3·D×D with the q, k and v rows in that order; HF splits it into
``self_attn.{q,k,v}_proj``. OpenAI multiplies by its projections as ``x @ P`` where HF uses a ``Linear`` holding Pᵀ.
Everything else is a rename. A :class:`KeyMap` says where one model's names land in another's, so the same
block logic serves HF's ``CLIPModel``, our ``ClipViTEncoder`` and our ``TextEncoder``; ``to_openai`` inverts
``from_openai`` bit for bit (a split and a re-concatenation move no value).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

# Per block: OpenAI name -> HF name (the fused in_proj is handled apart).
BLOCK_RENAMES = {
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}
_FUSED = {"attn.in_proj_weight": "weight", "attn.in_proj_bias": "bias"}
_QKV = ("q_proj", "k_proj", "v_proj")
_BLOCK_RENAMES_BACK = {v: k for k, v in BLOCK_RENAMES.items()}


class KeyMapError(KeyError):
    """A key the map does not know: the weights are not in the layout the caller expected."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class KeyMap:
    """Where OpenAI-named tensors land in another model: top-level renames and one block prefix.

    ``top`` maps an OpenAI name to ``(target name, transposed)``; ``blocks`` is ``(OpenAI block prefix, target block
    prefix)``, e.g. ``("transformer.resblocks.", "vision_model.encoder.layers.")``. Names are relative: callers strip
    and add their own prefixes (``visual.``, ``image_encoder.``, ``image.encoder.``).
    """

    top: Mapping[str, tuple[str, bool]]
    blocks: tuple[str, str]

    def from_openai(self, sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """OpenAI names -> target names; a key that is neither a known top-level name nor a block key is an error."""
        src, dst = self.blocks
        out: dict[str, torch.Tensor] = {}
        unknown = []
        for key, value in sd.items():
            if key in self.top:
                name, transposed = self.top[key]
                out[name] = value.t().contiguous() if transposed else value
                continue
            if not key.startswith(src):
                unknown.append(key)
                continue
            index, rest = key[len(src):].split(".", 1)
            layer = f"{dst}{index}."
            if rest in _FUSED:
                for proj, part in zip(_QKV, value.chunk(3, dim=0)):
                    out[f"{layer}self_attn.{proj}.{_FUSED[rest]}"] = part.contiguous()
            elif rest in BLOCK_RENAMES:
                out[layer + BLOCK_RENAMES[rest]] = value
            else:
                unknown.append(key)
        if unknown:
            raise KeyMapError(f"unexpected key(s) in an OpenAI-layout transformer: {sorted(unknown)[:8]}")
        return out

    def to_openai(self, sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Target names -> OpenAI names (the exact inverse of :meth:`from_openai`)."""
        src, dst = self.blocks
        back = {name: (key, transposed) for key, (name, transposed) in self.top.items()}
        out: dict[str, torch.Tensor] = {}
        fused: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
        unknown = []
        for key, value in sd.items():
            if key in back:
                name, transposed = back[key]
                out[name] = value.t().contiguous() if transposed else value
                continue
            if not key.startswith(dst):
                unknown.append(key)
                continue
            index, rest = key[len(dst):].split(".", 1)
            layer = f"{src}{index}."
            if rest in _BLOCK_RENAMES_BACK:
                out[layer + _BLOCK_RENAMES_BACK[rest]] = value
            elif rest.startswith("self_attn.") and rest.split(".")[1] in _QKV:
                _, proj, kind = rest.split(".")
                fused.setdefault((layer, kind), {})[proj] = value
            else:
                unknown.append(key)
        for (layer, kind), parts in fused.items():
            if set(parts) != set(_QKV):
                raise KeyMapError(f"{layer}: q/k/v projection {kind}s incomplete ({sorted(parts)})")
            out[f"{layer}attn.in_proj_{kind}"] = torch.cat([parts[p] for p in _QKV], dim=0)
        if unknown:
            raise KeyMapError(f"unexpected key(s) for an OpenAI-layout transformer: {sorted(unknown)[:8]}")
        return out


def _norm(openai: str, target: str) -> dict[str, tuple[str, bool]]:
    return {f"{openai}.weight": (f"{target}.weight", False), f"{openai}.bias": (f"{target}.bias", False)}


# OpenAI ``visual.*`` (ViT) -> HF ``CLIPModel``.
HF_VISION = KeyMap(
    top={
        "class_embedding": ("vision_model.embeddings.class_embedding", False),
        "positional_embedding": ("vision_model.embeddings.position_embedding.weight", False),
        "conv1.weight": ("vision_model.embeddings.patch_embedding.weight", False),
        **_norm("ln_pre", "vision_model.pre_layrnorm"),
        **_norm("ln_post", "vision_model.post_layernorm"),
        "proj": ("visual_projection.weight", True),
    },
    blocks=("transformer.resblocks.", "vision_model.encoder.layers."),
)

# OpenAI text tower (top level of the CLIP state dict) -> HF ``CLIPModel`` / ``CLIPTextModelWithProjection``.
HF_TEXT = KeyMap(
    top={
        "token_embedding.weight": ("text_model.embeddings.token_embedding.weight", False),
        "positional_embedding": ("text_model.embeddings.position_embedding.weight", False),
        **_norm("ln_final", "text_model.final_layer_norm"),
        "text_projection": ("text_projection.weight", True),
    },
    blocks=("transformer.resblocks.", "text_model.encoder.layers."),
)

# OpenAI ``visual.*`` (ViT; CLIP-ReID's ``image_encoder.*``) -> reid.models.vit_encoder.ClipViTEncoder.
REID_VIT_ENCODER = KeyMap(
    top={
        "class_embedding": ("class_embedding", False),
        "positional_embedding": ("pos_embed", False),
        "conv1.weight": ("patch_embedding.weight", False),
        **_norm("ln_pre", "pre_layrnorm"),
        **_norm("ln_post", "post_layernorm"),
        "proj": ("visual_projection.weight", True),
    },
    blocks=("transformer.resblocks.", "layers."),
)

# CLIP-ReID's ``text_encoder.*`` (the CLIP text tower without its token embedding) -> reid.models.text_encoder.
REID_TEXT_ENCODER = KeyMap(
    top={
        "positional_embedding": ("position_embedding.weight", False),
        **_norm("ln_final", "final_layer_norm"),
        "text_projection": ("text_projection.weight", True),
    },
    blocks=("transformer.resblocks.", "layers."),
)


def with_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in sd.items()}


def under(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries whose key starts with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
