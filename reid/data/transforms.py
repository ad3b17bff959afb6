"""Batched, device-agnostic train/test transforms (CLIP-ReID's pipeline, docs/method.md §4.4).

The DataLoader workers only decode and resize (:mod:`reid.data.image_dataset`);
everything random runs here on whole (B, 3, H, W) batches, on whatever device
the batch is on.  Train order, as CLIP-ReID: horizontal flip (p) → zero-pad
``pad`` px and random crop back to (H, W) → to float and normalise → random
erasing (timm ``mode='pixel'``).  Flip/pad/crop commute with the uint8→float
conversion (padding is 0 in both), so they run on the uint8 batch.

Per-op choice of library (measured on 2 CPU cores, batch 64 at 256×128; see
docs/input_pipeline.md):

* decode + resize: in the workers, per image (images arrive in different sizes,
  which cannot be batched before the resize).  PIL decodes; the resize is
  torch's antialiased uint8 ``interpolate`` (matches PIL's filters to ≤ 2 grey
  levels, ~2.7× faster) or PIL's own ``resize`` (bit-identical to CLIP-ReID's
  torchvision-on-PIL ``Resize``), see :mod:`reid.data.image_dataset`.
  (torchvision itself is unusable here: the PyPI wheel does not import next to
  the CPU torch build, and timm imports torchvision.)
* flip + pad + random crop: fused, on the uint8 batch (:class:`RandomFlipPadCrop`),
  not kornia.  kornia's ``RandomHorizontalFlip`` and ``RandomCrop(padding=…)``
  accept float input only and make three full-size float passes (~20 ms per
  batch); the fused op writes each output pixel once, over 4× fewer bytes:
  one strided window copy per image on the CPU (~2–3 ms per batch), one
  batched ``gather`` on a GPU.  Same distribution as torchvision (flip with
  probability p; crop offsets uniform on {0, …, 2·pad} per axis).
* to float + normalise: one allocation and two in-place ops,
  ``x · 1/(255·std) − mean/std`` (equal to ``(x/255 − mean)/std`` up to
  float32 rounding), with mean/std as buffers that follow ``.to(device)``.
* random erasing: own sampler, not kornia.  kornia's ``RandomErasing`` fills
  with a constant, and its ``RectangleEraseGenerator`` draws the aspect ratio
  from a coin flip between two uniform ranges and clamps oversize boxes,
  whereas timm (used by CLIP-ReID) draws a log-uniform aspect ratio and
  *rejects* oversize boxes (up to 10 attempts, else no erasing).
  :class:`RandomErasing` reproduces timm's sampling exactly, vectorised over
  the batch (see :meth:`RandomErasing.sample_boxes`), and fills each box with
  per-pixel N(0, 1) noise in normalised space (in place per box on the CPU,
  one ``masked_scatter_`` on a GPU).

Large allocations are the main CPU cost after decoding (every fresh 25 MB
float batch is new pages to fault in), so the only full-size float allocation
is the normalised output; erasing works in place on it.

kornia is not a dependency (nothing here uses it); it would be the candidate for
further photometric/geometric augmentation (colour jitter, affine, blur), applied
to the float output of ``TrainAugment``'s geometric stage or after it.

Randomness: all parameters (flips, offsets, boxes) are drawn on the CPU from
torch's global CPU RNG or an explicit CPU ``torch.Generator``; the erasing
noise comes from the batch device's global RNG.  ``torch.manual_seed`` (which
seeds CUDA too) therefore makes a run repeatable.

SVLL-ReID's two extra views (docs/method.md §8.3) are the same pipeline with the
erased area fixed at about a third of the image: ``TrainAugment(..., erase_area=(0.33, 1/3))``
(``ssl.vision.erase_area``, built by ``reid.build.data``).  Call it twice on the same uint8
batch to get two independently augmented views.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ERASE_FILLS = ("pixel", "rand", "const")


def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Flatten (B, V, 3, H, W) multi-view batches to (B·V, 3, H, W); each view is augmented independently."""
    if x.dim() == 4:
        return x, tuple(x.shape[:1])
    if x.dim() == 5:
        return x.reshape(-1, *x.shape[2:]), tuple(x.shape[:2])
    raise ValueError(f"expected a (B, 3, H, W) or (B, V, 3, H, W) batch, got shape {tuple(x.shape)}")


class Normalize(nn.Module):
    """To float32 and ``(x - mean) / std`` per channel; uint8 input is first scaled to [0, 1].

    Computed as ``x * scale + shift`` in one allocation (``scale = 1/std`` or
    ``1/(255 std)``, ``shift = -mean/std``); mean/std are buffers that follow
    ``.to(device)``.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean {mean} and std {std} differ in length")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {std}")
        mean_t = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
        self.register_buffer("mean", mean_t.float(), persistent=False)
        self.register_buffer("std", std_t.float(), persistent=False)
        self.register_buffer("scale", (1.0 / std_t).float(), persistent=False)
        self.register_buffer("scale_u8", (1.0 / (255.0 * std_t)).float(), persistent=False)
        self.register_buffer("shift", (-mean_t / std_t).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            scale = self.scale_u8
        elif torch.is_floating_point(x):
            scale = self.scale
        else:
            raise TypeError(f"expected a uint8 or floating batch, got {x.dtype}")
        # One pass converts dtype and, for channels-last input, reorders to contiguous NCHW.
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        out.copy_(x)
        # 3-element buffers: moving them is free if the module was not moved to the batch's device.
        return out.mul_(scale.to(x.device)).add_(self.shift.to(x.device))


def _flip_pad_crop_slice(x: torch.Tensor, params: dict[str, torch.Tensor], pad: int) -> torch.Tensor:
    """Per-image window copies into a zeroed output (see :meth:`RandomFlipPadCrop.apply`)."""
    b, c, h, w = x.shape
    out = torch.zeros((b, c, h, w), dtype=x.dtype, device=x.device)
    flips = params["flip"].tolist()
    dys = (params["top"] - pad).tolist()  # output row y shows source row y + dy
    dxs = (params["left"] - pad).tolist()  # output col x shows flipped-image col x + dx
    for i in range(b):
        dy, dx = dys[i], dxs[i]
        y0, y1 = max(0, -dy), h - max(0, dy)  # output rows with a source row
        x0, x1 = max(0, -dx), w - max(0, dx)
        if y0 >= y1 or x0 >= x1:
            continue
        if flips[i]:  # flipped col j is source col w-1-j: the window is source cols [w-x1-dx, w-x0-dx) reversed
            window = x[i, :, y0 + dy : y1 + dy, w - x1 - dx : w - x0 - dx].flip(-1)
        else:
            window = x[i, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx]
        out[i, :, y0:y1, x0:x1] = window
    return out


def _flip_pad_crop_gather(x: torch.Tensor, params: dict[str, torch.Tensor], pad: int) -> torch.Tensor:
    """One batched gather with out-of-image pixels zeroed (see :meth:`RandomFlipPadCrop.apply`)."""
    b, c, h, w = x.shape
    dev = x.device
    flip = params["flip"].to(dev)
    rows = torch.arange(h, device=dev)[None] + (params["top"].to(dev) - pad)[:, None]  # (B, H) source rows
    cols = torch.arange(w, device=dev)[None] + (params["left"].to(dev) - pad)[:, None]  # (B, W) flipped-image cols
    cols = torch.where(flip[:, None], w - 1 - cols, cols)  # flipped col j is original col W-1-j
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]  # (B, H, W)
    index = (rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]).view(b, 1, h * w)
    flat = x.contiguous().view(b, c, h * w)
    out = torch.gather(flat, 2, index.expand(b, c, h * w)).view(b, c, h, w)
    return out.masked_fill_(~valid[:, None], 0)


class RandomFlipPadCrop(nn.Module):
    """Random horizontal flip, then zero-pad by ``pad`` and random-crop back to (H, W), fused.

    Equivalent to torchvision's ``RandomHorizontalFlip(flip_p)`` followed by
    ``Pad(pad, fill=0)`` + ``RandomCrop((H, W))``: each image is flipped with
    probability ``flip_p`` and its crop origin in the padded canvas is uniform on
    {0, …, 2·pad}².  Copies each image's visible window once (or one batched
    gather on a GPU), so it works on uint8 or float, on any device.
    The last call's draws are kept in ``last_params`` (CPU ``flip``, ``top``, ``left``).
    """

    def __init__(self, flip_p: float, pad: int, method: str = "auto") -> None:
        super().__init__()
        if method not in ("auto", "slice", "gather"):
            raise ValueError(f"method must be 'auto', 'slice' or 'gather', got {method!r}")
        self.method = method
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {flip_p}")
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.flip_p = float(flip_p)
        self.pad = int(pad)
        self.last_params: dict[str, torch.Tensor] | None = None

    def sample(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-image draws on the CPU: bool ``flip`` and int64 ``top``/``left`` crop origins in the padded canvas."""
        flip = torch.rand(batch, generator=generator) < self.flip_p
        top = torch.randint(0, 2 * self.pad + 1, (batch,), generator=generator)
        left = torch.randint(0, 2 * self.pad + 1, (batch,), generator=generator)
        return {"flip": flip, "top": top, "left": left}

    @staticmethod
    def apply(x: torch.Tensor, params: dict[str, torch.Tensor], pad: int, method: str = "auto") -> torch.Tensor:
        """Apply given draws to a (B, C, H, W) batch of any memory format; returns contiguous NCHW.

        ``method``: "slice" copies each image's visible window with one strided
        copy per image (fastest on the CPU: no index tensors, only the output is
        written); "gather" builds a (B, H·W) index and does one ``gather`` for the
        batch (one kernel on a GPU, where a per-image loop would mean B launches);
        "auto" picks "slice" on the CPU and "gather" elsewhere.  Both give
        identical results.
        """
        if method == "auto":
            method = "slice" if x.device.type == "cpu" else "gather"
        if method == "slice":
            return _flip_pad_crop_slice(x, params, pad)
        if method == "gather":
            return _flip_pad_crop_gather(x, params, pad)
        raise ValueError(f"method must be 'auto', 'slice' or 'gather', got {method!r}")

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        params = self.sample(x.shape[0], generator)
        self.last_params = params
        if self.flip_p == 0.0 and self.pad == 0:
            return x
        return self.apply(x, params, self.pad, self.method)


class RandomErasing(nn.Module):
    """timm's ``RandomErasing(probability=p, mode=fill, max_count=1)``, vectorised over the batch.

    For each image independently: with probability ``p`` try up to
    ``max_attempts`` times to draw a box with target area ``U(area) · H · W`` and
    aspect ratio h/w = ``exp(U(log ratio))``; ``h = round(sqrt(area · ratio))``,
    ``w = round(sqrt(area / ratio))``; the first attempt with ``h < H`` and
    ``w < W`` is placed at top ∈ {0..H-h}, left ∈ {0..W-w} uniformly; if none
    fits the image is left alone.  Fill: ``"pixel"`` per-pixel N(0, 1),
    ``"rand"`` one N(0, 1) colour per box and channel, ``"const"`` zeros.
    Applied to normalised float batches.  The last call's boxes are kept in
    ``last_params`` (CPU tensors ``top, left, height, width, applied``).
    """

    def __init__(
        self,
        p: float,
        area: tuple[float, float] = (0.02, 1 / 3),
        ratio: tuple[float, float] = (0.3, 1 / 0.3),
        fill: str = "pixel",
        max_attempts: int = 10,
        method: str = "auto",
    ) -> None:
        super().__init__()
        if method not in ("auto", "slice", "masked"):
            raise ValueError(f"method must be 'auto', 'slice' or 'masked', got {method!r}")
        self.method = method
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"erasing probability must be in [0, 1], got {p}")
        if not 0.0 < area[0] <= area[1] <= 1.0:
            raise ValueError(f"erasing area range must satisfy 0 < min <= max <= 1, got {area}")
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"erasing aspect-ratio range must satisfy 0 < min <= max, got {ratio}")
        if fill not in ERASE_FILLS:
            raise ValueError(f"erasing fill {fill!r} not in {ERASE_FILLS}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.p = float(p)
        self.area = (float(area[0]), float(area[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        self.fill = fill
        self.max_attempts = int(max_attempts)
        self.last_params: dict[str, torch.Tensor] | None = None

    def sample_boxes(
        self, batch: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Boxes for a batch, drawn on the CPU: int64 tensors (B,) ``top, left, height, width`` and bool ``applied``.

        Not-applied images get a 0×0 box at (0, 0).
        """
        n, t = batch, self.max_attempts
        kw = {"generator": generator, "dtype": torch.float64}
        gate = torch.rand(n, **kw) < self.p
        target = (torch.rand(n, t, **kw) * (self.area[1] - self.area[0]) + self.area[0]) * (height * width)
        aspect = torch.exp(torch.rand(n, t, **kw) * (self.log_ratio[1] - self.log_ratio[0]) + self.log_ratio[0])
        # torch.round rounds half to even, as Python's round() used by timm.
        h = torch.round(torch.sqrt(target * aspect)).to(torch.int64)
        w = torch.round(torch.sqrt(target / aspect)).to(torch.int64)
        fits = (h < height) & (w < width)
        first = torch.argmax(fits.to(torch.int8), dim=1)  # first fitting attempt (0 when none fits)
        applied = gate & fits.any(dim=1)
        rows = torch.arange(n)
        bh = torch.where(applied, h[rows, first], 0)
        bw = torch.where(applied, w[rows, first], 0)
        u_top, u_left = torch.rand(n, **kw), torch.rand(n, **kw)
        top = torch.floor(u_top * (height - bh + 1).to(torch.float64)).to(torch.int64).clamp_(max=height - bh)
        left = torch.floor(u_left * (width - bw + 1).to(torch.float64)).to(torch.int64).clamp_(max=width - bw)
        top = torch.where(applied, top, 0)
        left = torch.where(applied, left, 0)
        return {"top": top, "left": left, "height": bh, "width": bw, "applied": applied}

    @staticmethod
    def box_mask(params: dict[str, torch.Tensor], height: int, width: int, device: torch.device) -> torch.Tensor:
        """Bool (B, 1, H, W) mask of the boxes in ``params``."""
        top, left = params["top"].to(device), params["left"].to(device)
        bottom, right = top + params["height"].to(device), left + params["width"].to(device)
        ys = torch.arange(height, device=device)
        xs = torch.arange(width, device=device)
        in_rows = (ys[None] >= top[:, None]) & (ys[None] < bottom[:, None])
        in_cols = (xs[None] >= left[:, None]) & (xs[None] < right[:, None])
        return (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, inplace: bool = False
    ) -> torch.Tensor:
        """Erase boxes in a normalised float (B, C, H, W) batch.

        Writes into a copy unless ``inplace``; returns ``x`` itself when no image
        got a box.  ``method`` "slice" fills each box in place through a view
        (only the box is touched: fastest on the CPU); "masked" fills all boxes
        with one masked operation (no per-image kernel launches: for GPUs);
        "auto" picks by device.  Same boxes either way.
        """
        b, c, hgt, wid = x.shape
        params = self.sample_boxes(b, hgt, wid, generator)
        self.last_params = params
        n_pixels = int((params["height"] * params["width"]).sum())
        if n_pixels == 0:
            return x
        out = x if inplace else x.clone()
        method = self.method
        if method == "auto":
            method = "slice" if x.device.type == "cpu" else "masked"
        if method == "slice":
            boxes = zip(*(params[k].tolist() for k in ("top", "left", "height", "width")))
            for i, (top, left, bh, bw) in enumerate(boxes):
                if bh == 0 or bw == 0:
                    continue
                region = out[i, :, top : top + bh, left : left + bw]
                if self.fill == "pixel":
                    # randn + copy: normal_() on a strided view takes CPU torch's slow scalar path (~7x slower)
                    region.copy_(torch.randn(c, bh, bw, dtype=x.dtype))
                elif self.fill == "rand":
                    region.copy_(torch.randn(c, 1, 1, dtype=x.dtype).expand_as(region))
                else:
                    region.zero_()
            return out
        mask = self.box_mask(params, hgt, wid, x.device).expand(b, c, hgt, wid)
        if self.fill == "pixel":
            # Exactly as many N(0,1) draws as erased values (the count is known on the host, so no device sync).
            out.masked_scatter_(mask, torch.randn(n_pixels * c, device=x.device, dtype=x.dtype))
        elif self.fill == "rand":
            colour = torch.randn(b, c, 1, 1, device=x.device, dtype=x.dtype)
            out = torch.where(mask, colour, out)
        else:
            out.masked_fill_(mask, 0.0)
        return out


class TrainAugment(nn.Module):
    """CLIP-ReID's training augmentation on a resized uint8/float batch, batched on any device.

    Input (B, 3, H, W) or (B, V, 3, H, W), uint8 in [0, 255] or float in [0, 1];
    output float32 of the same shape, normalised.

    Args:
        mean, std: normalisation (CLIP-ReID ViT: 0.5/0.5; RN50: ImageNet).
        flip_p: probability of a horizontal flip (0.5).
        pad: zero padding in px before the random crop back to (H, W) (10); 0 disables the crop.
        erase_p: probability of random erasing per image (0.5).
        erase_area: range of the erased area fraction ((0.02, 1/3); SVLL views: (0.33, 1/3)).
        erase_ratio: aspect-ratio (h/w) range, sampled log-uniformly ((0.3, 1/0.3)).
        erase_fill: "pixel" (per-pixel N(0,1), timm mode='pixel', CLIP-ReID), "rand" or "const".
        erase_attempts: box draws before giving up on an image (timm: 10).
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        flip_p: float = 0.5,
        pad: int = 10,
        erase_p: float = 0.5,
        erase_area: tuple[float, float] = (0.02, 1 / 3),
        erase_ratio: tuple[float, float] = (0.3, 1 / 0.3),
        erase_fill: str = "pixel",
        erase_attempts: int = 10,
    ) -> None:
        super().__init__()
        self.geometric = RandomFlipPadCrop(flip_p, pad)
        self.normalize = Normalize(mean, std)
        self.erase = RandomErasing(erase_p, erase_area, erase_ratio, erase_fill, erase_attempts)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch; ``generator`` (CPU) drives all parameter draws, else torch's global RNG."""
        batch, lead = _as_batch(x)
        if batch.dtype != torch.uint8 and not torch.is_floating_point(batch):
            raise TypeError(f"expected a uint8 or floating batch, got {batch.dtype}")
        out = self.geometric(batch, generator)
        out = self.normalize(out)
        out = self.erase(out, generator, inplace=True)
        return out.reshape(*lead, *out.shape[1:])


class TestTransform(nn.Module):
    """Test-time transform on a resized batch: to float in [0, 1], normalise (no flip, no crop)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, lead = _as_batch(x)
        out = self.normalize(batch)
        return out.reshape(*lead, *out.shape[1:])
