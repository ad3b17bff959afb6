"""Load a HF ``CLIPModel``: from a local directory, the HF cache, OpenAI's ``.pt`` file, or a config (random init).

One code path for the tiny embedded model and OpenAI's ViT-B/16, so what is
tested on the tiny model is what runs on the real weights.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import CLIPModel

from reid.models.clip_config import clip_config

ATTN_IMPLEMENTATIONS = ("sdpa", "eager")  # backbone.attn_implementation: HF attention kernels used here


class ModelWeightsError(FileNotFoundError):
    """Pretrained weights that are not on this machine."""


def _hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def load_clip(
    pretrained: str | None,
    config: Mapping[str, Any] | None = None,
    attn_implementation: str = "sdpa",
    cache_dir: str | None = None,
) -> CLIPModel:
    """Load weights from ``pretrained`` (a directory, a hub id already in the cache, or an OpenAI ``.pt`` file),
    else build from ``config``.

    Never downloads: this project runs offline, so a missing checkpoint is an
    error that says where we looked and how to put the files there.
    """
    if pretrained:
        where = Path(pretrained).expanduser()
        # a path, unless it reads as a hub id ("openai/clip-vit-base-patch16": one slash, no folder of that name here)
        hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", pretrained) is not None and not where.exists()
        is_path = where.exists() or os.sep in pretrained or pretrained.startswith(".")
        looked = [str(where)] if is_path and not hub_id else []
        if where.is_file():  # OpenAI's own file (ViT-B-16.pt): converted to HF's layout in memory
            from reid.weights.openai_files import clip_model_from_openai, read_openai_file

            return clip_model_from_openai(read_openai_file(where), attn_implementation, source=str(where))
        try:
            if where.is_dir():
                return CLIPModel.from_pretrained(
                    str(where), local_files_only=True, attn_implementation=attn_implementation
                )
            if looked:
                raise OSError(f"{where} does not exist")
            return CLIPModel.from_pretrained(
                pretrained, local_files_only=True, cache_dir=cache_dir, attn_implementation=attn_implementation
            )
        except OSError as err:
            cache = cache_dir or _hf_cache_dir()
            raise ModelWeightsError(
                f"CLIP weights '{pretrained}' not found (offline). Looked in: "
                f"{looked[0] if looked else f'./{pretrained} (no such folder) and the Hugging Face cache {cache}'}.\n"
                "Provide them by downloading on a connected machine, e.g.\n"
                f"  huggingface-cli download {pretrained if not looked else 'openai/clip-vit-base-patch16'} "
                "--local-dir /path/to/clip\n"
                "then copy the folder here and set backbone.pretrained=/path/to/clip "
                "(or copy the hub cache into HF_HOME). For the embedded tiny model run `python -m reid.pretrain`.\n"
                f"(underlying error: {err})"
            ) from err
    if config is None:
        raise ValueError("load_clip needs either `pretrained` or `config`")
    cfg = clip_config(config)
    return CLIPModel._from_config(cfg, attn_implementation=attn_implementation)
