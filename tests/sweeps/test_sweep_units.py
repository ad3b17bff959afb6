"""Fast, in-process checks of the sweep callback's hand-over and of the resumable sweeper's bookkeeping."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from hydra.core.plugins import Plugins
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from reid.tracking import OPTUNA_STUDY_ENV, OPTUNA_TRIAL_ENV, PARENT_RUN_ENV
from reid.tracking.mlflow_tracker import RUN_NAME_SUFFIX_ENV, RUN_PARAMS_ENV, RUN_TAGS_ENV, MlflowTracker
from reid.tracking.optuna_resume import (
    INTERRUPTED_ATTR,
    OWNER_HOST_ATTR,
    OWNER_PID_ATTR,
    RETRY_OF_ATTR,
    ResumableOptunaSweeper,
    consecutive_groups,
    ensure_sqlite_parent,
    reclaim_stale_trials,
    trials_used,
)
from reid.tracking.sweep_callback import (
    SWEPT_KEYS_ENV,
    MlflowSweepCallback,
    child_run_suffix,
    job_override_params,
    machine_id,
    objective_direction,
    parse_override,
    save_study_plots,
    swept_keys,
)

RESUMABLE = "reid.tracking.optuna_resume.ResumableOptunaSweeper"
SPACE = {"x": FloatDistribution(0.0, 1.0), "y": FloatDistribution(0.0, 1.0)}


@pytest.fixture(autouse=True)
def no_sweep_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without a sweep context in the environment (and leaves none behind)."""
    for name in (PARENT_RUN_ENV, RUN_TAGS_ENV, RUN_PARAMS_ENV, RUN_NAME_SUFFIX_ENV, SWEPT_KEYS_ENV, OPTUNA_TRIAL_ENV,
                 OPTUNA_STUDY_ENV):
        monkeypatch.delenv(name, raising=False)


def callback() -> MlflowSweepCallback:
    return MlflowSweepCallback(objective="mAP", summary_metrics=["mAP", "rank1"], artifact_dir="optuna")


def job_config(logger: str = "mlflow", env_set: dict | None = None, sweeper: str = RESUMABLE) -> DictConfig:
    """The parts of a sweep job's config (with its hydra node) that the callback reads."""
    return OmegaConf.create({
        "logger": {"kind": logger},
        "hydra": {
            "job": {"num": 3, "env_set": env_set or {}},
            "overrides": {"task": ["ssl.weight=0.5", "+dataset.options.num_train_ids=8", "eval.plots=false",
                                   "logger.tracking_uri=sqlite\\:////tmp/x.db", "~eval.k1"]},
            "sweeper": {"_target_": sweeper, "study_name": "from-config", "direction": "maximize"},
        },
    })


def test_job_overrides_become_params_as_the_config_params_write_them() -> None:
    params = job_override_params(job_config().hydra.overrides.task)
    assert params == {
        "override.ssl.weight": "0.5",
        "override.dataset.options.num_train_ids": "8",
        "override.eval.plots": "False",
        "override.logger.tracking_uri": "sqlite:////tmp/x.db",
        "override.eval.k1": "~deleted",
    }
    assert parse_override("ssl.weight=0.1,0.5") == ("ssl.weight", "0.1,0.5")
    assert parse_override("+a.b=interval(0, 1)") == ("a.b", "interval(0, 1)")


def test_a_worker_gets_the_parent_and_the_trial_from_the_pickled_callback() -> None:
    """Joblib/submitit ship the callback pickled: its parent id alone must be enough in a fresh process."""
    sweeping = callback()
    sweeping.parent_run_id = "parent123"
    worker = pickle.loads(pickle.dumps(sweeping))
    env_set = {OPTUNA_TRIAL_ENV: "7", OPTUNA_STUDY_ENV: "the-study"}
    worker.on_job_start(config=job_config(env_set=env_set), task_function=lambda cfg: 0.0)
    assert os.environ[PARENT_RUN_ENV] == "parent123"
    tags = json.loads(os.environ[RUN_TAGS_ENV])
    assert tags["optuna.trial_number"] == "7" and tags["optuna.study_name"] == "the-study"
    assert tags["hydra.job.num"] == "3" and tags["reid.sweep"] == "child"
    assert tags["reid.pid"] == str(os.getpid()) and tags["reid.host"] == machine_id()
    assert json.loads(os.environ[RUN_PARAMS_ENV])["override.ssl.weight"] == "0.5"
    assert os.environ[RUN_NAME_SUFFIX_ENV] == "trial 7"
    worker.on_job_end(config=job_config(), job_return=None)
    assert not {RUN_TAGS_ENV, RUN_PARAMS_ENV, RUN_NAME_SUFFIX_ENV} & set(os.environ)


def test_child_runs_are_named_by_what_the_sweep_varies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert swept_keys(["seed=1,2,3", "experiment=demo", "lr=range(1,3)", "+x=1", "a=[1,2]", "b=interval(0,1)"]) == [
        "seed", "lr", "b"]
    cfg = job_config()  # this job's overrides: ssl.weight=0.5, +dataset.options.num_train_ids=8, ...
    own = job_override_params(cfg.hydra.overrides.task)
    monkeypatch.setenv(SWEPT_KEYS_ENV, json.dumps(["dataset.options.num_train_ids", "ssl.weight"]))
    assert child_run_suffix(own, 3) == "dataset.options.num_train_ids=8 ssl.weight=0.5"
    assert child_run_suffix(own, 3, trial="12") == "trial 12"
    monkeypatch.setenv(SWEPT_KEYS_ENV, "[]")  # nothing swept on the command line (e.g. only a launcher change)
    assert child_run_suffix(own, 3) == "#3"


def test_stock_optuna_sweeper_falls_back_to_the_job_number() -> None:
    cb = callback()
    cb.parent_run_id = "p"
    stock = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    cb.on_job_start(config=job_config(sweeper=stock), task_function=lambda cfg: 0.0)
    tags = json.loads(os.environ[RUN_TAGS_ENV])
    assert tags["optuna.trial_number"] == "3" and tags["optuna.study_name"] == "from-config"


def test_single_runs_and_logger_none_are_left_alone() -> None:
    cb = callback()
    cb.on_job_start(config=job_config(), task_function=lambda cfg: 0.0)  # a single run: no parent was made
    assert PARENT_RUN_ENV not in os.environ and RUN_TAGS_ENV not in os.environ
    cb.on_multirun_start(config=job_config(logger="none"))
    assert cb.parent_run_id is None and PARENT_RUN_ENV not in os.environ
    cb.on_multirun_end(config=job_config(logger="none"))
    assert RESUMABLE in Plugins.instance().class_name_to_class  # registered whatever the logger


def test_objective_direction_follows_the_optuna_sweeper() -> None:
    cfg = job_config()
    assert objective_direction(cfg) == "maximize"
    cfg.hydra.sweeper.direction = "minimize"
    assert objective_direction(cfg) == "minimize"
    del cfg.hydra.sweeper["study_name"]  # not an Optuna sweeper: mAP is maximised
    assert objective_direction(cfg) == "maximize"


def test_tracker_creates_the_run_with_the_callbacks_tags_and_params(
    mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RUN_TAGS_ENV, json.dumps({"optuna.trial_number": "4"}))
    monkeypatch.setenv(RUN_PARAMS_ENV, json.dumps({"override.ssl.weight": "0.5"}))
    monkeypatch.setenv(RUN_NAME_SUFFIX_ENV, "trial 4")
    tracker = MlflowTracker(mlflow_uri, "tracker-env")
    run_id = tracker.start("r", {"dataset": "synthetic"}, parent_run_id="p1")
    tracker.log_params({"ssl.weight": "0.5"})
    tracker.end()
    run = tracker.client.get_run(run_id)
    assert run.data.tags["optuna.trial_number"] == "4" and run.data.tags["dataset"] == "synthetic"
    assert run.data.tags["mlflow.parentRunId"] == "p1" and run.info.run_name == "r trial 4"
    assert run.data.params == {"override.ssl.weight": "0.5", "ssl.weight": "0.5"}


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(proc.stdout)


def running_trial(study: optuna.Study, host: str, pid: int) -> optuna.trial.Trial:
    trial = study.ask(SPACE)
    trial.set_user_attr(OWNER_HOST_ATTR, host)
    trial.set_user_attr(OWNER_PID_ATTR, pid)
    return trial


def test_reclaim_fails_and_retries_only_trials_whose_owner_here_is_gone() -> None:
    study = optuna.create_study(direction="maximize")
    host = machine_id()
    done = study.ask(SPACE)
    study.tell(done, 0.5)
    orphan = running_trial(study, host, dead_pid())
    alive = running_trial(study, host, os.getpid())
    elsewhere = running_trial(study, "another-machine", dead_pid())
    assert trials_used(study) == 4

    assert reclaim_stale_trials(study, host) == [orphan.number]
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL and INTERRUPTED_ATTR in trials[orphan.number].user_attrs
    assert trials[alive.number].state == TrialState.RUNNING and trials[elsewhere.number].state == TrialState.RUNNING
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].user_attrs[RETRY_OF_ATTR] == orphan.number
    assert trials_used(study) == 3  # the interrupted trial and its waiting retry do not count
    retry = study.ask(SPACE)
    assert retry.params == trials[orphan.number].params
    failed = study.ask(SPACE)
    study.tell(failed, state=TrialState.FAIL)  # a trial that raised counts
    assert trials_used(study) == 5


def test_launch_groups_keep_job_numbers_equal_to_trial_numbers() -> None:
    trials = [SimpleNamespace(number=n) for n in (4, 5, 6, 9, 11, 12)]
    assert [[t.number for t in g] for g in consecutive_groups(trials)] == [[4, 5, 6], [9], [11, 12]]


def test_sqlite_storage_folder_is_created(tmp_path: Path) -> None:
    ensure_sqlite_parent(f"sqlite:///{tmp_path}/a/b/optuna.db")
    assert (tmp_path / "a" / "b").is_dir()
    ensure_sqlite_parent("postgresql+psycopg://u@h:5432/db")  # not a file: nothing to make


def test_resumed_sampler_is_reseeded_past_the_stored_trials() -> None:
    sampler_cfg = OmegaConf.create({"_target_": "optuna.samplers.TPESampler", "seed": 11})
    sweeper = ResumableOptunaSweeper(sampler_cfg, "maximize", None, "s", 3, 1, 1.0, None, None)
    first = optuna.create_study(sampler=sweeper.sweeper.sampler).ask(SPACE).params
    again = optuna.create_study(sampler=sweeper.sweeper._reseeded_sampler(0)).ask(SPACE).params
    moved = optuna.create_study(sampler=sweeper.sweeper._reseeded_sampler(1)).ask(SPACE).params
    assert again == first and moved != first


def study_with(n: int, params: dict[str, FloatDistribution]) -> optuna.Study:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(n):
        t = study.ask(params)
        study.tell(t, sum(t.params.values()))
    return study


def test_study_plots_need_two_trials_and_two_varied_parameters(tmp_path: Path) -> None:
    one = save_study_plots(study_with(1, SPACE), tmp_path)
    assert all(r.startswith("needs >= 2 complete trials") for r in one.values()) and not list(tmp_path.iterdir())
    single = save_study_plots(study_with(3, {"x": SPACE["x"]}), tmp_path)
    assert single["optimization_history"] == "" and single["param_importances"].startswith("needs >= 2 parameters")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optimization_history.png"]
    both = save_study_plots(study_with(3, SPACE), tmp_path)
    assert both == {"optimization_history": "", "param_importances": ""}
    assert (tmp_path / "param_importances.png").stat().st_size > 0
