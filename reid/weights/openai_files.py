"""OpenAI's CLIP files (``ViT-B-16.pt``, ``RN50.pt``): read them, and turn a ViT one into a Hugging Face folder.

OpenAI ships TorchScript archives with fp16 weights; some users hold a plain ``torch.save``'d state dict in the same
layout instead. Both read into one fp32 state dict. HF ``transformers`` has a CLIP ViT but no CLIP ResNet, so a
ViT file can become a ``save_pretrained`` folder (config, weights, tokenizer files) that ``CLIPModel.from_pretrained``
and ``backbone.pretrained=`` accept, while RN50 stays on its ``.pt`` path (reid.models.rn50).
"""
from __future__ import annotations

import math
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from reid.weights.openai_keys import HF_TEXT, HF_VISION, KeyMapError, under

# Not weights: ints stored in OpenAI's TorchScript archive and the causal-mask buffer a scripted module carries.
NON_WEIGHT_KEYS = frozenset({"input_resolution", "context_length", "vocab_size", "attn_mask"})


class OpenAIFileError(ValueError):
    """A file that is not an OpenAI CLIP checkpoint of the expected kind."""


def is_torchscript_archive(path: Path) -> bool:
    return zipfile.is_zipfile(path) and any(n.endswith("constants.pkl") for n in zipfile.ZipFile(path).namelist())


def read_openai_file(path: str | Path) -> dict[str, torch.Tensor]:
    """An OpenAI-layout CLIP state dict from a TorchScript archive or a plain state dict file, floats as fp32.

    The caller checks that the file exists (it knows which setting named it). Non-weight entries are dropped.
    """
    where = Path(path).expanduser()
    try:
        if is_torchscript_archive(where):
            with warnings.catch_warnings():  # deprecated in torch 2.x, but OpenAI's files are TorchScript archives
                warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=DeprecationWarning)
                sd: Any = torch.jit.load(str(where), map_location="cpu").state_dict()
        else:
            sd = torch.load(str(where), map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise OpenAIFileError(f"{where}: not a readable checkpoint ({err})") from None
    if isinstance(sd, Mapping) and isinstance(sd.get("state_dict"), Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping):
        raise OpenAIFileError(f"{where}: holds a {type(sd).__name__}, not a state dict")
    return {
        k: (v.float() if v.is_floating_point() else v)
        for k, v in sd.items()
        if isinstance(v, torch.Tensor) and k not in NON_WEIGHT_KEYS
    }


def is_openai_vit(sd: Mapping[str, torch.Tensor]) -> bool:
    return "visual.proj" in sd and "visual.conv1.weight" in sd


def _layers(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    return len({k[len(prefix):].split(".", 1)[0] for k in sd if k.startswith(prefix)})


def vit_clip_spec(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The architecture of an OpenAI ViT CLIP state dict, read off its shapes, as a ``backbone.config`` mapping.

    Head counts follow OpenAI's ``build_model`` (width // 64); the pretraining resolution is patch × grid.
    """
    patch = int(sd["visual.conv1.weight"].shape[-1])
    width = int(sd["visual.conv1.weight"].shape[0])
    grid = math.isqrt(int(sd["visual.positional_embedding"].shape[0]) - 1)
    text_width = int(sd["ln_final.weight"].shape[0])
    projection = int(sd["text_projection"].shape[1])
    if int(sd["visual.proj"].shape[1]) != projection:
        raise OpenAIFileError(
            f"image projection {tuple(sd['visual.proj'].shape)} and text projection "
            f"{tuple(sd['text_projection'].shape)} differ in their output size; CLIPConfig needs one projection_dim"
        )
    return {
        "projection_dim": projection,
        "vision": {
            "hidden_size": width,
            "intermediate_size": int(sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            "num_hidden_layers": _layers(sd, "visual.transformer.resblocks."),
            "num_attention_heads": width // 64,
            "image_size": patch * grid,
            "patch_size": patch,
        },
        "text": {
            "hidden_size": text_width,
            "intermediate_size": int(sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
            "num_hidden_layers": _layers(sd, "transformer.resblocks."),
            "num_attention_heads": text_width // 64,
            "max_position_embeddings": int(sd["positional_embedding"].shape[0]),
            "vocab_size": int(sd["token_embedding.weight"].shape[0]),
        },
    }


def openai_vit_to_hf(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI ViT CLIP names -> HF ``CLIPModel`` names (``logit_scale`` keeps its name)."""
    visual = under(sd, "visual.")
    text = {k: v for k, v in sd.items() if not k.startswith("visual.") and k != "logit_scale"}
    out = {**HF_VISION.from_openai(visual), **HF_TEXT.from_openai(text)}
    if "logit_scale" in sd:
        out["logit_scale"] = sd["logit_scale"]
    return out


def clip_model_from_openai(sd: Mapping[str, torch.Tensor], attn_implementation: str = "sdpa", source: str = "weights"):
    """A HF ``CLIPModel`` holding an OpenAI ViT CLIP state dict, every weight checked in."""
    from transformers import CLIPModel

    from reid.models.clip_config import clip_config

    if not is_openai_vit(sd):
        raise OpenAIFileError(
            f"{source}: not an OpenAI CLIP ViT state dict (no visual.proj / visual.conv1.weight); "
            "RN50 files go to backbone=rn50"
        )
    spec = vit_clip_spec(sd)
    try:
        hf = openai_vit_to_hf(sd)
    except KeyMapError as err:
        raise OpenAIFileError(f"{source}: {err}") from None
    model = CLIPModel._from_config(clip_config(spec), attn_implementation=attn_implementation)
    result = model.load_state_dict(hf, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids") and k != "logit_scale"]
    if missing or result.unexpected_keys:
        raise OpenAIFileError(f"{source}: missing {missing[:8]}, unexpected {result.unexpected_keys[:8]}")
    return model.eval()


def save_hf_folder(sd: Mapping[str, torch.Tensor], out_dir: str | Path, source: str = "weights") -> Path:
    """Write an OpenAI ViT CLIP state dict as a HF ``save_pretrained`` folder: fp32 config and weights, tokenizer.


    The tokenizer files come from open_clip's copy of OpenAI's BPE merges and pad with id 0 as OpenAI's
    ``clip.tokenize`` does, so a prompt tokenises to the same 77 ids as in CLIP-ReID and open_clip.
    """
    from reid.models.tokenizer import clip_tokenizer

    out = Path(out_dir).expanduser()
    model = clip_model_from_openai(sd, attn_implementation="eager", source=source)
    model.config.dtype = "float32"
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    clip_tokenizer().save_pretrained(str(out))
    return out
