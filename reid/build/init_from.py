"""``init_from``: the config must build the architecture of the run it starts from (docs/weights.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reid.build.common import to_plain

# What fixes the shapes and the computation of the weights init_from copies (pretrained / pretrain only say where
# weights would come from, which init_from replaces).
ARCHITECTURE_KEYS = (
    "arch",
    "config",
    "stride",
    "mid_depth",
    "last_stride",
    "sie",
    "neck_feat",
    "pixel_mean",
    "pixel_std",
)


def _dotted(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_dotted(value, f"{prefix}.{key}"))
        return out
    return {prefix: node}


def _override(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_override(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_init_backbone(cfg: DictConfig) -> None:
    """``init_from=<run folder>``: this config must build the source run's architecture (and input size), or its
    weights would not fit, or would load and compute something else. The error lists the overrides that make it so."""
    from reid.config import ConfigError

    source = cfg.get("init_from")
    if not source:
        return
    folder = Path(str(source)).expanduser()
    if folder.is_file():
        folder = folder.parent.parent if folder.parent.name == "checkpoints" else folder.parent
    if not (folder / ".hydra" / "config.yaml").is_file():
        return  # a bare checkpoint file: the weights' shapes are checked when they load
    from reid.build.run_config import load_run_config

    needed = architecture_overrides(load_run_config(folder, cfg.paths.root_dir), cfg)
    if needed:
        keys = [o.split("=", 1)[0] for o in needed]
        raise ConfigError(
            f"init_from={folder} was trained with another architecture than this config builds "
            f"({', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}); add: {' '.join(needed)}"
        )


def architecture_overrides(source: DictConfig, cfg: DictConfig) -> list[str]:
    """The command-line overrides that make ``cfg`` build ``source``'s architecture and input size (none: it does)."""
    want: dict[str, Any] = {}
    have: dict[str, Any] = {}
    for key in ARCHITECTURE_KEYS:  # only these are resolved (pretrained may name Hydra's runtime paths)
        want.update(_dotted(to_plain(source.backbone.get(key)), f"backbone.{key}"))
        have.update(_dotted(to_plain(cfg.backbone.get(key)), f"backbone.{key}"))
    want["dataset.size"], have["dataset.size"] = list(source.dataset.size), list(cfg.dataset.size)
    return [f"{k}={_override(want[k])}" for k in want if want[k] != have.get(k)]
