"""CLIP-ReID's and SVLL-ReID's ``model.state_dict()``: what it holds, read off its shapes, and the exact conversion
to a reid system state dict and back.

Both codebases save the whole ``build_transformer`` module (``model/make_model_clipreid.py``,
``model/make_model_svllreid.py``; their baselines, ``model/make_model.py``, the image half of it):

=================================  ==================================  =============================================
CLIP-ReID key                      reid system key                     note
=================================  ==================================  =============================================
``image_encoder.*`` (ViT)          ``image.encoder.*``                 OpenAI ViT names; fused q/k/v split, proj ᵀ
``image_encoder.*`` (RN50)         ``image.encoder.visual.*``          open_clip's ModifiedResNet: same names
``cv_embed``                       ``image.encoder.sie.table``         SIE; an RN50 never uses it (kept aside)
``bottleneck.*``, ``classifier``   ``image.head.bn.*``, ``.classifier`` BNNeck on f_last
``bottleneck_proj.*`` etc.         ``image.head_proj.*``               BNNeck on f_proj
``prompt_learner.cls_ctx``         ``prompt.cls_ctx``                  (ids, 4, 512)
``prompt_learner.token_prefix``    ``prompt.prefix``                   "SOT a photo of a" embeddings
``prompt_learner.token_suffix``    ``prompt.suffix``                   68 rows: "person . EOT" + padding
``text_encoder.*``                 ``text.*``                          CLIP text tower, no token embedding
``image_mlp.*``, ``text_mlp.*``    ``ssl_image.*``, ``ssl_text.*``     SVLL's SimCLR projectors / SimSiam predictor
=================================  ==================================  =============================================

A DDP-saved file carries every key under ``module.``; that prefix is dropped. Everything a state dict does not say
(input size, SIE coefficient, which of camera / view an SIE table indexes, the BNNeck side of the descriptor) is
for the caller to give: see reid.weights.run_folder and docs/weights.md.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from reid.weights.openai_keys import REID_TEXT_ENCODER, REID_VIT_ENCODER, KeyMapError, under, with_prefix

IMAGE, PROMPT, TEXT = "image_encoder.", "prompt_learner.", "text_encoder."
DDP_PREFIX = "module."
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# (CLIP-ReID head, reid head) pairs: BNNeck + classifier on f_last and on f_proj.
HEADS = (("bottleneck", "classifier", "image.head"), ("bottleneck_proj", "classifier_proj", "image.head_proj"))
# SVLL's SimCLR MLP (nn.Sequential with named layers) <-> reid.models.ssl_heads.ProjectionMLP's positions.
PROJECTOR_LAYERS = {"layer1": "0", "bn1": "1", "layer2": "3", "bn2": "4", "layer3": "6"}
# SVLL's SimSiam prediction_MLP <-> reid.models.ssl_heads.SimSiamPredictor.
PREDICTOR_LAYERS = {"linear1": "0", "bn1": "1", "layer2": "3"}
_MAX_LISTED = 12


class LayoutError(ValueError):
    """A state dict that is not a CLIP-ReID / SVLL-ReID checkpoint of a layout this project knows."""


@dataclass(frozen=True)
class ClipReIDLayout:
    """The architecture a CLIP-ReID / SVLL-ReID state dict describes (everything its shapes can tell)."""

    arch: str                     # "vit" | "rn50"
    num_ids: int                  # classifier rows: the training identities
    width: int                    # f_last size (768 ViT-B/16, 2048 RN50)
    proj_dim: int                 # f_proj size (512, 1024)
    pos_rows: int                 # ViT position table / RN50 attention-pool table rows (grid + 1)
    sie_rows: int                 # rows of cv_embed; 0 = no SIE table
    text: bool                    # prompt learner + text encoder present (CLIP-ReID) or image only (its baselines)
    ssl: str                      # "none" | "simclr" | "simsiam": SVLL-ReID's SSL heads present
    layers: tuple[int, ...]       # ViT: (blocks,); RN50: blocks per stage
    patch: int = 0                # ViT patch size
    mlp_width: int = 0            # ViT block MLP width
    rn50_width: int = 0           # RN50 stem width (layer1 planes)
    text_width: int = 0
    text_layers: int = 0
    text_mlp_width: int = 0
    context_length: int = 0
    n_ctx: int = 0
    prefix_len: int = 0
    ssl_hidden: int = 0           # SimCLR projector hidden / SimSiam predictor hidden
    ssl_out: int = 0              # SimCLR projector output

    def describe(self) -> str:
        """One line per fact, as the importer prints them."""
        backbone = f"ViT ({self.layers[0]} blocks, width {self.width}, patch {self.patch})" if self.arch == "vit" else (
            f"RN50 (stages {'-'.join(map(str, self.layers))}, width {self.rn50_width})"
        )
        lines = [
            f"backbone: {backbone}",
            f"position grid: {self.pos_rows - 1} cells + class token",
            f"identities: {self.num_ids}",
            f"SIE table: {self.sie_rows} rows" if self.sie_rows else "SIE table: none",
            "text side: prompt learner + text encoder (CLIP-ReID)" if self.text else "text side: none (baseline)",
        ]
        if self.ssl != "none":
            lines.append(f"SVLL-ReID SSL heads: {self.ssl}")
        return "\n".join(lines)


def strip_ddp_prefix(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DDP's ``module.`` prefix (CLIP-ReID's DIST_TRAIN saves the wrapped model's keys)."""
    if sd and all(k.startswith(DDP_PREFIX) for k in sd):
        return {k[len(DDP_PREFIX):]: v for k, v in sd.items()}
    return dict(sd)


def unwrap_checkpoint(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """The state dict inside what ``torch.load`` returned (a bare state dict, or one under state_dict / model)."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise LayoutError(f"{source}: not a state dict (a mapping of names to tensors)")
    return strip_ddp_prefix(obj)


def _count(sd: Mapping[str, torch.Tensor], prefix: str) -> int:
    return len({k[len(prefix):].split(".", 1)[0] for k in sd if k.startswith(prefix)})


def _shape(sd: Mapping[str, torch.Tensor], key: str, source: str, dim: int = 0) -> int:
    if key not in sd:
        raise LayoutError(f"{source}: no {key!r}; {_what_it_holds(sd)}")
    return int(sd[key].shape[dim])


def _what_it_holds(sd: Mapping[str, torch.Tensor]) -> str:
    groups = sorted({k.split(".", 1)[0] for k in sd})
    shown = ", ".join(groups[:_MAX_LISTED]) + (" ..." if len(groups) > _MAX_LISTED else "")
    return (
        f"it holds {len(sd)} tensors in the groups [{shown}]; a CLIP-ReID / SVLL-ReID checkpoint holds "
        "image_encoder.*, bottleneck*, classifier* (and prompt_learner.*, text_encoder.*, image_mlp.*, text_mlp.*)"
    )


def read_layout(sd: Mapping[str, torch.Tensor], source: str = "checkpoint") -> ClipReIDLayout:
    """Infer the architecture from the keys and shapes; :func:`check_layout` then verifies every tensor."""
    if f"{IMAGE}proj" in sd and f"{IMAGE}conv1.weight" in sd:
        arch = "vit"
    elif f"{IMAGE}attnpool.positional_embedding" in sd:
        arch = "rn50"
    else:
        raise LayoutError(
            f"{source}: no CLIP image encoder (image_encoder.proj or image_encoder.attnpool.*); {_what_it_holds(sd)}"
        )
    num_ids = _shape(sd, "classifier.weight", source)
    sie_rows = int(sd["cv_embed"].shape[0]) if "cv_embed" in sd else 0
    text = f"{PROMPT}cls_ctx" in sd or any(k.startswith(TEXT) for k in sd)
    fields: dict[str, Any] = {}
    if arch == "vit":
        fields.update(
            layers=(_count(sd, f"{IMAGE}transformer.resblocks."),),
            patch=_shape(sd, f"{IMAGE}conv1.weight", source, -1),
            width=_shape(sd, f"{IMAGE}conv1.weight", source),
            proj_dim=_shape(sd, f"{IMAGE}proj", source, 1),
            pos_rows=_shape(sd, f"{IMAGE}positional_embedding", source),
            mlp_width=_shape(sd, f"{IMAGE}transformer.resblocks.0.mlp.c_fc.weight", source),
        )
    else:
        stages = tuple(_count(sd, f"{IMAGE}layer{s}.") for s in (1, 2, 3, 4))
        stem = _shape(sd, f"{IMAGE}layer1.0.conv1.weight", source)
        fields.update(
            layers=stages, rn50_width=stem, width=stem * 32,
            proj_dim=_shape(sd, f"{IMAGE}attnpool.c_proj.weight", source),
            pos_rows=_shape(sd, f"{IMAGE}attnpool.positional_embedding", source),
        )
    if text:
        fields.update(
            text_width=_shape(sd, f"{TEXT}ln_final.weight", source),
            text_layers=_count(sd, f"{TEXT}transformer.resblocks."),
            text_mlp_width=_shape(sd, f"{TEXT}transformer.resblocks.0.mlp.c_fc.weight", source),
            context_length=_shape(sd, f"{TEXT}positional_embedding", source),
            n_ctx=_shape(sd, f"{PROMPT}cls_ctx", source, 1),
            prefix_len=_shape(sd, f"{PROMPT}token_prefix", source, 1),
        )
    ssl = "none"
    if "image_mlp.layer1.weight" in sd:
        ssl = "simclr"
        fields.update(
            ssl_hidden=_shape(sd, "image_mlp.layer1.weight", source),
            ssl_out=_shape(sd, "image_mlp.layer3.weight", source),
        )
    elif "image_mlp.linear1.weight" in sd:
        ssl = "simsiam"
        fields.update(ssl_hidden=_shape(sd, "image_mlp.linear1.weight", source))
    return ClipReIDLayout(arch=arch, num_ids=num_ids, sie_rows=sie_rows, text=text, ssl=ssl, **fields)


def _bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{k}": (() if k == "num_batches_tracked" else (n,)) for k in _BN}


def _block(prefix: str, width: int, mlp: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}attn.in_proj_weight": (3 * width, width), f"{prefix}attn.in_proj_bias": (3 * width,),
        f"{prefix}attn.out_proj.weight": (width, width), f"{prefix}attn.out_proj.bias": (width,),
        f"{prefix}ln_1.weight": (width,), f"{prefix}ln_1.bias": (width,),
        f"{prefix}mlp.c_fc.weight": (mlp, width), f"{prefix}mlp.c_fc.bias": (mlp,),
        f"{prefix}mlp.c_proj.weight": (width, mlp), f"{prefix}mlp.c_proj.bias": (width,),
        f"{prefix}ln_2.weight": (width,), f"{prefix}ln_2.bias": (width,),
    }


def _rn50_image_shapes(layout: ClipReIDLayout) -> dict[str, tuple[int, ...]]:
    """open_clip's ModifiedResNet (OpenAI's names, CLIP-ReID's too) built on the meta device: its keys and shapes."""
    from reid.models.rn50 import open_clip_module

    ModifiedResNet = open_clip_module("modified_resnet").ModifiedResNet
    with torch.device("meta"):
        net = ModifiedResNet(
            layers=list(layout.layers), output_dim=layout.proj_dim, heads=layout.width // 64, image_size=224,
            width=layout.rn50_width,
        )
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    shapes["attnpool.positional_embedding"] = (layout.pos_rows, layout.width)  # resized to the ReID grid
    return shapes


def expected_shapes(layout: ClipReIDLayout) -> dict[str, tuple[int, ...]]:
    """Every key (and its shape) that CLIP-ReID's / SVLL-ReID's model of this layout puts in its state dict."""
    w, p, n = layout.width, layout.proj_dim, layout.num_ids
    out: dict[str, tuple[int, ...]] = {}
    if layout.arch == "vit":
        out.update({
            f"{IMAGE}class_embedding": (w,), f"{IMAGE}positional_embedding": (layout.pos_rows, w),
            f"{IMAGE}proj": (w, p), f"{IMAGE}conv1.weight": (w, 3, layout.patch, layout.patch),
            f"{IMAGE}ln_pre.weight": (w,), f"{IMAGE}ln_pre.bias": (w,),
            f"{IMAGE}ln_post.weight": (w,), f"{IMAGE}ln_post.bias": (w,),
        })
        for i in range(layout.layers[0]):
            out.update(_block(f"{IMAGE}transformer.resblocks.{i}.", w, layout.mlp_width))
    else:
        out.update(with_prefix(_rn50_image_shapes(layout), IMAGE))
    out.update(
        {
            "classifier.weight": (n, w),
            "classifier_proj.weight": (n, p),
            **_bn("bottleneck", w),
            **_bn("bottleneck_proj", p),
        }
    )
    if layout.sie_rows:
        out["cv_embed"] = (layout.sie_rows, w)
    if layout.text:
        t = layout.text_width
        suffix = layout.context_length - layout.prefix_len - layout.n_ctx
        out.update({
            f"{PROMPT}cls_ctx": (n, layout.n_ctx, t), f"{PROMPT}token_prefix": (1, layout.prefix_len, t),
            f"{PROMPT}token_suffix": (1, suffix, t),
            f"{TEXT}positional_embedding": (layout.context_length, t), f"{TEXT}text_projection": (t, p),
            f"{TEXT}ln_final.weight": (t,), f"{TEXT}ln_final.bias": (t,),
        })
        for i in range(layout.text_layers):
            out.update(_block(f"{TEXT}transformer.resblocks.{i}.", t, layout.text_mlp_width))
    if layout.ssl == "simclr":
        for name, dim in (("image_mlp", w), ("text_mlp", p)):  # SVLL projects the 512-d text feature
            h, o = layout.ssl_hidden, layout.ssl_out
            out.update({
                f"{name}.layer1.weight": (h, dim), f"{name}.layer1.bias": (h,), **_bn(f"{name}.bn1", h),
                f"{name}.layer2.weight": (h, h), f"{name}.layer2.bias": (h,), **_bn(f"{name}.bn2", h),
                f"{name}.layer3.weight": (o, h), f"{name}.layer3.bias": (o,),
            })
    elif layout.ssl == "simsiam":
        h = layout.ssl_hidden
        out.update({
            "image_mlp.linear1.weight": (h, w), "image_mlp.linear1.bias": (h,), **_bn("image_mlp.bn1", h),
            "image_mlp.layer2.weight": (w, h), "image_mlp.layer2.bias": (w,),
        })
    return out


def _listed(keys: list[str]) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:_MAX_LISTED]) + (f" ... ({len(keys)} in all)" if len(keys) > _MAX_LISTED else "")


def check_layout(sd: Mapping[str, torch.Tensor], layout: ClipReIDLayout, source: str = "checkpoint") -> None:
    """One :class:`LayoutError` listing the missing keys, the unexpected keys and the wrong shapes, if any."""
    expected = expected_shapes(layout)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [
        f"{k} {tuple(sd[k].shape)} (expected {expected[k]})"
        for k in expected
        if k in sd and tuple(sd[k].shape) != expected[k]
    ]
    if missing or unexpected or wrong:
        kind = "SVLL-ReID" if layout.ssl != "none" else "CLIP-ReID"
        parts = [f"{source} does not match a {kind} {layout.arch.upper()} checkpoint layout:"]
        if missing:
            parts.append(f"missing keys: {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listed(unexpected)}")
        if wrong:
            parts.append(f"wrong shapes: {_listed(wrong)}")
        raise LayoutError("\n  ".join(parts))


def _heads_to_reid(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for bn, classifier, ours in HEADS:
        out[f"{ours}.classifier.weight"] = sd[f"{classifier}.weight"]
        for k in _BN:
            out[f"{ours}.bn.{k}"] = sd[f"{bn}.{k}"]
    return out


def _heads_from_reid(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for bn, classifier, ours in HEADS:
        out[f"{classifier}.weight"] = sd[f"{ours}.classifier.weight"]
        for k in _BN:
            out[f"{bn}.{k}"] = sd[f"{ours}.bn.{k}"]
    return out


def _rename_layers(
    sd: Mapping[str, torch.Tensor], src: str, dst: str, names: Mapping[str, str]
) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        if key.startswith(src):
            layer, rest = key[len(src):].split(".", 1)
            out[f"{dst}{names[layer]}.{rest}"] = value
    return out


def to_reid(
    sd: Mapping[str, torch.Tensor], layout: ClipReIDLayout
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(reid system state dict, tensors the reid model has no place for) from a checked CLIP-ReID state dict.

    The second dict holds what is set aside (an RN50's unused SIE table) so that :func:`from_reid` restores it.
    """
    out: dict[str, torch.Tensor] = {}
    aside: dict[str, torch.Tensor] = {}
    image = under(sd, IMAGE)
    if layout.arch == "vit":
        out.update(with_prefix(REID_VIT_ENCODER.from_openai(image), "image.encoder."))
        if layout.sie_rows:
            out["image.encoder.sie.table"] = sd["cv_embed"]
    else:
        out.update(with_prefix(image, "image.encoder.visual."))
        if layout.sie_rows:
            aside["cv_embed"] = sd["cv_embed"]
    out.update(_heads_to_reid(sd))
    if layout.text:
        out["prompt.cls_ctx"] = sd[f"{PROMPT}cls_ctx"]
        out["prompt.prefix"] = sd[f"{PROMPT}token_prefix"]
        out["prompt.suffix"] = sd[f"{PROMPT}token_suffix"]
        out.update(with_prefix(REID_TEXT_ENCODER.from_openai(under(sd, TEXT)), "text."))
    if layout.ssl == "simclr":
        out.update(_rename_layers(sd, "image_mlp.", "ssl_image.projector.net.", PROJECTOR_LAYERS))
        out.update(_rename_layers(sd, "text_mlp.", "ssl_text.projector.net.", PROJECTOR_LAYERS))
    elif layout.ssl == "simsiam":
        out.update(_rename_layers(sd, "image_mlp.", "ssl_image.predictor.net.", PREDICTOR_LAYERS))
    return out, aside


def from_reid(
    system: Mapping[str, torch.Tensor], aside: Mapping[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """A CLIP-ReID / SVLL-ReID state dict from a reid system state dict (the inverse of :func:`to_reid`).

    The architecture is read off the system's own keys: an RN50 encoder lives under ``image.encoder.visual.``.
    A system part with no counterpart in their models (ssl=simsiam_projector's heads) is a :class:`LayoutError`.
    """
    groups = {k.split(".", 1)[0] for k in system}
    foreign = sorted(groups - {"image", "prompt", "text", "ssl_image", "ssl_text"})
    foreign += [k for k in ("ssl_text.predictor.", "ssl_image.projector.") if any(x.startswith(k) for x in system)
                and (k == "ssl_text.predictor." or any(x.startswith("ssl_image.predictor.") for x in system))]
    if foreign:
        raise LayoutError(f"these parts of the run have no CLIP-ReID / SVLL-ReID counterpart: {', '.join(foreign)}")
    out: dict[str, torch.Tensor] = {}
    if any(k.startswith("image.encoder.visual.") for k in system):
        out.update(with_prefix(under(system, "image.encoder.visual."), IMAGE))
    else:
        encoder = {k: v for k, v in under(system, "image.encoder.").items() if not k.startswith("sie.")}
        try:
            out.update(with_prefix(REID_VIT_ENCODER.to_openai(encoder), IMAGE))
        except KeyMapError as err:
            raise LayoutError(f"the run's image encoder has no CLIP-ReID counterpart: {err}") from None
        if "image.encoder.sie.table" in system:
            out["cv_embed"] = system["image.encoder.sie.table"]
    out.update(_heads_from_reid(system))
    if "prompt.cls_ctx" in system:
        out[f"{PROMPT}cls_ctx"] = system["prompt.cls_ctx"]
        out[f"{PROMPT}token_prefix"] = system["prompt.prefix"]
        out[f"{PROMPT}token_suffix"] = system["prompt.suffix"]
        out.update(with_prefix(REID_TEXT_ENCODER.to_openai(under(system, "text.")), TEXT))
    back_projector = {v: k for k, v in PROJECTOR_LAYERS.items()}
    back_predictor = {v: k for k, v in PREDICTOR_LAYERS.items()}
    out.update(_rename_layers(system, "ssl_image.projector.net.", "image_mlp.", back_projector))
    out.update(_rename_layers(system, "ssl_text.projector.net.", "text_mlp.", back_projector))
    out.update(_rename_layers(system, "ssl_image.predictor.net.", "image_mlp.", back_predictor))
    out.update(aside or {})
    return out
