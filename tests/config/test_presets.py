"""The paper presets (conf/experiment/clipreid_* and svll_*) compose and hold the published recipes, and every
option of every config group composes with the train config.

The expected values are transcribed here from the public configs as tabulated in docs/method.md §7.1 (CLIP-ReID
configs), §7.2 (SVLL-ReID configs), §4.5 (evaluation period) and §2.2 (SIE+OLP), independently of the YAML files,
so a typo in either fails.
Keys are compared one by one (``${hydra:...}`` interpolations cannot be resolved by ``compose`` alone).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
PERSONS = ("market1501", "msmt17", "dukemtmc", "occ_duke")
VEHICLES = ("veri776", "vehicleid")
VIT_PIXEL = [0.5, 0.5, 0.5]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# docs/method.md §7.1, the rows marked † (the same in every CLIP-ReID column), and §4.2 / §4.4 / §5.
COMMON: dict[str, Any] = {
    "method.name": "clipreid",
    "loss.triplet_margin": 0.3,
    "loss.triplet_weight": 1.0,
    "loss.i2t_weight": 1.0,
    "augment.flip_p": 0.5,
    "augment.pad": 10,
    "augment.erase_p": 0.5,
    "method.stage2.num_instances": 4,
    "method.stage1.optimizer.name": "adam",
    "method.stage1.optimizer.lr": 3.5e-4,
    "method.stage1.optimizer.weight_decay": 1e-4,
    "method.stage1.scheduler.name": "cosine",
    "method.stage1.scheduler.warmup_epochs": 5,
    "method.stage1.scheduler.warmup_lr_init": 1e-5,
    "method.stage1.scheduler.lr_min": 1e-6,
    "method.stage2.optimizer.name": "adam",
    "method.stage2.optimizer.bias_lr_factor": 2.0,
    "method.stage2.scheduler.name": "warmup_multistep",
    "method.stage2.scheduler.warmup_epochs": 10,
    "method.stage2.scheduler.gamma": 0.1,
    "backbone.neck_feat": "before",
    "eval.normalize": True,
    "eval.rerank": False,
    "eval.flip": False,
}


def _column(*, backbone, size, pixel, smoothing, w_id, s1_batch, s1_epochs, s2_lr, s2_wd, warmup_factor,
            milestones, s2_epochs, s2_batch=64, stride=None, sie=(False, False), sie_coe=None) -> dict[str, Any]:
    col = {
        "backbone.name": backbone,
        "dataset.size": size,
        "backbone.pixel_mean": pixel[0],
        "backbone.pixel_std": pixel[1],
        "loss.label_smoothing": smoothing,
        "loss.id_weight": w_id,
        "method.stage1.batch_size": s1_batch,
        "method.stage1.epochs": s1_epochs,
        "method.stage2.batch_size": s2_batch,
        "method.stage2.optimizer.lr": s2_lr,
        "method.stage2.optimizer.weight_decay": s2_wd,
        "method.stage2.optimizer.weight_decay_bias": s2_wd,  # "S2 wd (= bias wd)"
        "method.stage2.scheduler.warmup_factor": warmup_factor,
        "method.stage2.scheduler.milestones": milestones,
        "method.stage2.epochs": s2_epochs,
        "method.stage2.eval_period": s2_epochs,  # §4.5: EVAL_PERIOD 60 (ViT) / 120 (RN50): the last epoch only
        "backbone.sie.camera": sie[0],
        "backbone.sie.view": sie[1],
    }
    if stride is not None:
        col["backbone.stride"] = stride
    if sie_coe is not None:
        col["backbone.sie.coefficient"] = sie_coe
    return col


VIT = dict(backbone="vit_b16", pixel=(VIT_PIXEL, VIT_PIXEL), smoothing=0.1, w_id=0.25, s2_wd=1e-4,
           warmup_factor=0.1, milestones=[30, 50], s2_epochs=60, stride=16)
CNN = dict(backbone="rn50", pixel=(IMAGENET_MEAN, IMAGENET_STD), w_id=1.0, s1_epochs=60, s2_lr=3.5e-4, s2_wd=5e-4,
           warmup_factor=0.01, milestones=[40, 70], s2_epochs=120)

# docs/method.md §7.1: one entry per CLIP-ReID config column.
CLIPREID = {
    "person/vit_clipreid": _column(**VIT, size=[256, 128], s1_batch=64, s1_epochs=120, s2_lr=5e-6),
    "person/cnn_clipreid": _column(**CNN, size=[256, 128], smoothing=0.1, s1_batch=64),
    "veri/vit_prom": _column(**VIT, size=[256, 256], s1_batch=64, s1_epochs=60, s2_lr=5e-6),
    "veri/cnn_prom": _column(**CNN, size=[256, 256], smoothing=0.1, s1_batch=64),
    "VehicleID/vit_clipreid": _column(**VIT, size=[256, 256], s1_batch=256, s1_epochs=60, s2_lr=5e-5),
    "VehicleID/cnn_clipreid": _column(**CNN, size=[256, 256], smoothing=0.0, s1_batch=256),  # IF_LABELSMOOTH off
}

# docs/method.md §7.2: the SVLL-ReID columns (CLIP-ReID ViT recipe + OLP + SIE + the two SSL terms).
SVLL_SSL = {"ssl.name": "simclr", "ssl.temperature": 0.1, "ssl.lang.mask_prob": 0.5, "ssl.vision.erase_p": 0.5}
SVLL = {
    "person/vit_svllreid": {
        **_column(**{**VIT, "stride": 12}, size=[256, 128], s1_batch=256, s1_epochs=120, s2_lr=5e-6,
                  sie=(True, False), sie_coe=1.0),
        **SVLL_SSL, "ssl.lang_weight": 0.8, "ssl.weight": 0.8,
    },
    "veri/vit_svllreid": {
        **_column(**{**VIT, "stride": 12}, size=[256, 256], s1_batch=64, s1_epochs=60, s2_lr=5e-6, s2_batch=32,
                  sie=(True, True), sie_coe=1.0),
        **SVLL_SSL, "ssl.lang_weight": 2.0, "ssl.weight": 0.8,
    },
    "VehicleID/vit_svllreid": {
        # §7.2 says camera+view SIE x 1.0; §11.3: VehicleID has no camera/view information (and SVLL's lookup
        # indexes out of range), so the preset turns SIE off and keeps OLP: the one deliberate departure.
        **_column(**{**VIT, "stride": 12}, size=[256, 256], s1_batch=64, s1_epochs=60, s2_lr=5e-5, s2_batch=32,
                  sie=(False, False)),
        **SVLL_SSL, "ssl.lang_weight": 0.8, "ssl.weight": 0.8,
    },
}

# SIE+OLP (docs/method.md §2.2, §7.1 STRIDE_SIZE / SIE rows, README): stride 12, SIE coefficient 1.0; camera for
# persons, camera+view for VeRi (the commented vit_prom keys, as SVLL's VeRi config); VehicleID: OLP only (see above).
SIE_OLP = {
    "person": {"backbone.stride": 12, "backbone.sie.camera": True, "backbone.sie.view": False,
               "backbone.sie.coefficient": 1.0},
    "veri776": {"backbone.stride": 12, "backbone.sie.camera": True, "backbone.sie.view": True,
                "backbone.sie.coefficient": 1.0},
    "vehicleid": {"backbone.stride": 12, "backbone.sie.camera": False, "backbone.sie.view": False},
}


def _expected() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for ds in PERSONS + VEHICLES:
        family = "person" if ds in PERSONS else {"veri776": "veri", "vehicleid": "VehicleID"}[ds]
        vit = CLIPREID[f"{family}/{'vit_prom' if family == 'veri' else 'vit_clipreid'}"]
        cnn = CLIPREID[f"{family}/{'cnn_prom' if family == 'veri' else 'cnn_clipreid'}"]
        base = {**COMMON, "dataset.name": ds, "dataset.kind": "person" if ds in PERSONS else "vehicle"}
        out[f"clipreid_{ds}_vitb16"] = {**base, **vit, "ssl.name": "none"}
        out[f"clipreid_{ds}_rn50"] = {**base, **cnn, "ssl.name": "none"}
        out[f"clipreid_{ds}_vitb16_sie_olp"] = {**base, **vit, "ssl.name": "none",
                                                **SIE_OLP["person" if ds in PERSONS else ds]}
        out[f"svll_{ds}_vitb16"] = {**base, **SVLL[f"{family}/vit_svllreid"]}
    return out


EXPECTED = _expected()


def _compose(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR)):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and not isinstance(expected, bool):
        number = isinstance(actual, (int, float)) and not isinstance(actual, bool)
        return number and actual == pytest.approx(expected, rel=1e-12)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(_same, actual, expected))
    return type(actual) is type(expected) and actual == expected


def test_the_preset_files_are_exactly_the_expected_set():
    on_disk = {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml") if p.stem.startswith(("clipreid_", "svll_"))}
    assert on_disk == set(EXPECTED)
    assert len(EXPECTED) == 6 * 2 + 6 + 6
    for name in EXPECTED:
        text = (CONF_DIR / "experiment" / f"{name}.yaml").read_text()
        assert text.startswith("# @package _global_\n"), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_holds_the_published_recipe(name: str):
    cfg = _compose(f"experiment={name}")
    mismatches = {}
    for key, want in EXPECTED[name].items():
        got = OmegaConf.select(cfg, key, throw_on_missing=True)
        got = OmegaConf.to_container(got) if isinstance(got, (DictConfig, ListConfig)) else got
        if not _same(got, want):
            mismatches[key] = (got, want)
    assert not mismatches, f"{name}: key -> (composed, docs/method.md): {mismatches}"
    choices = cfg.hydra.runtime.choices
    ds, backbone = EXPECTED[name]["dataset.name"], EXPECTED[name]["backbone.name"]
    assert (choices.dataset, choices.backbone, choices.method, choices.loss) == (ds, backbone, "clipreid", "clipreid")
    assert choices.ssl == EXPECTED[name]["ssl.name"]
    assert cfg.task_name == name and cfg.logger.run_name == name
    # A stage-2 checkpoint is written within the run (SVLL's vehicle configs had CHECKPOINT_PERIOD 600 > 60 epochs).
    assert 1 <= cfg.checkpoint.period <= cfg.method.stage2.epochs
    # The PK sampler needs whole identities per batch.
    assert cfg.method.stage2.batch_size % cfg.method.stage2.num_instances == 0


def test_rn50_presets_have_the_cnn_backbone_and_no_sie():
    for name in (n for n in EXPECTED if n.endswith("_rn50")):
        cfg = _compose(f"experiment={name}")
        assert cfg.backbone.arch == "rn50" and cfg.backbone.last_stride == 1, name
        assert not cfg.backbone.sie.camera and not cfg.backbone.sie.view, name
        assert OmegaConf.to_container(cfg.backbone, resolve=False)["pretrained"] == "${paths.model_dir}/RN50.pt"


def test_the_tables_transcribe_method_md():
    """Spot checks of the transcription itself against the prose of docs/method.md (§3.4, §4.3, §8)."""
    assert CLIPREID["person/vit_clipreid"]["method.stage1.epochs"] == 120  # "120 for person ViT"
    assert {c["method.stage1.epochs"] for k, c in CLIPREID.items() if k != "person/vit_clipreid"} == {60}
    assert [c["method.stage2.optimizer.lr"] for c in CLIPREID.values()] == [5e-6, 3.5e-4, 5e-6, 3.5e-4, 5e-5, 3.5e-4]
    assert [c["loss.id_weight"] for c in CLIPREID.values()] == [0.25, 1.0] * 3
    assert [c["method.stage1.batch_size"] for c in SVLL.values()] == [256, 64, 64]
    assert [c["ssl.lang_weight"] for c in SVLL.values()] == [0.8, 2.0, 0.8]


def _options() -> list[tuple[str, str]]:
    found = []
    for path in sorted(CONF_DIR.rglob("*.yaml")):
        rel = path.relative_to(CONF_DIR)
        if len(rel.parts) > 1:  # conf/<group>/<option>.yaml, groups may be nested (hydra/launcher)
            found.append(("/".join(rel.parts[:-1]), path.stem))
    return found


OPTIONS = _options()


def test_option_discovery_sees_every_group():
    groups = {g for g, _ in OPTIONS}
    assert {"backbone", "dataset", "method", "loss", "ssl", "experiment", "eval", "logger", "paths"} <= groups
    assert ("backbone", "rn50") in OPTIONS and ("experiment", "svll_veri776_vitb16") in OPTIONS


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_group_option_composes_and_resolves(group: str, option: str):
    if group == "hydra/launcher" and importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        pytest.skip('the launcher presets need pip install -e ".[launchers]"')
    cfg = _compose(f"{group}={option}")
    assert cfg.hydra.runtime.choices[group] == option
    HydraConfig.instance().set_config(cfg)  # so that ${hydra:runtime.cwd} and friends resolve
    for key in cfg:
        if key != "hydra" and isinstance(cfg[key], DictConfig):
            OmegaConf.to_container(cfg[key], resolve=True)  # every interpolation outside hydra.* resolves
