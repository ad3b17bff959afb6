"""The recipe of the embedded backbone's caption pretraining, read from its config node (``backbone.pretrain``).

The builder of the one backbone we can make ourselves: ``reid.build.system`` (a training run) and ``reid.pretrain``
(the entry point) both turn the node into the same plain :class:`CaptionPretrainRecipe`, so both find one cache.
"""
from __future__ import annotations

from dataclasses import fields

from omegaconf import DictConfig, OmegaConf

from reid.engine.caption_pretraining import CaptionPretrainRecipe

# backbone.pretrain keys that say where, not what: they are not part of the recipe (nor of its cache key).
_LOCATION_KEYS = ("world_root",)
_BACKBONE_KEYS = ("model", "pixel_mean", "pixel_std", "attn_implementation")


def recipe_from_config(backbone: DictConfig) -> CaptionPretrainRecipe:
    """The recipe of a backbone node with a ``pretrain`` block (e.g. conf/backbone/clip_tiny_synthetic.yaml)."""
    plain = OmegaConf.to_container(backbone, resolve=True)
    steps = {k: v for k, v in plain["pretrain"].items() if k not in _LOCATION_KEYS}
    known = {f.name for f in fields(CaptionPretrainRecipe)} - set(_BACKBONE_KEYS)
    unknown, missing = sorted(set(steps) - known), sorted(known - set(steps))
    if unknown or missing:
        raise ValueError(
            f"backbone {plain.get('name')}: backbone.pretrain has unknown key(s) {unknown} / lacks {missing}; "
            f"expected {sorted(known | set(_LOCATION_KEYS))}"
        )
    return CaptionPretrainRecipe(
        model=plain["config"],
        pixel_mean=tuple(plain["pixel_mean"]),
        pixel_std=tuple(plain["pixel_std"]),
        attn_implementation=plain.get("attn_implementation", "sdpa"),
        **steps,
    )
