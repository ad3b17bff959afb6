"""The hparams_search presets compose, search keys that exist, and build the resumable sweeper through Hydra."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import FloatDistribution, IntDistribution

from reid.tracking.optuna_resume import ResumableOptunaSweeper, register_sweeper

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
PRESETS = {
    "clipreid_loss_weights": ({"loss.id_weight", "loss.triplet_weight", "loss.i2t_weight"}, "clipreid", "none"),
    "svll_ssl_weights": ({"ssl.weight", "ssl.lang_weight"}, "clipreid", "simclr"),
    "lr_warmup": ({"method.stage2.optimizer.lr", "method.stage2.scheduler.warmup_epochs"}, None, "none"),
}


def composed(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR)):
        cfg = compose("train", overrides=["experiment=demo", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:runtime.cwd} in the storage path
    return cfg


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_searches_existing_keys_with_a_resumable_maximising_study(preset: str) -> None:
    keys, method, ssl = PRESETS[preset]
    cfg = composed(f"hparams_search={preset}")
    s = cfg.hydra.sweeper
    assert s._target_ == "reid.tracking.optuna_resume.ResumableOptunaSweeper"
    assert s.direction == "maximize" and s.n_jobs == 1 and s.max_failure_rate == 1.0
    assert s.sampler._target_ == "optuna.samplers.TPESampler" and s.sampler.seed == cfg.seed
    assert OmegaConf.to_container(s, resolve=False)["storage"] == "${optuna_storage}"
    assert s.storage == cfg.optuna_storage == f"sqlite:///{cfg.paths.output_root}/optuna.db"
    assert s.study_name.startswith(preset) and "${" not in s.study_name
    assert cfg.ssl.name == ssl and cfg.method.name == (method or composed().method.name)  # None: the experiment's
    assert set(s.params) == keys
    for key in keys:  # a sweep override of a missing key would fail every trial
        assert OmegaConf.select(cfg, key) is not None, key
    space, fixed, _ = create_params_from_overrides([f"{k}={v}" for k, v in s.params.items()])
    assert set(space) == keys and not fixed
    for key, dist in space.items():
        assert isinstance(dist, FloatDistribution if "warmup" not in key else IntDistribution), key
    if preset == "lr_warmup":
        assert space["method.stage2.optimizer.lr"].log
        assert (
            space["method.stage2.scheduler.warmup_epochs"].low,
            space["method.stage2.scheduler.warmup_epochs"].high,
        ) == (0, 5)


def test_command_line_method_wins_over_the_preset() -> None:
    cfg = composed("hparams_search=clipreid_loss_weights", "method=baseline")
    assert cfg.method.name == "baseline"
    cfg = composed("hparams_search=lr_warmup", "method=baseline")
    assert cfg.hydra.sweeper.study_name.startswith("lr_warmup-baseline-")


def test_hydra_builds_the_resumable_sweeper_once_registered() -> None:
    cfg = composed("hparams_search=clipreid_loss_weights", "optuna_storage=sqlite:////tmp/elsewhere.db")
    register_sweeper()
    sweeper = Plugins.instance()._instantiate(cfg.hydra.sweeper)  # what Hydra's multirun calls
    assert isinstance(sweeper, ResumableOptunaSweeper)
    assert sweeper.sweeper.storage == "sqlite:////tmp/elsewhere.db" and sweeper.sweeper.n_trials == 20


def test_every_multirun_gets_the_mlflow_sweep_callback() -> None:
    cb = composed().hydra.callbacks.mlflow_sweep
    assert cb._target_ == "reid.tracking.sweep_callback.MlflowSweepCallback" and cb.objective == "mAP"
