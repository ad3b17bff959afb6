"""`python -m reid.pretrain`: give the embedded tiny CLIP a meaningful vision-language pretraining.

The entry point over :mod:`reid.engine.caption_pretraining`: :mod:`reid.build.pretrain_recipe` reads the backbone's
config node (``backbone.pretrain``, ``backbone.config``, normalisation, attention) into a plain
:class:`~reid.engine.caption_pretraining.CaptionPretrainRecipe` and pretrains into ``backbone.pretrained``
unless that folder already holds this recipe's weights.
"""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from reid.build.common import resolve_device
from reid.build.pretrain_recipe import recipe_from_config
from reid.engine.caption_pretraining import ensure_pretrained
from reid.errors import exit_on_user_error

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(config_path=CONFIG_DIR, config_name="pretrain")
def main(cfg: DictConfig) -> None:
    b = cfg.backbone
    with exit_on_user_error(bool(cfg.get("traceback", False))):
        ensure_pretrained(
            recipe_from_config(b), Path(b.pretrained), Path(b.pretrain.world_root), resolve_device(cfg.device),
            progress=bool(cfg.progress), force=bool(cfg.force),
        )


if __name__ == "__main__":
    main()
