"""Speed switches that leave results unchanged beyond mixed-precision tolerance (docs/gpu_speed.md).

The ``speed:`` block of conf/train.yaml maps onto the two functions here:

- ``compile`` / ``compile_mode``: ``torch.compile`` of the image encoder (``ReIDModel.encoder``), in place through
  ``nn.Module.compile``, so parameter names and state-dict keys (checkpoints) are unchanged. Both the stage-2
  forward and the stage-1 cache (``encode_projected``) go through the encoder, so both use the compiled code.
- ``channels_last``: the model's 4-D tensors (conv weights) in channels-last memory format and every input image
  batch converted on entry to the encoder. Meant for a convolutional backbone (RN50); on the ViT it only touches
  the patch-embedding convolution.
- ``fused_optimizer``: the ``fused=`` argument of torch's Adam / AdamW / SGD (one kernel per parameter group).

Mixed precision is :mod:`reid.engine.precision`; the attention kernel is ``backbone.attn_implementation``
(HF ``sdpa`` or ``eager``), applied when the CLIP model is built.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
_HOOK_FLAG = "_reid_channels_last_inputs"


def _channels_last_inputs(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook: the first positional argument (the image batch), if 4-D, in channels-last layout."""
    if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
        args = (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
    return args, kwargs


def apply_speed_settings(
    model: nn.Module, compile: bool = False, compile_mode: str = "default", channels_last: bool = False
) -> nn.Module:
    """Apply the speed switches to ``model`` in place (a ``ReIDModel`` or any module) and return it.

    The target of both switches is ``model.encoder`` when the model has one (``ReIDModel``), else the model:
    the BNNeck heads are two small linear layers that gain nothing from either.
    Call after ``model.to(device)``; parameters stay the same objects, so an optimiser may be built before or after.
    """
    if compile_mode not in COMPILE_MODES:
        raise ValueError(f"speed.compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}")
    target = getattr(model, "encoder", model)
    if not isinstance(target, nn.Module):
        raise TypeError(f"model.encoder must be an nn.Module, got {type(target).__name__}")
    if channels_last:
        model.to(memory_format=torch.channels_last)  # only 4-D tensors change layout; others are left as they are
        if not getattr(target, _HOOK_FLAG, False):
            target.register_forward_pre_hook(_channels_last_inputs, with_kwargs=True)
            setattr(target, _HOOK_FLAG, True)
    if compile:
        # nn.Module.compile compiles the module's call in place (no OptimizedModule wrapper, no "_orig_mod." keys).
        target.compile(mode=compile_mode)
    return model


def fused_optimizer_flag(setting: Any, device: torch.device | str) -> bool | None:
    """The ``fused=`` argument for torch's optimisers from ``speed.fused_optimizer`` (auto | true | false).

    auto: True on CUDA (one fused kernel per parameter group), None elsewhere. true: True on any device (torch
    raises where its optimiser has no fused kernel). false: None, torch's own choice (foreach on CUDA, the for-loop
    on the CPU). Never False: torch reads ``fused=False`` with ``foreach=None`` as "the single-tensor for-loop",
    the slowest implementation on CUDA (torch/optim/adam.py, ``adam()``), which is not what "not fused" means.
    """
    value = setting.strip().lower() if isinstance(setting, str) else setting
    if value == "auto":
        return True if torch.device(device).type == "cuda" else None
    if value is True or value == "true":
        return True
    if value is False or value == "false":
        return None
    raise ValueError(f"speed.fused_optimizer must be auto, true or false, got {setting!r}")
