"""Small translations every builder shares: plain containers, the device."""
from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf


def to_plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={spec!r} but CUDA is not available on this machine (use device=cpu or auto)")
    return device


_ABSENT = object()


def value(node: DictConfig, dotted: str) -> Any:
    """A dotted key's plain value under ``node`` (lists and mappings as Python containers); absent is an error."""
    found = OmegaConf.select(node, dotted, default=_ABSENT, throw_on_missing=True)
    if found is _ABSENT:
        raise KeyError(f"{dotted} is not in the config (a loss term or a method needs it: add it to its yaml group)")
    return to_plain(found)
