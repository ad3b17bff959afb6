"""Mixed precision as a config value: fp32, bf16 (autocast) or fp16 (autocast + loss scaling)."""
from __future__ import annotations

import contextlib

import torch

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = ("fp32", *_DTYPES)  # the config's precision / speed.extract_precision choices


class Precision:
    """Holds the autocast context and the grad scaler for one run."""

    def __init__(self, mode: str, device: torch.device):
        if mode not in PRECISIONS:
            raise ValueError(f"precision must be fp32, bf16 or fp16, got {mode!r}")
        self.mode = mode
        self.device = device
        self.scaler = torch.amp.GradScaler(device.type, enabled=(mode == "fp16"))

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.mode == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.mode])
