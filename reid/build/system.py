"""Config -> the system of modules a method trains: the ReID image model, CLIP's text side, SVLL's SSL heads."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from reid.build.common import resolve_device, to_plain
from reid.engine.ssl_terms import SSLHead
from reid.models.clip_loader import load_clip
from reid.models.reid_model import ReIDModel
from reid.models.ssl_heads import ProjectionMLP, SimSiamPredictor
from reid.models.vit_encoder import ClipViTEncoder, SideInformationEmbedding


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
    if b.arch not in ARCHITECTURES:
        raise ValueError(f"backbone.arch={b.arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    encoder, clip = ARCHITECTURES[b.arch](cfg, num_cams, num_views, architecture_only)
    return ReIDModel(encoder, num_classes, b.classifier_std, b.neck_feat), clip


def _vit(cfg: DictConfig, num_cams: int, num_views: int, architecture_only: bool):
    """CLIP's ViT through HF transformers, re-assembled for ReID (docs/method.md §2.2): stride, SIE, two taps."""
    b = cfg.backbone
    if architecture_only:
        clip = load_clip(None, to_plain(b.config), attn_implementation=b.attn_implementation)
    elif b.get("pretrain") is not None:  # an embedded backbone we can make ourselves (the tiny synthetic CLIP)
        from reid.build.pretrain_recipe import recipe_from_config
        from reid.engine.caption_pretraining import ensure_pretrained

        weights = ensure_pretrained(
            recipe_from_config(b), b.pretrained, b.pretrain.world_root, resolve_device(cfg.device),
            progress=bool(cfg.progress), max_steps=int(cfg.limits.pretrain_steps or 0),
        )
        clip = load_clip(str(weights), attn_implementation=b.attn_implementation)
    else:
        clip = load_clip(b.pretrained, to_plain(b.config), attn_implementation=b.attn_implementation)
    sie = None
    if b.sie.camera or b.sie.view:
        sie = SideInformationEmbedding(
            clip.config.vision_config.hidden_size, num_cams, num_views, b.sie.camera, b.sie.view, b.sie.coefficient
        )
    return ClipViTEncoder(
        clip.vision_model, clip.visual_projection, tuple(cfg.dataset.size), b.stride, b.mid_depth, sie
    ), clip


def _rn50(cfg: DictConfig, num_cams: int, num_views: int, architecture_only: bool):
    """CLIP-ReID's RN50 (docs/method.md §2.3): open_clip's ModifiedResNet + HF text tower, from OpenAI's RN50.pt."""
    from reid.models.rn50 import rn50_backbone

    b = cfg.backbone
    if b.sie.camera or b.sie.view:
        raise ValueError(
            "backbone=rn50 has no side-information embedding (CLIP-ReID's RN50 ignores SIE): "
            "set backbone.sie.camera=false backbone.sie.view=false"
        )
    return rn50_backbone(
        None if architecture_only else b.pretrained,
        to_plain(b.config),
        tuple(cfg.dataset.size),
        int(b.last_stride),
        b.attn_implementation,
    )


# backbone.arch -> builder(cfg, num_cams, num_views, architecture_only) -> (encoder, CLIP model): the arch choices.
ARCHITECTURES = {"vit": _vit, "rn50": _rn50}


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
        num_classes,
        ids,
        ctx_token_id,
        int(p.n_ctx),
        clip.text_model.embeddings.token_embedding,
        float(p.init_std),
        truncate_after_eot=bool(p.truncate_after_eot),
    )
    return learner, TextEncoder(clip.text_model, clip.text_projection)


def _ssl_head(ssl: DictConfig, branch: DictConfig, in_dim: int, svll_init: bool, **extra) -> SSLHead:
    proj, out_dim = None, in_dim
    if branch.get("projector") is not None:
        out_dim = int(branch.projector.out)
        proj = ProjectionMLP(in_dim, int(branch.projector.hidden), out_dim, svll_init=svll_init)
    predictor = None
    if ssl.family == "simsiam":
        predictor = SimSiamPredictor(out_dim, int(ssl.predictor_hidden))
    temperature = float(ssl.temperature) if ssl.get("temperature") is not None else None
    return SSLHead(ssl.family, proj, temperature, predictor, **extra)


def build_ssl_heads(cfg: DictConfig, system: torch.nn.ModuleDict) -> dict[str, SSLHead]:
    """SVLL-ReID's heads for the SSL terms whose weight is not 0: ``ssl_text`` (needs the text side), ``ssl_image``."""
    ssl, heads = cfg.ssl, {}
    if ssl.name == "none":
        return heads
    if "text" in system and float(ssl.lang_weight) != 0:
        heads["ssl_text"] = _ssl_head(
            ssl,
            ssl.lang,
            system["text"].text_projection.out_features,
            svll_init=False,
            mask_prob=float(ssl.lang.mask_prob),
            trainable=bool(ssl.lang.train_projector),
        )
    if float(ssl.weight) != 0:
        heads["ssl_image"] = _ssl_head(
            ssl,
            ssl.vision,
            system["image"].encoder.width,
            svll_init=bool(ssl.vision.svll_init),
            mask_same_identity=bool(ssl.get("mask_same_identity", False)),
        )
    return heads


def build_system(
    cfg: DictConfig,
    num_classes: int,
    num_cams: int,
    num_views: int,
    *,
    uses_text: bool,
    ssl: bool = True,
    architecture_only: bool = False,
) -> torch.nn.ModuleDict:
    """The modules a method trains, in a fixed order (their random initialisation draws from one RNG stream):
    ``image`` (the ReID model), ``prompt`` and ``text`` (with ``uses_text``), then the SSL heads (with ``ssl``)."""
    model, clip = build_model(cfg, num_classes, num_cams, num_views, architecture_only=architecture_only)
    system = torch.nn.ModuleDict({"image": model})
    if uses_text:
        system["prompt"], system["text"] = build_text_side(cfg, clip, num_classes)
    if ssl:
        system.update(build_ssl_heads(cfg, system))
    return system
