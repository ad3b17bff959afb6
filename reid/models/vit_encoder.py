"""CLIP ViT image encoder re-assembled for ReID (docs/method.md §2.2, §12).

HF's own embedding step only supports 224x224 with stride = patch size and
re-interpolates the position table bicubically on every call. CLIP-ReID instead
resizes the table once, bilinearly, to the ReID grid, supports overlapping
patches (stride < patch) and adds a side-information embedding (SIE) to the class
token. So we keep HF's modules and weights but run the embedding and the blocks
ourselves, tapping the class token at two depths.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reid.models.hf_layers import run_layer


def grid_size(size: tuple[int, int], patch: int, stride: int) -> tuple[int, int]:
    """Token grid of a conv patch embedding: (H - p) // s + 1 by (W - p) // s + 1."""
    return (size[0] - patch) // stride + 1, (size[1] - patch) // stride + 1


def resize_pos_embed(table: torch.Tensor, new_grid: tuple[int, int]) -> torch.Tensor:
    """Split off the class row, resize the square grid bilinearly (align_corners=False), re-join.

    Exactly CLIP-ReID's ``resize_pos_embed``: one resize at load time.
    """
    cls_row, grid = table[:1], table[1:]
    old = int(math.isqrt(grid.shape[0]))
    if old * old != grid.shape[0]:
        raise ValueError(f"position table of {grid.shape[0]} grid rows is not a square grid")
    grid = grid.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_grid, mode="bilinear", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(new_grid[0] * new_grid[1], -1)
    return torch.cat([cls_row, grid], dim=0)


class SideInformationEmbedding(nn.Module):
    """Learnable camera / view embedding added (scaled) to the class token only (CLIP-ReID's SIE)."""

    def __init__(self, dim: int, num_cams: int, num_views: int, use_camera: bool, use_view: bool, coefficient: float):
        super().__init__()
        if not (use_camera or use_view):
            raise ValueError("SideInformationEmbedding needs use_camera or use_view")
        self.num_cams, self.num_views = num_cams, num_views
        self.use_camera, self.use_view = use_camera, use_view
        rows = (num_cams if use_camera else 1) * (num_views if use_view else 1)
        self.table = nn.Parameter(torch.empty(rows, dim))
        nn.init.trunc_normal_(self.table, std=0.02)
        self.coefficient = coefficient

    def forward(self, camids: torch.Tensor, viewids: torch.Tensor) -> torch.Tensor:
        # The range checks read values, which a traced or exported graph cannot branch on (ONNX / TorchScript export,
        # torch.compile): there they are skipped and the table lookup itself is the bound.
        check = not (torch.jit.is_tracing() or torch.compiler.is_compiling())
        index = torch.zeros_like(camids)
        if self.use_camera:
            if check and (camids.max() >= self.num_cams or camids.min() < 0):
                raise IndexError(f"camera id out of range [0, {self.num_cams}): {camids.tolist()}")
            index = camids * (self.num_views if self.use_view else 1)
        if self.use_view:
            if check and (viewids.max() >= self.num_views or viewids.min() < 0):
                raise IndexError(f"view id out of range [0, {self.num_views}): {viewids.tolist()}")
            index = index + viewids
        return self.coefficient * self.table[index]


class ClipViTEncoder(nn.Module):
    """Returns class-token features (f_mid, f_last, f_proj) as in CLIP-ReID: (x11, ln_post(x12), proj)."""

    def __init__(
        self,
        vision_model: nn.Module,
        visual_projection: nn.Linear,
        image_size: tuple[int, int],
        stride: int,
        mid_depth: int,
        sie: SideInformationEmbedding | None = None,
    ):
        super().__init__()
        emb = vision_model.embeddings
        self.patch = emb.patch_embedding.kernel_size[0]
        self.patch_embedding = emb.patch_embedding
        self.patch_embedding.stride = (stride, stride)
        self.class_embedding = emb.class_embedding
        self.grid = grid_size(image_size, self.patch, stride)
        with torch.no_grad():
            table = resize_pos_embed(emb.position_embedding.weight.detach().clone(), self.grid)
        self.pos_embed = nn.Parameter(table)
        self.pre_layrnorm = vision_model.pre_layrnorm
        self.layers = vision_model.encoder.layers
        self.post_layernorm = vision_model.post_layernorm
        self.visual_projection = visual_projection
        n = len(self.layers)
        if not 1 <= mid_depth <= n:
            raise ValueError(f"mid_depth must be in [1, {n}], got {mid_depth}")
        self.mid_depth = mid_depth
        self.sie = sie
        self.image_size = tuple(image_size)
        self.width = self.pos_embed.shape[1]
        self.proj_dim = visual_projection.out_features

    @property
    def side_info(self) -> tuple[bool, bool]:
        """(camera, view): which ids this encoder's SIE reads (none without SIE)."""
        return (self.sie.use_camera, self.sie.use_view) if self.sie is not None else (False, False)

    def embed(self, pixels: torch.Tensor, camids: torch.Tensor | None, viewids: torch.Tensor | None) -> torch.Tensor:
        if tuple(pixels.shape[-2:]) != self.image_size:
            raise ValueError(f"encoder built for {self.image_size} inputs, got {tuple(pixels.shape[-2:])}")
        x = self.patch_embedding(pixels.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        if self.sie is not None and (camids is not None or viewids is not None):
            cams = camids if camids is not None else torch.zeros_like(viewids)
            views = viewids if viewids is not None else torch.zeros_like(camids)
            x = torch.cat([x[:, :1] + self.sie(cams, views)[:, None], x[:, 1:]], dim=1)
        return self.pre_layrnorm(x)

    def forward(
        self, pixels: torch.Tensor, camids: torch.Tensor | None = None, viewids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.embed(pixels, camids, viewids)
        f_mid = None
        for depth, layer in enumerate(self.layers, start=1):
            x = run_layer(layer, x, None)
            if depth == self.mid_depth:
                f_mid = x[:, 0]
        f_last = self.post_layernorm(x[:, 0])
        return f_mid, f_last, self.visual_projection(f_last)
