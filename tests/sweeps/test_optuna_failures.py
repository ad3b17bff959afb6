"""A trial whose training raises is a FAIL trial (Optuna) and a FAILED run (MLflow), and the sweep goes on."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from reid.engine.faults import INJECT_NONFINITE_ENV
from reid.tracking.optuna_resume import ERROR_ATTR

VAL_SPLIT = "dataset.options.val_fraction=0.2"  # the preset's split (objective val/mAP); TINY_WORLD turns it off

if TYPE_CHECKING:
    from conftest import SweepEnv


def test_raising_trial_fails_and_the_sweep_goes_on(sweep_env: SweepEnv, tmp_path: Path) -> None:
    experiment = "optuna-failures"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = "failures"
    # Every job's first stage-2 step has a NaN loss (a valid config that fails at run time); a two-point grid over
    # what to do about it: "stop" makes the trial raise NonFiniteLossError, "skip" trains on and finishes.
    cmd = sweep_env.command(
        experiment, tmp_path / "sweep", "hparams_search=lr_warmup", VAL_SPLIT, f"optuna_storage={storage}",
        f"hydra.sweeper.study_name={study}", "hydra/sweeper/sampler=grid", "nonfinite.action=choice(stop,skip)",
        "method.stage2.optimizer.lr=3.5e-4", "method.stage2.scheduler.warmup_epochs=1",
        f"++hydra.job.env_set.{INJECT_NONFINITE_ENV}=stage2:1:1",
    )
    sweep_env.run(cmd)  # exits 0: max_failure_rate=1.0 in the presets

    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    assert len(trials) == 2
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    complete = next(t for t in trials if t.state == TrialState.COMPLETE)
    assert failed.params["nonfinite.action"] == "stop"
    assert failed.user_attrs[ERROR_ATTR].startswith(
        "NonFiniteLossError: non-finite loss term 'loss' at stage2 epoch 1 step 1"
    )
    assert complete.params["nonfinite.action"] == "skip" and 0.0 <= complete.value <= 1.0

    runs = sweep_env.runs(experiment)
    parent = next(r for r in runs if r.data.tags.get("reid.sweep") == "parent")
    children = {
        int(r.data.tags["optuna.trial_number"]): r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert len(runs) == 3 and sorted(children) == sorted(t.number for t in trials)
    assert children[failed.number].info.status == "FAILED"
    assert children[failed.number].data.params["override.nonfinite.action"] == "stop"
    assert "mAP" not in children[failed.number].data.metrics
    assert children[complete.number].info.status == "FINISHED"
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["best_run_id"] == children[complete.number].info.run_id
    assert parent.data.metrics["children_failed"] == 1 and parent.data.metrics["children_finished"] == 1
    assert parent.data.metrics["study_trials_failed"] == 1
    assert parent.data.params["sweeper.sampler"] == "optuna.samplers.GridSampler"
    # One complete trial: no history or importance plot, and the parent says why.
    assert parent.data.tags["optuna.optimization_history_skipped"].startswith("needs >= 2 complete trials")
    assert parent.data.tags["optuna.param_importances_skipped"].startswith("needs >= 2 complete trials")
