"""`python -m reid.pretrain`: give the embedded tiny CLIP a meaningful vision-language pretraining.

The entry point over :mod:`reid.engine.caption_pretraining`: it reads the backbone's config node
(``backbone.pretrain``, ``backbone.config``, normalisation, attention) into a plain
:class:`~reid.engine.caption_pretraining.CaptionPretrainRecipe` and pretrains into ``backbone.pretrained``
unless that folder already holds this recipe's weights.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from reid.build.common import resolve_device
from reid.engine.caption_pretraining import CaptionPretrainRecipe, ensure_pretrained

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
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


@hydra.main(config_path=CONFIG_DIR, config_name="pretrain")
def main(cfg: DictConfig) -> None:
    b = cfg.backbone
    ensure_pretrained(
        recipe_from_config(b), Path(b.pretrained), Path(b.pretrain.world_root), resolve_device(cfg.device),
        progress=bool(cfg.progress), force=bool(cfg.force),
    )


if __name__ == "__main__":
    main()
