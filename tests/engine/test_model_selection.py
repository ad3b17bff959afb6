"""With a validation split the run evaluates validation every epoch, tests once at the end, can keep the best
validation epoch's weights, returns the configured objective, and warns a study that optimises a test metric."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from reid.config import ConfigError, validate_config
from reid.tracking import OPTUNA_TRIAL_ENV

ROOT = Path(__file__).resolve().parents[2]
WORLD = ("dataset.options.num_train_ids=10", "dataset.options.num_test_ids=8", "dataset.options.num_distractors=8",
         "dataset.options.num_junk=8")


def _cfg(tmp_path: Path, *overrides: str):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with initialize_config_dir(str(ROOT / "conf")):
        return compose("train", overrides=[
            "experiment=demo", "debug=fast", "backbone=clip_tiny", "method=baseline", "eval.plots=false",
            "method.stage2.batch_size=16", "limits.epochs=3", *WORLD, "dataset.options.val_fraction=0.3",
            "eval.val_period=1",  # every epoch (the demo validates every 5)
            f"paths.data_dir={tmp_path / 'data'}", f"paths.model_dir={tmp_path / 'models'}", f"paths.root_dir={ROOT}",
            f"paths.output_dir={tmp_path / 'run'}", "logger=mlflow", f"logger.tracking_uri={uri}",
            "logger.experiment_name=selection", *overrides,
        ]), uri


def _run(uri: str):
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("selection").experiment_id])[0]
    return client, run


def test_validation_every_epoch_test_once_best_epoch_kept(tmp_path):
    from reid.pipeline import train

    cfg, uri = _cfg(tmp_path, "objective=val/mAP", "eval.select_best=val/mAP")
    returned = train(cfg)
    client, run = _run(uri)
    val = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val/mAP")]
    test = client.get_metric_history(run.info.run_id, "mAP")
    assert [s for s, _ in val] == [1, 2, 3] and len(test) == 1  # validation each epoch; the test split once
    best_step, best = max(val, key=lambda sv: (sv[1], -sv[0]))
    assert run.data.metrics["best_epoch"] == best_step and run.data.metrics["best/val/mAP"] == pytest.approx(best)
    assert returned == pytest.approx(best)  # what a sweeper sees: validation, never test
    final = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert final["metrics"]["val/mAP"] == pytest.approx(best)
    assert final["metrics"]["mAP"] == pytest.approx(test[0].value)


def test_a_study_on_a_test_metric_is_warned_and_tagged(tmp_path, monkeypatch, capsys):
    from reid.pipeline import train

    monkeypatch.setenv(OPTUNA_TRIAL_ENV, "0")
    cfg, uri = _cfg(tmp_path, "objective=mAP", "limits.epochs=1")
    train(cfg)
    assert "WARNING: this Optuna trial optimises mAP of the test split" in capsys.readouterr().out
    _, run = _run(uri)
    assert "optimises mAP of the test split" in run.data.tags["config_warnings"]


def test_validation_metrics_need_a_validation_split(tmp_path):
    cfg, _ = _cfg(tmp_path, "dataset.options.val_fraction=0.0", "objective=val/mAP", "eval.select_best=val/mAP")
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert "objective must be a test metric (mAP, rank1, ...) without a validation split" in str(err.value)
    assert ("eval.select_best must be a validation metric (val/mAP, val/rank1, ...) of a validation split "
            "(dataset.options.val_fraction > 0), got 'val/mAP'") in str(err.value)
