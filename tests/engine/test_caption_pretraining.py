"""The tiny CLIP's caption pretraining: the recipe read from the backbone config, its cache key (the content of
pretrain_recipe.json, which existing caches were written with), the cache check and one real smoke training."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from reid.build.pretrain_recipe import recipe_from_config
from reid.engine.caption_pretraining import RECIPE_FILE, CaptionPretrainRecipe, ensure_pretrained, is_cached
from reid.pretrain import CONFIG_DIR

TINY_CLIP = {
    "projection_dim": 96,
    "text": {"hidden_size": 96, "intermediate_size": 384, "max_position_embeddings": 77, "num_attention_heads": 4,
             "num_hidden_layers": 4, "vocab_size": 49408},
    "vision": {"hidden_size": 96, "image_size": 64, "intermediate_size": 384, "num_attention_heads": 4,
               "num_hidden_layers": 4, "patch_size": 16},
}


def _backbone(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose("pretrain", overrides=[f"paths.root_dir={tmp_path}", *overrides])
    return cfg.backbone


def test_recipe_from_the_backbone_config_and_its_cache_key(tmp_path):
    b = _backbone(tmp_path)
    recipe = recipe_from_config(b)
    assert recipe.pixel_mean == (0.5, 0.5, 0.5) and recipe.pixel_std == (0.5, 0.5, 0.5)
    assert recipe.attn_implementation == "sdpa"
    # Exactly what reid.pretrain wrote before the recipe became a dataclass: model + backbone.pretrain - world_root.
    assert recipe.cache_key() == {
        "model": TINY_CLIP,
        "world": {"seed": 1000, "num_train_ids": 256, "num_test_ids": 8, "num_distractors": 0, "num_junk": 0,
                  "max_images_per_camera": 3},
        "seed": 0, "image_size": 64, "epochs": 8, "steps_per_epoch": 50, "batch_size": 64, "lr": 3.0e-4,
        "weight_decay": 0.0, "warmup_epochs": 1, "flip_p": 0.5,
    }
    smoke = recipe.smoke(3).cache_key()
    assert (smoke["epochs"], smoke["steps_per_epoch"], smoke["warmup_epochs"]) == (1, 3, 0)
    assert smoke["lr"] == 3.0e-4 and recipe.cache_key()["epochs"] == 8  # the original is unchanged


def test_recipe_from_config_names_unknown_and_missing_keys(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['momentum'\] / lacks \[\]"):
        recipe_from_config(_backbone(tmp_path, "+backbone.pretrain.momentum=0.9"))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \[\] / lacks \['flip_p'\]"):
        recipe_from_config(_backbone(tmp_path, "~backbone.pretrain.flip_p"))


def test_a_cached_model_is_returned_without_training(tmp_path):
    recipe = recipe_from_config(_backbone(tmp_path))
    out = tmp_path / "models" / "clip_tiny_synthetic"
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    (out / RECIPE_FILE).write_text(json.dumps(recipe.cache_key(), indent=1, sort_keys=True))
    world_root = tmp_path / "never_written"
    assert ensure_pretrained(recipe, out, world_root, "cpu", progress=False) == out
    assert not world_root.exists()  # no world was rendered: nothing was trained
    other = CaptionPretrainRecipe(**{**recipe.__dict__, "lr": 1e-3})
    assert is_cached(out, recipe.cache_key()) and not is_cached(out, other.cache_key())


def test_a_smoke_pretraining_writes_a_loadable_model_beside_the_real_one(tmp_path):
    from reid.models.clip_loader import load_clip

    b = _backbone(tmp_path, "backbone.pretrain.world.num_train_ids=6", "backbone.pretrain.world.num_test_ids=2",
                  "backbone.pretrain.batch_size=4")
    recipe = recipe_from_config(b)
    out = ensure_pretrained(recipe, b.pretrained, b.pretrain.world_root, "cpu", progress=False, max_steps=2)
    assert out == Path(b.pretrained).with_name("clip_tiny_synthetic-smoke") and not Path(b.pretrained).exists()
    assert json.loads((out / RECIPE_FILE).read_text()) == recipe.smoke(2).cache_key()
    clip = load_clip(str(out))
    assert clip.config.vision_config.hidden_size == 96 and clip.config.projection_dim == 96
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    assert ensure_pretrained(recipe, b.pretrained, b.pretrain.world_root, "cpu", progress=False, max_steps=2) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == mtime  # cached: not trained again
