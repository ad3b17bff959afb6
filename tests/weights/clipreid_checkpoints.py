"""Generated CLIP-ReID- and SVLL-ReID-layout checkpoints, and an independent forward of them.

The key names and shapes are typed out here from the public code (CLIP-ReID's model/make_model_clipreid.py and
model/clip/model.py, its baseline model/make_model.py, SVLL-ReID's model/make_model_svllreid.py), not taken from
reid.weights, so the importer is checked against the public layout and not against itself. Every tensor is random:
nothing sits at its default init, so a tensor loaded into the wrong place shows in the outputs.

:func:`reference_descriptor` is CLIP-ReID's eval forward written out from its algorithm on open_clip's modules (the
code OpenAI released, which CLIP-ReID's model/clip/model.py is a copy of): a second implementation beside ours.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from reid.models.rn50 import open_clip_module

CONTEXT, N_CTX, PREFIX = 77, 4, 5  # "A photo of a" = SOT + 4 tokens, then 4 learnable X, then the rest


@dataclass(frozen=True)
class Spec:
    """One checkpoint layout. Defaults: a tiny ViT; ``full_vit()`` gives ViT-B/16's real sizes."""

    arch: str = "vit"                       # "vit" | "rn50"
    size: tuple[int, int] = (256, 128)      # the input the model was trained at
    stride: int = 16                        # ViT patch stride (12 = OLP)
    width: int = 64                         # ViT width
    layers: int = 2                         # ViT blocks
    patch: int = 16
    proj: int = 32                          # f_proj and text-feature size
    num_ids: int = 7
    sie_rows: int = 0                       # cv_embed rows; 0 = no SIE
    text: bool = True                       # CLIP-ReID (prompts + text encoder) or its image-only baseline
    text_width: int = 64
    text_layers: int = 1
    ssl: str = "none"                       # "none" | "simclr" | "simsiam" (SVLL-ReID's heads)
    ssl_hidden: int = 48
    ssl_out: int = 16
    rn50_layers: tuple[int, int, int, int] = (1, 1, 1, 1)
    rn50_width: int = 16                    # stem width; layer4 has 32x this many channels
    ddp: bool = False                       # keys under "module." (CLIP-ReID's DIST_TRAIN save)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def grid(self) -> tuple[int, int]:
        # CLIP-ReID's h_resolution / w_resolution (its formula uses 16 for every model, RN50 included)
        return (self.size[0] - 16) // self.stride + 1, (self.size[1] - 16) // self.stride + 1

    @property
    def f_last(self) -> int:
        return self.width if self.arch == "vit" else 32 * self.rn50_width


def full_vit(**changes) -> Spec:
    """ViT-B/16 as CLIP-ReID builds it: width 768, 12 blocks, 512-d projection, a 12-block 512-wide text tower."""
    return replace(
        Spec(width=768, layers=12, proj=512, text_width=512, text_layers=12, ssl_hidden=4096, ssl_out=256), **changes
    )


def full_rn50(**changes) -> Spec:
    """OpenAI's RN50 as CLIP-ReID builds it (layer4 at stride 1), with its 512-wide text tower projecting to 1024."""
    return replace(
        Spec(arch="rn50", rn50_layers=(3, 4, 6, 3), rn50_width=64, proj=1024, text_width=512, text_layers=12), **changes
    )


def _block(prefix: str, d: int) -> dict[str, tuple[int, ...]]:
    """OpenAI's ResidualAttentionBlock: ln_1, attn (fused in_proj), ln_2, mlp.c_fc / mlp.c_proj (4x width)."""
    return {
        f"{prefix}ln_1.weight": (d,), f"{prefix}ln_1.bias": (d,),
        f"{prefix}attn.in_proj_weight": (3 * d, d), f"{prefix}attn.in_proj_bias": (3 * d,),
        f"{prefix}attn.out_proj.weight": (d, d), f"{prefix}attn.out_proj.bias": (d,),
        f"{prefix}ln_2.weight": (d,), f"{prefix}ln_2.bias": (d,),
        f"{prefix}mlp.c_fc.weight": (4 * d, d), f"{prefix}mlp.c_fc.bias": (4 * d,),
        f"{prefix}mlp.c_proj.weight": (d, 4 * d), f"{prefix}mlp.c_proj.bias": (d,),
    }


def _bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def rn50_visual(spec: Spec) -> nn.Module:
    """CLIP-ReID's ModifiedResNet: OpenAI's, with layer4 built at stride 1 and the attention pool sized for the grid."""
    m = open_clip_module("modified_resnet")
    net = m.ModifiedResNet(list(spec.rn50_layers), output_dim=spec.proj, heads=spec.f_last // 64, image_size=224,
                           width=spec.rn50_width)
    net._inplanes = spec.rn50_width * 16
    net.layer4 = net._make_layer(spec.rn50_width * 8, spec.rn50_layers[3], stride=1)
    gh, gw = spec.grid
    net.attnpool.positional_embedding = nn.Parameter(torch.zeros(gh * gw + 1, spec.f_last))
    return net


def layout_shapes(spec: Spec) -> dict[str, tuple[int, ...]]:
    """Every key and shape of the public model's ``state_dict()`` for this layout."""
    w, p, t = spec.f_last, spec.proj, spec.text_width
    gh, gw = spec.grid
    out: dict[str, tuple[int, ...]] = {}
    if spec.arch == "vit":
        out.update({
            "image_encoder.class_embedding": (w,), "image_encoder.positional_embedding": (gh * gw + 1, w),
            "image_encoder.proj": (w, p), "image_encoder.conv1.weight": (w, 3, spec.patch, spec.patch),
            "image_encoder.ln_pre.weight": (w,), "image_encoder.ln_pre.bias": (w,),
            "image_encoder.ln_post.weight": (w,), "image_encoder.ln_post.bias": (w,),
        })
        for i in range(spec.layers):
            out.update(_block(f"image_encoder.transformer.resblocks.{i}.", w))
    else:
        with torch.device("meta"):
            out.update({f"image_encoder.{k}": tuple(v.shape) for k, v in rn50_visual(spec).state_dict().items()})
    out.update({"classifier.weight": (spec.num_ids, w), "classifier_proj.weight": (spec.num_ids, p)})
    out.update({**_bn("bottleneck", w), **_bn("bottleneck_proj", p)})
    if spec.sie_rows:
        out["cv_embed"] = (spec.sie_rows, w)
    if spec.text:
        out.update({
            "prompt_learner.cls_ctx": (spec.num_ids, N_CTX, t), "prompt_learner.token_prefix": (1, PREFIX, t),
            "prompt_learner.token_suffix": (1, CONTEXT - PREFIX - N_CTX, t),
            "text_encoder.positional_embedding": (CONTEXT, t), "text_encoder.text_projection": (t, p),
            "text_encoder.ln_final.weight": (t,), "text_encoder.ln_final.bias": (t,),
        })
        for i in range(spec.text_layers):
            out.update(_block(f"text_encoder.transformer.resblocks.{i}.", t))
    h, o = spec.ssl_hidden, spec.ssl_out
    if spec.ssl == "simclr":  # SVLL's _build_mlp: layer1, bn1, relu1, layer2, bn2, relu2, layer3
        for name, d in (("image_mlp", w), ("text_mlp", p)):
            out.update({f"{name}.layer1.weight": (h, d), f"{name}.layer1.bias": (h,), **_bn(f"{name}.bn1", h),
                        f"{name}.layer2.weight": (h, h), f"{name}.layer2.bias": (h,), **_bn(f"{name}.bn2", h),
                        f"{name}.layer3.weight": (o, h), f"{name}.layer3.bias": (o,)})
    elif spec.ssl == "simsiam":  # SVLL's prediction_MLP: linear1, bn1, relu1, layer2
        out.update({"image_mlp.linear1.weight": (512, w), "image_mlp.linear1.bias": (512,), **_bn("image_mlp.bn1", 512),
                    "image_mlp.layer2.weight": (w, 512), "image_mlp.layer2.bias": (w,)})
    return out


def _value(key: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    if key.endswith("num_batches_tracked"):
        return torch.randint(1, 10_000, (), generator=g, dtype=torch.int64)
    if key.endswith("running_var"):
        return torch.rand(shape, generator=g) + 0.5
    leaf = key.rsplit(".", 1)[-1]
    is_norm = any(part in key for part in ("ln_", "bn", "bottleneck", "ln_final", "ln_pre", "ln_post"))
    if leaf == "weight" and len(shape) == 1 and is_norm:
        return 1.0 + 0.2 * torch.randn(shape, generator=g)
    if len(shape) >= 2 and not key.endswith(
        ("positional_embedding", "cv_embed", "cls_ctx", "token_prefix", "token_suffix")
    ):
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        if key.endswith(("proj", "text_projection")):  # x @ P: the fan-in is the first dimension
            fan_in = shape[0]
        return torch.randn(shape, generator=g) * fan_in ** -0.5
    return 0.2 * torch.randn(shape, generator=g)


def clipreid_state_dict(spec: Spec, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict in the public layout; the same (spec, seed) gives the same tensors."""
    g = torch.Generator().manual_seed(seed)
    sd = {k: _value(k, s, g) for k, s in sorted(layout_shapes(spec).items())}
    if spec.ddp:
        sd = {f"module.{k}": v for k, v in sd.items()}
    return sd


# ------------------------------------------------------------------ CLIP-ReID's eval forward, written out


def _layer_norm(sd, prefix, x):
    return F.layer_norm(x, x.shape[-1:], sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], eps=1e-5)


def _batch_norm(sd, prefix, x):
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"],
                        sd[f"{prefix}.bias"], training=False, eps=1e-5)


def _open_clip_block(sd: dict, prefix: str, width: int) -> nn.Module:
    t = open_clip_module("transformer")
    block = t.ResidualAttentionBlock(width, max(width // 64, 1), act_layer=t.QuickGELU, batch_first=True)
    block.load_state_dict({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)})
    return block.eval()


@torch.no_grad()
def reference_descriptor(
    sd: dict[str, torch.Tensor], spec: Spec, images: torch.Tensor, cams: torch.Tensor, views: torch.Tensor,
    sie: str | None = None, num_views: int = 1, coefficient: float = 3.0, neck_feat: str = "before",
) -> torch.Tensor:
    """CLIP-ReID's ``build_transformer.forward`` in eval mode on normalised ``images`` (B, 3, H, W)."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    if spec.arch == "vit":
        x = F.conv2d(images, sd["image_encoder.conv1.weight"], stride=spec.stride)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = sd["image_encoder.class_embedding"] + torch.zeros(x.shape[0], 1, x.shape[-1])
        x = torch.cat([cls, x], dim=1)
        if sie is not None:  # cv_embed[cam * view_num + view] (both), [cam] or [view], times SIE_COE, on token 0
            index = {"both": cams * num_views + views, "camera": cams, "view": views}[sie]
            x[:, 0] = x[:, 0] + coefficient * sd["cv_embed"][index]
        x = x + sd["image_encoder.positional_embedding"]
        x = _layer_norm(sd, "image_encoder.ln_pre", x)
        blocks = [
            _open_clip_block(sd, f"image_encoder.transformer.resblocks.{i}.", spec.width) for i in range(spec.layers)
        ]
        for block in blocks[:-1]:
            x = block(x)
        x12 = _layer_norm(sd, "image_encoder.ln_post", blocks[-1](x))
        f_last = x12[:, 0]
        f_proj = (x12 @ sd["image_encoder.proj"])[:, 0]
    else:
        net = rn50_visual(spec)
        net.load_state_dict({k[len("image_encoder."):]: v for k, v in sd.items() if k.startswith("image_encoder.")})
        net.eval()
        h = images
        for conv, bn in ((net.conv1, net.bn1), (net.conv2, net.bn2), (net.conv3, net.bn3)):  # the 3-conv stem
            h = F.relu(bn(conv(h)))
        h = F.avg_pool2d(h, 2)
        x4 = net.layer4(net.layer3(net.layer2(net.layer1(h))))
        f_last = F.avg_pool2d(x4, x4.shape[2:4]).flatten(1)
        f_proj = net.attnpool(x4)
    if neck_feat == "after":
        return torch.cat([_batch_norm(sd, "bottleneck", f_last), _batch_norm(sd, "bottleneck_proj", f_proj)], dim=1)
    return torch.cat([f_last, f_proj], dim=1)

