"""Flatten a nested config into dotted MLflow params."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def flatten_config(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_config(value, prefix=f"{name}."))
        else:
            out[name] = str(value)
    return out
