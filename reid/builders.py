"""Config -> objects. The only module that reads the config tree; everything it builds takes plain values."""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from reid.data import ReIDDataset, load_dataset
from reid.models.clip_loader import load_clip
from reid.models.reid_model import ReIDModel
from reid.models.vit_encoder import ClipViTEncoder, SideInformationEmbedding


def to_plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={spec!r} but CUDA is not available on this machine (use device=cpu or auto)")
    return device


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed every RNG; in deterministic mode also ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs a fixed workspace for deterministic matmuls on CUDA (else torch raises at the first one).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


# What fixes the shapes and the computation of the weights init_from copies (pretrained / pretrain only say where
# weights would come from, which init_from replaces).
ARCHITECTURE_KEYS = ("arch", "config", "stride", "mid_depth", "last_stride", "sie", "neck_feat", "pixel_mean", "pixel_std")


def _dotted(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_dotted(value, f"{prefix}.{key}"))
        return out
    return {prefix: node}


def _override(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_override(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_init_backbone(cfg: DictConfig) -> None:
    """``init_from=<run folder>``: this config must build the source run's architecture (and input size), or its
    weights would not fit, or would load and compute something else. The error lists the overrides that make it so."""
    from pathlib import Path

    from reid.config_schema import ConfigError

    source = cfg.get("init_from")
    if not source:
        return
    folder = Path(str(source)).expanduser()
    if folder.is_file():
        folder = folder.parent.parent if folder.parent.name == "checkpoints" else folder.parent
    if not (folder / ".hydra" / "config.yaml").is_file():
        return  # a bare checkpoint file: the weights' shapes are checked when they load
    from reid.inference import load_run_config

    needed = architecture_overrides(load_run_config(folder, cfg.paths.root_dir), cfg)
    if needed:
        keys = [o.split("=", 1)[0] for o in needed]
        raise ConfigError(
            f"init_from={folder} was trained with another architecture than this config builds "
            f"({', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}); add: {' '.join(needed)}"
        )


def architecture_overrides(source: DictConfig, cfg: DictConfig) -> list[str]:
    """The command-line overrides that make ``cfg`` build ``source``'s architecture and input size (none: it does)."""
    want: dict[str, Any] = {}
    have: dict[str, Any] = {}
    for key in ARCHITECTURE_KEYS:  # only these are resolved (pretrained may name Hydra's runtime paths)
        want.update(_dotted(to_plain(source.backbone.get(key)), f"backbone.{key}"))
        have.update(_dotted(to_plain(cfg.backbone.get(key)), f"backbone.{key}"))
    want["dataset.size"], have["dataset.size"] = list(source.dataset.size), list(cfg.dataset.size)
    return [f"{k}={_override(want[k])}" for k in want if want[k] != have.get(k)]


def build_dataset(cfg: DictConfig) -> ReIDDataset:
    return load_dataset(cfg.dataset.name, cfg.dataset.root, **(to_plain(cfg.dataset.options) or {}))


def limit_test_set(ds: ReIDDataset, max_images: int) -> ReIDDataset:
    """Debug runs: the first ``max_images`` queries and the gallery images of their identities plus as many others."""
    if not max_images:
        return ds
    query = ds.query[:max_images]
    pids = {r.pid for r in query}
    matches = [r for r in ds.gallery if r.pid in pids]
    others = [r for r in ds.gallery if r.pid not in pids][:max_images]
    return ReIDDataset(ds.name, ds.train, query, matches + others, dict(ds.meta))


def build_model(
    cfg: DictConfig, num_classes: int, num_cams: int, num_views: int, architecture_only: bool = False
) -> tuple[ReIDModel, torch.nn.Module]:
    """The ReID image model plus the full CLIP model it came from (the text side is used by CLIP-ReID).

    ``architecture_only``: build from ``backbone.config`` without reading (or making) pretrained weights, for a run
    whose every weight comes from elsewhere (``init_from``, ``reid.inference``).
    """
    b = cfg.backbone
    if architecture_only and b.get("config") is None:
        raise ValueError(f"backbone {b.name} has no backbone.config: its architecture is only known from its weights")
    if b.arch == "rn50":
        return build_rn50_model(cfg, num_classes, architecture_only)
    if b.arch != "vit":
        raise ValueError(f"backbone.arch={b.arch!r}: expected 'vit' or 'rn50'")
    if architecture_only:
        clip = load_clip(None, to_plain(b.config), attn_implementation=b.attn_implementation)
    elif b.get("pretrain") is not None:  # an embedded backbone we can make ourselves (the tiny synthetic CLIP)
        from reid.pretrain import ensure_pretrained

        weights = ensure_pretrained(
            b, resolve_device(cfg.device), progress=bool(cfg.progress), max_steps=int(cfg.limits.pretrain_steps or 0)
        )
        clip = load_clip(str(weights), attn_implementation=b.attn_implementation)
    else:
        clip = load_clip(b.pretrained, to_plain(b.config), attn_implementation=b.attn_implementation)
    sie = None
    if b.sie.camera or b.sie.view:
        sie = SideInformationEmbedding(
            clip.config.vision_config.hidden_size, num_cams, num_views, b.sie.camera, b.sie.view, b.sie.coefficient
        )
    encoder = ClipViTEncoder(
        clip.vision_model, clip.visual_projection, tuple(cfg.dataset.size), b.stride, b.mid_depth, sie
    )
    return ReIDModel(encoder, num_classes, b.classifier_std, b.neck_feat), clip


def build_rn50_model(cfg: DictConfig, num_classes: int, architecture_only: bool = False) -> tuple[ReIDModel, torch.nn.Module]:
    """CLIP-ReID's RN50 (docs/method.md §2.3): open_clip's ModifiedResNet + HF text tower, from OpenAI's RN50.pt."""
    from reid.models.rn50 import rn50_backbone

    b = cfg.backbone
    if b.sie.camera or b.sie.view:
        raise ValueError(
            "backbone=rn50 has no side-information embedding (CLIP-ReID's RN50 ignores SIE): "
            "set backbone.sie.camera=false backbone.sie.view=false"
        )
    encoder, clip = rn50_backbone(
        None if architecture_only else b.pretrained, to_plain(b.config), tuple(cfg.dataset.size), int(b.last_stride),
        b.attn_implementation,
    )
    return ReIDModel(encoder, num_classes, b.classifier_std, b.neck_feat), clip


def build_text_side(cfg: DictConfig, clip: torch.nn.Module, num_classes: int):
    """CLIP-ReID's prompt learner and text encoder on top of the loaded CLIP's text tower."""
    from reid.models.prompt_learner import PromptLearner
    from reid.models.text_encoder import TextEncoder
    from reid.models.tokenizer import clip_tokenizer, tokenize

    p = cfg.method.prompt
    tokenizer = clip_tokenizer(cfg.backbone.pretrained)
    ctx_word = "X"  # the learnable-context slot word of the template
    text = p.template.format(ctx=" ".join([ctx_word] * p.n_ctx), noun=cfg.dataset.kind)
    ids = tokenize(tokenizer, [text])[0]
    ctx_token_id = int(tokenize(tokenizer, [ctx_word])[0][1])
    learner = PromptLearner(
        num_classes, ids, ctx_token_id, int(p.n_ctx), clip.text_model.embeddings.token_embedding, float(p.init_std),
        truncate_after_eot=bool(p.truncate_after_eot),
    )
    return learner, TextEncoder(clip.text_model, clip.text_projection)
