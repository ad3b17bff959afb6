"""Config validation (reid.config): wrong types and bad values stop a job, naming the full dotted key,
before any data, model or run folder is touched."""
from __future__ import annotations

import copy
import functools
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from reid.config import ConfigError, ineffective_settings, validate_config

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
DATASETS = ("dukemtmc", "folder", "market1501", "msmt17", "occ_duke", "synthetic", "vehicleid", "veri776")
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))  # demo and the paper presets


def _cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR)):
        return compose("train", overrides=list(overrides))


@functools.lru_cache(maxsize=1)
def _demo() -> DictConfig:
    return _cfg("experiment=demo")


def _demo_with(*overrides: str) -> DictConfig:
    """``experiment=demo`` plus value overrides, applied as Hydra would but without composing again (~10x faster);
    an override that picks a config group option (``dataset=folder``) composes."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    if any((CONF_DIR / o.key_or_group).is_dir() for o in parsed):
        return _cfg("experiment=demo", *overrides)
    cfg = copy.deepcopy(_demo())
    for o in parsed:
        OmegaConf.update(cfg, o.key_or_group, o.value(), merge=False, force_add=o.is_add())
    return cfg


def _error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(_demo_with(*overrides))
    return str(err.value)


@pytest.mark.parametrize(
    "overrides",
    [
        (),                                                # the paper's recipe on Market-1501
        *((f"experiment={name}",) for name in EXPERIMENTS),
        ("experiment=demo", "method=baseline"),            # leaves demo's partial method.stage1 unused
        ("experiment=demo", "debug=fast"),
        ("experiment=demo", "ssl=simclr"),
        ("experiment=demo", "ssl=simsiam"),
        ("experiment=demo", "ssl=simsiam_projector"),
        ("experiment=demo", "hparams_search=clipreid_loss_weights"),
        ("experiment=demo", "hparams_search=lr_warmup"),
        ("experiment=demo", "hparams_search=svll_ssl_weights"),
        ("backbone=clip_tiny", "backbone.stride=12", "backbone.sie.camera=true"),
        ("backbone=rn50", "backbone.last_stride=2"),
        ("eval.rerank=true", "eval.backend=torch", "precision=bf16", "device=cuda:1", "resume=false"),
        *((f"dataset={name}", "dataset.root=/any/where") for name in DATASETS),
    ],
    ids=lambda o: " ".join(o) or "defaults",
)
def test_shipped_configs_are_valid(overrides: tuple[str, ...]) -> None:
    cfg = _cfg(*overrides)
    validate_config(cfg)
    assert ineffective_settings(cfg) == []


def test_settings_without_effect_are_named_with_the_fix() -> None:
    # The design card's sweep on plain CLIP-ReID: both jobs would train the same model.
    assert ineffective_settings(_demo_with("ssl.weight=0.1")) == [
        "ssl.weight=0.1 has no effect with ssl=none (plain clipreid): "
        "add ssl=simclr (SVLL-ReID) or ssl=simsiam to train with self-supervision"
    ]
    notes = ineffective_settings(_demo_with("ssl.weight=0.5", "ssl.lang_weight=2.0"))
    assert [n.split(" has no effect")[0] for n in notes] == ["ssl.weight=0.5", "ssl.lang_weight=2.0"]
    baseline = ineffective_settings(_cfg("experiment=demo", "method=baseline", "ssl=simclr"))
    assert baseline == [
        "ssl.lang_weight=0.8 has no effect with method=baseline (no text side, no stage 1): "
        "only the vision term (ssl.weight) trains; use method=clipreid for the language term"
    ]
    assert ineffective_settings(_cfg("experiment=demo", "method=baseline", "ssl=simclr", "ssl.lang_weight=0")) == []
    assert ineffective_settings(_cfg("experiment=demo", "ssl=simclr", "ssl.weight=0.1")) == []


BAD_VALUES = [
        (("method.stage2.batch_size=abc",),
         "method.stage2.batch_size has the wrong type: Value 'abc' of type 'str' could not be converted to Integer"),
        (("method.stage2.optimizer.betas=abc",),
         "method.stage2.optimizer.betas has the wrong type: expected a list, got 'abc'"),
        (("backbone.sie.camera=maybe",),
         "backbone.sie.camera has the wrong type: Value 'maybe' is not a valid bool (type str)"),
        (("method.stage2.epochs=${method.name}",),
         "method.stage2.epochs has the wrong type: While dereferencing interpolation '${method.name}': "
         "Value 'clipreid' of type 'str' could not be converted to Integer"),
        (("method.stage2=5",), "method.stage2 must be a config section (a mapping), got 5"),
        (("method.stage2.optimizer.lr=-0.001",), "method.stage2.optimizer.lr must be > 0, got -0.001"),
        (("method.stage1.optimizer.lr=0",), "method.stage1.optimizer.lr must be > 0, got 0.0"),
        (("method.stage2.optimizer.lr=nan",), "method.stage2.optimizer.lr must be > 0, got nan"),
        (("method.stage2.num_instances=64",),
         "method.stage2.num_instances must be <= method.stage2.batch_size (32), got 64"),
        (("method.stage2.num_instances=5",),
         "method.stage2.batch_size must be a multiple of method.stage2.num_instances (5 images per identity), got 32"),
        (("method.stage2.num_instances=0",), "method.stage2.num_instances must be >= 1, got 0"),
        (("method.stage2.epochs=0",), "method.stage2.epochs must be >= 1, got 0"),
        (("method.stage1.batch_size=0",), "method.stage1.batch_size must be >= 1, got 0"),
        (("method.stage2.optimizer.weight_decay=-1e-4",),
         "method.stage2.optimizer.weight_decay must be >= 0, got -0.0001"),
        (("method.stage2.scheduler.milestones=[9,6]",),
         "method.stage2.scheduler.milestones must be strictly increasing epochs >= 1, got [9, 6]"),
        (("+method.stage2.scheduler.lr_min=0",),
         "method.stage2.scheduler.lr_min is not a parameter of the warmup_multistep scheduler "
         "(it takes warmup_epochs, warmup_factor, milestones, gamma)"),
        (("method.stage2.optimizer.name=lamb",),
         "method.stage2.optimizer.name must be one of adam, adamw, sgd, got 'lamb'"),
        (("dataset.name=nosuch",),
         "dataset.name must be one of dukemtmc, folder, market1501, msmt17, occ_duke, synthetic, vehicleid, veri776, "
         "got 'nosuch'"),
        (("dataset=market1501", "+dataset.options.verify_image=true"),
         "dataset.options: dataset 'market1501': bad options ['verify_image'] (got an unexpected keyword argument "
         "'verify_image'); this format accepts [] plus verify_images, skip_corrupt, val_fraction, val_seed"),
        (("dataset=folder",), "dataset.root is required but not set (give it on the command line: dataset.root=...)"),
        (("precision=fp8",), "precision must be one of fp32, bf16, fp16, got 'fp8'"),
        (("speed.extract_precision=int8",), "speed.extract_precision must be one of fp32, bf16, fp16, got 'int8'"),
        (("speed.compile_mode=fast",),
         "speed.compile_mode must be one of default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs, "
         "got 'fast'"),
        (("speed.fused_optimizer=always",), "speed.fused_optimizer must be auto, true or false, got 'always'"),
        (("speed.compile=maybe",), "speed.compile has the wrong type: Value 'maybe' is not a valid bool (type str)"),
        (("device=gpu",), "device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
        (("seed=-1",), "seed must be in [0, 4294967295], got -1"),
        (("num_workers=-2",), "num_workers must be >= 0, got -2"),
        (("resume=/no/such/run",),
         "resume must be auto, true, false or an existing checkpoint file / run folder, got '/no/such/run'"),
        (("checkpoint.keep_last=0",), "checkpoint.keep_last must be >= 1, got 0"),
        (("checkpoint.period=0",), "checkpoint.period must be >= 1, got 0"),
        (("nonfinite.action=ignore",), "nonfinite.action must be one of stop, skip, got 'ignore'"),
        (("augment.erase_area=[0.5,0.1]",),
         "augment.erase_area must be [lo, hi] with 0 < lo <= hi <= 1, got [0.5, 0.1]"),
        (("backbone.stride=0",), "backbone.stride must be > 0, got 0"),
        (("backbone.arch=resnet",), "backbone.arch must be one of vit, rn50, got 'resnet'"),
        (("backbone=rn50", "backbone.last_stride=3"), "backbone.last_stride must be one of 1, 2, got 3"),
        (("backbone=rn50", "backbone.sie.view=true"),
         "backbone.sie.view must be false for backbone.arch=rn50 (it has no side-information embedding), got True"),
        (("loss.id_weight=-1",), "loss.id_weight must be >= 0, got -1.0"),
        (("loss.label_smoothing=1.0",), "loss.label_smoothing must be in [0, 1), got 1.0"),
        (("loss.id_weight=0", "loss.triplet_weight=0", "loss.i2t_weight=0"),
         "loss.id_weight, loss.triplet_weight, loss.i2t_weight (and ssl.weight) are all 0: nothing to train"),
        (("eval.k1=0",), "eval.k1 must be >= 1, got 0"),
        (("eval.k2=0",), "eval.k2 must be >= 1, got 0"),
        (("eval.lambda_value=1.5",), "eval.lambda_value must be in [0, 1], got 1.5"),
        (("eval.backend=gpu",), "eval.backend must be one of auto, faiss_cpu, faiss_gpu, torch, got 'gpu'"),
        (("ssl=simclr", "ssl.temperature=0"), "ssl.temperature must be > 0, got 0.0"),
        (("ssl=simclr", "ssl.lang.mask_prob=1"), "ssl.lang.mask_prob must be in [0, 1), got 1.0"),
    ]


@pytest.mark.parametrize(("overrides", "message"), BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_bad_value_names_the_key(overrides: tuple[str, ...], message: str) -> None:
    assert _error(*overrides) == message


def test_every_problem_is_listed_at_once() -> None:
    message = _error("method.stage2.optimizer.lr=-0.001", "eval.k1=0", "precision=fp8")
    assert message == (
        "3 config errors:\n"
        "  precision must be one of fp32, bf16, fp16, got 'fp8'\n"
        "  method.stage2.optimizer.lr must be > 0, got -0.001\n"
        "  eval.k1 must be >= 1, got 0"
    )


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)  # callers that catch ValueError (sweepers, scripts) still do


def test_the_choices_are_the_registries_of_the_code_that_implements_them(monkeypatch) -> None:
    """No copied lists: what the code registers is what validation accepts, and what its messages list."""
    import torch

    from reid.engine import optim, schedules
    from reid.methods import base
    from reid.methods.baseline import Baseline

    monkeypatch.setitem(
        optim.OPTIMIZERS, "rmsprop", lambda g, lr, betas, momentum, fused: torch.optim.RMSprop(g, lr=lr)
    )
    validate_config(_demo_with("method.stage2.optimizer.name=rmsprop"))
    assert _error("method.stage2.optimizer.name=lamb") == (
        "method.stage2.optimizer.name must be one of adam, adamw, sgd, rmsprop, got 'lamb'"
    )

    def constant(epoch: int, level: float) -> float:
        return level

    monkeypatch.setitem(schedules.SCHEDULES, "constant", (constant, 1))
    assert _error("method.stage2.scheduler.name=constant") == (
        "5 config errors:\n"
        "  method.stage2.scheduler.level is required by the constant scheduler\n"
        + "".join(f"  method.stage2.scheduler.{k} is not a parameter of the constant scheduler (it takes level)\n"
                  for k in ("gamma", "milestones", "warmup_epochs", "warmup_factor"))
    ).rstrip("\n")

    class Tiny(Baseline):
        name = "tiny_method"

    monkeypatch.setitem(base._METHODS, "tiny_method", Tiny)
    validate_config(_demo_with("method.name=tiny_method"))
    assert "tiny_method" in _error("method.name=nosuch")


def test_pipeline_validates_before_touching_anything(tmp_path: Path) -> None:
    """reid.pipeline.train (the API the tests and notebooks call) validates first: no run folder, no data."""
    from reid.pipeline import train

    run_dir, data_dir = tmp_path / "run", tmp_path / "data"
    cfg = _cfg(
        "experiment=demo", "logger=none", f"paths.output_dir={run_dir}", f"paths.data_dir={data_dir}",
        f"paths.root_dir={ROOT}", "method.stage2.num_instances=64",
    )
    too_many = r"^method.stage2.num_instances must be <= method.stage2.batch_size \(32\), got 64$"
    with pytest.raises(ConfigError, match=too_many):
        train(cfg)
    assert not run_dir.exists() and not data_dir.exists()


# ------------------------------------------------------------------------------ the command line, end to end


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (("method.stage2.batch_size=abc",),
         ["method.stage2.batch_size has the wrong type: Value 'abc' of type 'str' could not be converted to Integer"]),
        # Value problems are collected: one invocation checks four of them.
        (("method.stage2.optimizer.lr=-0.001", "method.stage2.num_instances=64", "dataset.name=nosuch",
          "precision=fp8"),
         ["4 config errors:",
          "precision must be one of fp32, bf16, fp16, got 'fp8'",
          "dataset.name must be one of dukemtmc, folder, market1501, msmt17, occ_duke, synthetic, vehicleid, veri776, "
          "got 'nosuch'",
          "method.stage2.optimizer.lr must be > 0, got -0.001",
          "method.stage2.num_instances must be <= method.stage2.batch_size (32), got 64"]),
    ],
    ids=["wrong type", "negative lr, K > batch, unknown dataset, bad precision"],
)
def test_command_line_fails_fast_naming_the_key_and_touches_no_data(
    overrides: tuple[str, ...], messages: list[str], tmp_path: Path
) -> None:
    data_dir, model_dir, run_dir = tmp_path / "data", tmp_path / "models", tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "reid.train", "experiment=demo", "logger=none", f"paths.data_dir={data_dir}",
         f"paths.model_dir={model_dir}", f"hydra.run.dir={run_dir}", *overrides],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]  # a user error: one message, no traceback
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr, done.stderr[-3000:]
    for message in messages:
        assert message in done.stderr, done.stderr[-3000:]
    assert not data_dir.exists() and not model_dir.exists()  # no world generated, no backbone pretrained
    assert not (run_dir / "checkpoints").exists()
