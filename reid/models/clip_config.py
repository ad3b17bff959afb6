"""A Hugging Face ``CLIPConfig`` from a plain mapping (``backbone.config``, or an architecture read off weights)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import CLIPConfig


def clip_config(spec: Mapping[str, Any]) -> CLIPConfig:
    """``spec``: ``text`` and ``vision`` (CLIPTextConfig / CLIPVisionConfig fields) and ``projection_dim``."""
    return CLIPConfig(
        text_config=dict(spec["text"]),
        vision_config=dict(spec["vision"]),
        projection_dim=int(spec["projection_dim"]),
    )
