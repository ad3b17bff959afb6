"""An Optuna sweep killed mid-trial and re-run with the same command ends with exactly n_trials COMPLETE trials.

Once on SQLite and once on PostgreSQL (the storage several machines share). The kill is SIGKILL of the whole
process group while the second trial runs (held at its first step by the run's test barrier, so the kill never races
the trial's progress): no cleanup code runs, the trial stays RUNNING in the study and its
MLflow runs stay RUNNING, as after a crashed machine. The re-run must reclaim that trial (FAIL, marked interrupted,
its parameters retried), not replay the first run's sampler draws, and run only the remaining trials.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest
from optuna.trial import TrialState

from reid.tracking.optuna_resume import INTERRUPTED_ATTR, OWNER_PID_ATTR, RETRY_OF_ATTR
from tests.shared import HoldBarrier

VAL_SPLIT = "dataset.options.val_fraction=0.2"  # the preset's split (objective val/mAP); TINY_WORLD turns it off

if TYPE_CHECKING:
    from conftest import SweepEnv

N_TRIALS = 3
STUDY = "resume"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    return request.getfixturevalue("postgres_server").create_database("optuna_resume")


def test_killed_study_resumes_to_exactly_n_trials(sweep_env: SweepEnv, storage_url: str, tmp_path: Path) -> None:
    backend = storage_url.split(":")[0].split("+")[0]
    experiment = f"optuna-resume-{backend}"
    cmd = sweep_env.command(
        experiment, tmp_path / "sweep", "hparams_search=lr_warmup", VAL_SPLIT, f"optuna_storage={storage_url}",
        f"hydra.sweeper.study_name={STUDY}", f"hydra.sweeper.n_trials={N_TRIALS}",
    )
    storage = optuna.storages.RDBStorage(storage_url)  # schema made here, before the sweep runs

    def study_trials() -> list[optuna.trial.FrozenTrial]:
        if STUDY not in {s.study_name for s in storage.get_all_studies()}:
            return []
        return optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)

    log = tmp_path / "first.log"
    barrier = HoldBarrier(tmp_path / "hold")
    proc = sweep_env.start(cmd, log, env=barrier.env("stage2:1:1", trial=1))  # trial 1 waits before its first step
    try:
        held = barrier.wait_held(proc, log)
    finally:
        sweep_env.kill(proc)
    assert held["stage"] == "stage2" and held["epoch"] == 1 and held["step"] == 1
    killed = {t.number: t for t in study_trials()}
    stale = [t for t in killed.values() if t.state == TrialState.RUNNING]
    assert [t.number for t in stale] == [1] and OWNER_PID_ATTR in stale[0].user_attrs
    assert [t.number for t in killed.values() if t.state == TrialState.COMPLETE] == [0]

    sweep_env.run(cmd)  # the same command again

    trials = study_trials()
    by_state = {s: [t for t in trials if t.state == s] for s in TrialState}
    complete = by_state[TrialState.COMPLETE]
    assert len(complete) == N_TRIALS
    assert len({tuple(sorted(t.params.items())) for t in complete}) == N_TRIALS  # no replayed duplicates
    assert [t.number for t in by_state[TrialState.FAIL]] == [stale[0].number]
    assert INTERRUPTED_ATTR in by_state[TrialState.FAIL][0].user_attrs
    retry = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == stale[0].number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == stale[0].params
    assert len(trials) == N_TRIALS + 1 and not by_state[TrialState.RUNNING] and not by_state[TrialState.WAITING]
    for t in complete:  # trials of the first run are untouched
        if t.number in killed:
            assert killed[t.number].state == TrialState.COMPLETE and killed[t.number].value == t.value

    # MLflow: two parents; the killed sweep's leftovers are KILLED, nothing is left RUNNING.
    runs = sweep_env.runs(experiment)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    parents = sorted((r for r in runs if r.data.tags.get("reid.sweep") == "parent"), key=lambda r: r.info.start_time)
    assert [p.info.status for p in parents] == ["KILLED", "FINISHED"]
    first, second = parents

    def children(parent) -> list:
        return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]

    first_children = {int(r.data.tags["optuna.trial_number"]): r.info.status for r in children(first)}
    assert first_children.get(0) == "FINISHED" and first_children.get(stale[0].number, "KILLED") == "KILLED"
    second_children = children(second)
    ran_now = sorted(t.number for t in complete if t.number not in killed)
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in second_children) == ran_now
    for r in second_children:
        assert r.info.run_name.endswith(f" trial {r.data.tags['optuna.trial_number']}")
        trial = next(t for t in trials if t.number == int(r.data.tags["optuna.trial_number"]))
        assert r.info.status == "FINISHED" and r.data.tags["optuna.study_name"] == STUDY
        # the presets select on the validation split: the trial's value is the child's val/mAP, never its test mAP
        assert r.data.metrics["val/mAP"] == pytest.approx(trial.value) and "mAP" in r.data.metrics
        for name, value in trial.params.items():
            assert float(r.data.params[f"override.{name}"]) == pytest.approx(float(value))
    # The parent summarises the whole study, not only this invocation's trials.
    assert second.data.metrics["study_trials_complete"] == N_TRIALS
    assert second.data.metrics["study_best_value"] == pytest.approx(max(t.value for t in complete))
    chosen = max(second_children, key=lambda r: r.data.metrics["val/mAP"])  # best by the objective; mAP is reported
    assert second.data.metrics["best_mAP"] == pytest.approx(chosen.data.metrics["mAP"])

    # The study's plots and trials table are artifacts of the parent; importances need two parameters that varied.
    from mlflow.tracking import MlflowClient

    files = {Path(a.path).name for a in MlflowClient(sweep_env.mlflow_uri).list_artifacts(second.info.run_id, "optuna")}
    varied = [name for name in complete[0].params if len({t.params[name] for t in complete}) > 1]
    expected = {"trials.csv", "optimization_history.png"} | ({"param_importances.png"} if len(varied) >= 2 else set())
    assert files == expected
    assert ("optuna.param_importances_skipped" in second.data.tags) == (len(varied) < 2)
