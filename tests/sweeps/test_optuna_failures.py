"""A trial whose training raises is a FAIL trial (Optuna) and a FAILED run (MLflow), and the sweep goes on."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from reid.tracking.optuna_resume import ERROR_ATTR

if TYPE_CHECKING:
    from conftest import SweepEnv

BAD_LR, GOOD_LR = -1.0e-3, 3.5e-4


def test_raising_trial_fails_and_the_sweep_goes_on(sweep_env: SweepEnv, tmp_path: Path) -> None:
    experiment = "optuna-failures"
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = "failures"
    # A two-point grid over the learning rate: the negative one makes the optimiser raise ValueError.
    cmd = sweep_env.command(
        experiment, tmp_path / "sweep", "hparams_search=lr_warmup", f"optuna_storage={storage}",
        f"hydra.sweeper.study_name={study}", "hydra/sweeper/sampler=grid",
        f"method.stage2.optimizer.lr=choice({BAD_LR},{GOOD_LR})", "method.stage2.scheduler.warmup_epochs=1",
    )
    sweep_env.run(cmd)  # exits 0: max_failure_rate=1.0 in the presets

    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    assert len(trials) == 2
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    complete = next(t for t in trials if t.state == TrialState.COMPLETE)
    assert failed.params["method.stage2.optimizer.lr"] == BAD_LR
    assert failed.user_attrs[ERROR_ATTR].startswith("ValueError") and "learning rate" in failed.user_attrs[ERROR_ATTR]
    assert complete.params["method.stage2.optimizer.lr"] == GOOD_LR and 0.0 <= complete.value <= 1.0

    runs = sweep_env.runs(experiment)
    parent = next(r for r in runs if r.data.tags.get("reid.sweep") == "parent")
    children = {int(r.data.tags["optuna.trial_number"]): r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert len(runs) == 3 and sorted(children) == sorted(t.number for t in trials)
    assert children[failed.number].info.status == "FAILED"
    assert float(children[failed.number].data.params["override.method.stage2.optimizer.lr"]) == BAD_LR
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
