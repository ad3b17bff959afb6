"""CLIP RN50 for ReID (docs/method.md §2.3, §12.6): open_clip's ModifiedResNet image tower + HF's CLIP text tower.

HF ``transformers`` has no CLIP ResNet. The image tower is open_clip's ``ModifiedResNet`` (the code OpenAI
released, kept by open_clip), imported without running ``open_clip/__init__.py``, which needs torchvision
(not importable beside the CPU torch wheel here): see :func:`open_clip_module` and docs/rn50.md. The text
tower is HF's ``CLIPTextModelWithProjection`` with RN50's text configuration (width 512, 8 heads, 12 layers,
projection 1024), so the project's ``PromptLearner`` / ``TextEncoder`` run on it unchanged.

Weights come from OpenAI's ``RN50.pt`` (a TorchScript archive, or a plain state dict in the same layout):
``visual.*`` loads into the ModifiedResNet as is; the text keys are renamed to HF's layout, splitting the
fused attention ``in_proj_weight`` into q / k / v.

For ReID (:class:`RN50Encoder`): last stride 1 (layer4's anti-aliasing average pools become identities, no
weight changes), the attention pool's position table resized bilinearly once from 7x7+1 to the input's
layer4 grid + 1 (129 rows at 256x128, 257 at 256x256), and three features: g3 = GAP(layer3) (1024-d),
g4 = GAP(layer4) (2048-d), gp = attention-pool token 0 (1024-d).
"""
from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import math
import sys
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from reid.models.clip_loader import ModelWeightsError
from reid.models.vit_encoder import resize_pos_embed
from reid.weights.openai_files import NON_WEIGHT_KEYS, read_openai_file
from reid.weights.openai_keys import HF_TEXT, KeyMapError

# ---------------------------------------------------------------------------------------------------------
# open_clip's modules without open_clip/__init__.py
# ---------------------------------------------------------------------------------------------------------

ALIAS = "reid.models._open_clip"  # the name open_clip's source files are imported under (a namespace we own)
_TORCHVISION_IMPORT = ("torchvision.ops.misc", frozenset({"FrozenBatchNorm2d"}))
_lock = threading.Lock()


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (the semantics of torchvision's class).

    open_clip's ``utils.py`` imports torchvision's only for ``freeze_batch_norm_2d``; this one stands in for it,
    so that function works too.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def _open_clip_dir() -> Path:
    spec = importlib.util.find_spec("open_clip")  # locates the package; does not execute its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "backbone=rn50 uses open_clip's ModifiedResNet: install it with `pip install --no-deps open-clip-torch` "
            "(make setup does this)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _is_torchvision(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "torchvision"
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "torchvision" for alias in node.names)
    return False


def _load_utils(folder: Path, name: str) -> types.ModuleType:
    """open_clip's ``utils.py`` as module ``name``, its one torchvision import bound to :class:`FrozenBatchNorm2d`.

    At most one statement is left out: the top-level ``from torchvision.ops.misc import FrozenBatchNorm2d``.
    Any other torchvision import (a newer open_clip) is an error naming the file, not a silent gap.
    """
    path = folder / "utils.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    kept, dropped = [], []
    for node in tree.body:
        if _is_torchvision(node):
            dropped.append(node)
        else:
            kept.append(node)
    unexpected = [n for n in dropped if not (
        isinstance(n, ast.ImportFrom) and n.module == _TORCHVISION_IMPORT[0]
        and frozenset(a.name for a in n.names) == _TORCHVISION_IMPORT[1] and all(a.asname is None for a in n.names)
    )]
    unexpected += [sub for n in kept for sub in ast.walk(n) if _is_torchvision(sub)]  # nested (lazy) imports
    if unexpected or len(dropped) > 1:
        lines = ", ".join(ast.unparse(n).splitlines()[0] for n in (unexpected or dropped))
        raise ImportError(
            f"{path}: the only torchvision import reid.models.rn50 can stand in for is "
            f"'from torchvision.ops.misc import FrozenBatchNorm2d'; found: {lines}. "
            "This open_clip version is not supported (tested with open-clip-torch 3.3.0)."
        )
    tree.body = kept
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__package__ = name.rpartition(".")[0]
    module.FrozenBatchNorm2d = FrozenBatchNorm2d
    exec(compile(tree, str(path), "exec"), module.__dict__)
    return module


def _alias_package() -> types.ModuleType:
    with _lock:
        if ALIAS in sys.modules:
            return sys.modules[ALIAS]
        folder = _open_clip_dir()
        pkg = types.ModuleType(ALIAS, "open_clip's source files, imported without open_clip/__init__.py")
        spec = importlib.machinery.ModuleSpec(ALIAS, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        pkg.__spec__, pkg.__path__, pkg.__package__ = spec, [str(folder)], ALIAS
        utils = _load_utils(folder, f"{ALIAS}.utils")
        pkg.utils = utils
        sys.modules[f"{ALIAS}.utils"] = utils
        sys.modules[ALIAS] = pkg
        return pkg


def open_clip_module(name: str) -> types.ModuleType:
    """One of open_clip's source modules (``modified_resnet``, ``transformer``, ...), imported as ``ALIAS.name``.

    A package object named :data:`ALIAS` whose ``__path__`` is open_clip's folder makes the import system find
    the real files, and their relative imports (``from .utils import ...``) resolve inside the alias, so
    ``open_clip/__init__.py`` (and with it torchvision) is never executed.
    """
    _alias_package()
    return importlib.import_module(f"{ALIAS}.{name}")


# ---------------------------------------------------------------------------------------------------------
# architecture and weights
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RN50Spec:
    """The CLIP ResNet architecture (defaults: OpenAI's RN50); head counts follow OpenAI's ``build_model``."""

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    width: int = 64                 # stem width; layer4 has width * 32 = 2048 channels
    embed_dim: int = 1024           # attention-pool output = text projection size
    image_size: int = 224           # pretraining resolution: attention-pool grid image_size // 32 = 7
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 512
    text_layers: int = 12

    @property
    def vision_heads(self) -> int:
        return self.width * 32 // 64

    @property
    def text_heads(self) -> int:
        return self.text_width // 64

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any] | None) -> RN50Spec:
        values = dict(spec or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown RN50 config keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        if "layers" in values:
            values["layers"] = tuple(int(v) for v in values["layers"])
        return cls(**values)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> RN50Spec:
        """Read the architecture off an OpenAI-layout state dict (as OpenAI's ``build_model``)."""
        layers = tuple(
            len({k.split(".")[2] for k in sd if k.startswith(f"visual.layer{b}.")}) for b in (1, 2, 3, 4)
        )
        grid = round(math.sqrt(sd["visual.attnpool.positional_embedding"].shape[0] - 1))
        return cls(
            layers=layers,  # type: ignore[arg-type]
            width=int(sd["visual.layer1.0.conv1.weight"].shape[0]),
            embed_dim=int(sd["text_projection"].shape[1]),
            image_size=grid * 32,
            context_length=int(sd["positional_embedding"].shape[0]),
            vocab_size=int(sd["token_embedding.weight"].shape[0]),
            text_width=int(sd["ln_final.weight"].shape[0]),
            text_layers=len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")}),
        )

    def text_config(self) -> CLIPTextConfig:
        return CLIPTextConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.text_width,
            intermediate_size=4 * self.text_width,
            projection_dim=self.embed_dim,
            num_hidden_layers=self.text_layers,
            num_attention_heads=self.text_heads,
            max_position_embeddings=self.context_length,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
            bos_token_id=self.vocab_size - 2,  # <|startoftext|>, <|endoftext|> are the last two ids
            eos_token_id=self.vocab_size - 1,
        )


class ClipRN50(nn.Module):
    """OpenAI's CLIP RN50: ``visual`` (open_clip ModifiedResNet) + ``text`` (HF CLIPTextModelWithProjection).

    ``text_model`` / ``text_projection`` are what ``reid.build.build_text_side`` reads from a HF CLIPModel.
    """

    def __init__(self, spec: RN50Spec = RN50Spec(), attn_implementation: str = "sdpa"):
        super().__init__()
        self.spec = spec
        ModifiedResNet = open_clip_module("modified_resnet").ModifiedResNet
        self.visual = ModifiedResNet(
            layers=list(spec.layers), output_dim=spec.embed_dim, heads=spec.vision_heads,
            image_size=spec.image_size, width=spec.width,
        )
        self.text = CLIPTextModelWithProjection._from_config(
            spec.text_config(), attn_implementation=attn_implementation
        )

    @property
    def text_model(self) -> nn.Module:
        return self.text.text_model

    @property
    def text_projection(self) -> nn.Linear:
        return self.text.text_projection


# The contrastive temperature: a weight of OpenAI's file that CLIP-ReID never uses.
IGNORED_KEYS = frozenset({"logit_scale"})


def openai_text_to_hf(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI text keys -> ``CLIPTextModelWithProjection`` keys (docs/method.md §12 table; fused q/k/v split)."""
    try:
        return HF_TEXT.from_openai(sd)
    except KeyMapError as err:
        raise KeyError(f"unexpected text key(s) in an OpenAI CLIP state dict: {err}") from None


def read_openai_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """OpenAI's ``RN50.pt`` (TorchScript archive) or a ``torch.save``'d state dict in the same layout, as fp32."""
    where = Path(path).expanduser()
    if not where.is_file():
        raise ModelWeightsError(
            f"RN50 weights not found at {where} (offline: nothing is downloaded). Get OpenAI's RN50.pt on a "
            "connected machine (the URL is in openai/CLIP clip/clip.py, _MODELS['RN50']; or "
            "`python -c \"import clip; clip.load('RN50')\"` writes ~/.cache/clip/RN50.pt), copy it here and set "
            "backbone.pretrained=/path/RN50.pt"
        )
    sd = read_openai_file(where)
    if "visual.attnpool.positional_embedding" not in sd:
        raise ValueError(
            f"{where} is not an OpenAI CLIP ResNet state dict (no 'visual.attnpool.positional_embedding'); "
            "backbone=rn50 expects OpenAI's RN50.pt layout (visual.*, transformer.*, token_embedding, ...)"
        )
    return sd


def _load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], what: str) -> None:
    result = module.load_state_dict(sd, strict=False)
    # OpenAI's archive may lack BatchNorm's step counters (unused: momentum is set); anything else must match.
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise KeyError(f"{what}: missing keys {missing[:8]}, unexpected keys {result.unexpected_keys[:8]}")


def load_openai_rn50(
    state_dict: Mapping[str, torch.Tensor] | str | Path, attn_implementation: str = "sdpa"
) -> ClipRN50:
    """Build :class:`ClipRN50` from an OpenAI-layout state dict (or the file holding one)."""
    sd = read_openai_state_dict(state_dict) if isinstance(state_dict, (str, Path)) else dict(state_dict)
    sd = {k: v for k, v in sd.items() if k not in IGNORED_KEYS and k not in NON_WEIGHT_KEYS}
    spec = RN50Spec.from_state_dict(sd)
    model = ClipRN50(spec, attn_implementation)
    visual = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    _load_strict(model.visual, visual, "RN50 image tower")
    text = {k: v for k, v in sd.items() if not k.startswith("visual.")}
    _load_strict(model.text, openai_text_to_hf(text), "RN50 text tower")
    return model


def build_rn50_clip(
    pretrained: str | Path | None, config: Mapping[str, Any] | None = None, attn_implementation: str = "sdpa"
) -> ClipRN50:
    """From ``backbone.pretrained`` (OpenAI RN50.pt) or, when that is null, randomly initialised from ``config``."""
    if pretrained:
        return load_openai_rn50(pretrained, attn_implementation)
    if config is None:
        raise ValueError("backbone=rn50 needs backbone.pretrained=/path/RN50.pt (or backbone.config for random init)")
    return ClipRN50(RN50Spec.from_mapping(config), attn_implementation)


# ---------------------------------------------------------------------------------------------------------
# the ReID image encoder
# ---------------------------------------------------------------------------------------------------------


def layer4_grid(size: tuple[int, int], last_stride: int = 1) -> tuple[int, int]:
    """Spatial size of layer4's output for an (H, W) input: stem conv /2 (3x3, pad 1), avg-pools /2 x (2 or 3)."""

    def side(n: int) -> int:
        n = (n - 1) // 2 + 1        # conv1: 3x3, stride 2, padding 1
        n //= 2                     # stem average pool
        n //= 2                     # layer2
        n //= 2                     # layer3
        return n // last_stride     # layer4
    return side(size[0]), side(size[1])


def set_last_stride_one(visual: nn.Module) -> None:
    """layer4 without its stride-2 anti-aliasing: the first block's avg-pool and its downsample's avg-pool."""
    block = visual.layer4[0]
    block.avgpool = nn.Identity()
    if block.downsample is not None and "-1" in block.downsample._modules:
        block.downsample._modules["-1"] = nn.Identity()
    block.stride = 1


class RN50Encoder(nn.Module):
    """Returns (f_mid, f_last, f_proj) = (GAP(layer3), GAP(layer4), attention-pool token 0) like ``ClipViTEncoder``.

    ``width`` (2048) and ``proj_dim`` (1024) size ``ReIDModel``'s two BNNeck heads. Camera / view ids are
    accepted and ignored: CLIP-ReID's RN50 has no side-information embedding.
    """

    def __init__(self, visual: nn.Module, image_size: tuple[int, int], last_stride: int = 1):
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        if last_stride == 1:
            set_last_stride_one(visual)
        self.visual = visual
        self.image_size = tuple(int(s) for s in image_size)
        self.grid = layer4_grid(self.image_size, last_stride)
        if min(self.grid) < 1:
            raise ValueError(f"input {self.image_size} is too small for RN50 (layer4 grid {self.grid})")
        pool = visual.attnpool
        with torch.no_grad():
            table = resize_pos_embed(pool.positional_embedding.detach().clone(), self.grid)
        pool.positional_embedding = nn.Parameter(table)  # one resize at build time; trainable in stage 2
        self.width = int(visual.layer4[-1].bn3.num_features)
        self.proj_dim = int(pool.c_proj.out_features)

    side_info = (False, False)  # (camera, view): CLIP-ReID's RN50 reads no side information

    def forward(
        self, pixels: torch.Tensor, camids: torch.Tensor | None = None, viewids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if tuple(pixels.shape[-2:]) != self.image_size:
            raise ValueError(f"encoder built for {self.image_size} inputs, got {tuple(pixels.shape[-2:])}")
        v = self.visual
        x = v.stem(pixels.to(v.conv1.weight.dtype))
        x = v.layer1(x)
        x = v.layer2(x)
        x3 = v.layer3(x)
        x4 = v.layer4(x3)
        return x3.mean(dim=(2, 3)), x4.mean(dim=(2, 3)), v.attnpool(x4)


def rn50_backbone(
    pretrained: str | Path | None,
    config: Mapping[str, Any] | None,
    image_size: tuple[int, int],
    last_stride: int = 1,
    attn_implementation: str = "sdpa",
) -> tuple[RN50Encoder, ClipRN50]:
    """The ReID encoder over the RN50 image tower, and the whole model (its text side is CLIP-ReID's)."""
    clip = build_rn50_clip(pretrained, config, attn_implementation)
    return RN50Encoder(clip.visual, image_size, last_stride), clip


__all__ = [
    "ALIAS", "ClipRN50", "FrozenBatchNorm2d", "RN50Encoder", "RN50Spec", "build_rn50_clip", "layer4_grid",
    "load_openai_rn50", "open_clip_module", "openai_text_to_hf", "read_openai_state_dict", "rn50_backbone",
    "set_last_stride_one",
]
