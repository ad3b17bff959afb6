"""Hydra callback that gives every multirun one MLflow parent run and nests each job's run under it.

Registered in conf/train.yaml's ``hydra.callbacks`` so it is on for every multirun; for single runs and for
``logger=none`` it does nothing (apart from making the resumable Optuna sweeper known to Hydra, which sweeps need
whatever the logger).

How the pieces meet, in every launcher:

* ``on_multirun_start`` (the sweeping process) creates the parent run and exports its id as
  :data:`reid.tracking.PARENT_RUN_ENV`, which ``reid.pipeline.train`` reads. The basic launcher runs jobs in this
  process; the joblib launcher's loky/multiprocessing workers are started later by this process and inherit it.
* The id is also kept on this object, which Hydra ships (pickled inside its HydraContext) to wherever jobs run, and
  ``on_job_start`` (the job's process) sets the variable again there, so workers reused from an earlier sweep or
  remote launchers get the right parent as well. It also hands the job's own overrides (params ``override.<key>``)
  and, for Optuna, the trial number and study name (tags) to the run the job is about to create
  (:data:`reid.tracking.mlflow_tracker.RUN_TAGS_ENV` / ``RUN_PARAMS_ENV``), so they are on the run even if it dies.
* ``on_multirun_end`` (the sweeping process) records the best child by the objective on the parent and, for Optuna
  studies, the study's summary, trials table and optimisation-history / parameter-importance plots.

Runs left RUNNING by a sweep that was killed (``reid.host`` = this machine, ``reid.pid`` no longer alive) are
marked KILLED when the next sweep starts.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from reid.tracking import OPTUNA_STUDY_ENV, OPTUNA_TRIAL_ENV, PARENT_RUN_ENV
from reid.tracking.host import machine_id, process_alive
from reid.tracking.run_info import git_commit, search_all_runs

log = logging.getLogger(__name__)

HOST_TAG = "reid.host"
PID_TAG = "reid.pid"
ROLE_TAG = "reid.sweep"
STUDY_TAG = "optuna.study_name"
TRIAL_TAG = "optuna.trial_number"
OVERRIDE_PREFIX = "override."
SWEPT_KEYS_ENV = "REID_SWEPT_KEYS"  # JSON list of the keys a basic multirun varies, for the children's run names
PARENT_FILTER = "tags.mlflow.parentRunId = '{}'"
_STOCK_OPTUNA = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def parse_override(line: str) -> tuple[str, str]:
    """``+a.b=1`` -> (``a.b``, ``1``); ``~a.b`` -> (``a.b``, ``~deleted``); keys never contain ``=``."""
    key, sep, value = line.partition("=")
    if key.startswith("~"):
        return key.lstrip("~"), value if sep else "~deleted"
    return key.lstrip("+"), value


def job_override_params(lines: Sequence[str]) -> dict[str, str]:
    """A job's overrides as ``override.<key>`` params, values parsed and written as the config params write them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = {}
    for o in OverridesParser.create().parse_overrides(list(lines)):
        key = o.key_or_group if o.package is None else f"{o.key_or_group}@{o.package}"
        params[f"{OVERRIDE_PREFIX}{key}"] = "~deleted" if o.is_delete() else str(o.value())
    return params


def swept_keys(lines: Sequence[str]) -> list[str]:
    """The keys a multirun command line varies (``seed=1,2,3``, ``lr=range(1,3)``, ``ssl=choice(none,simclr)``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return [o.key_or_group for o in OverridesParser.create().parse_overrides(list(lines)) if o.is_sweep_override()]


def child_run_suffix(override_params: dict[str, str], job_num: Any, trial: Any = None) -> str:
    """What tells sibling runs apart in the MLflow runs list: ``trial 7`` (Optuna) or the swept values (``seed=2``).

    ``override_params``: the job's :func:`job_override_params`; the swept keys come from the sweeping process.
    """
    if trial is not None:
        return f"trial {trial}"
    keys = json.loads(os.environ.get(SWEPT_KEYS_ENV, "[]"))
    own = {k[len(OVERRIDE_PREFIX):]: v for k, v in override_params.items()}
    return " ".join(f"{k}={own[k]}" for k in keys if k in own) or f"#{job_num}"


def is_optuna(config: DictConfig) -> bool:
    """Optuna sweepers (stock or resumable) have a ``study_name`` key; the basic sweeper has none."""
    return OmegaConf.select(config, "hydra.sweeper.study_name", default="__absent__") != "__absent__"


def objective_direction(config: DictConfig) -> str:
    """The sweeper's direction for the objective (Optuna), else ``maximize`` (the objective is mAP)."""
    if not is_optuna(config):
        return "maximize"
    direction: Any = OmegaConf.to_container(config.hydra.sweeper, resolve=True).get("direction", "maximize")
    if isinstance(direction, (list, tuple)):
        direction = direction[0]
    name = direction.name if isinstance(direction, Enum) else str(direction)
    return "minimize" if "minimize" in name else "maximize"


def redact_url(url: Any) -> str:
    """A storage URL with its password hidden (sqlite/in-memory unchanged)."""
    if not isinstance(url, str):
        return str(url)
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class MlflowSweepCallback(Callback):
    """One MLflow parent run per multirun; see the module docstring for the hand-over across launchers."""

    def __init__(self, objective: str, summary_metrics: Sequence[str], artifact_dir: str) -> None:
        self.objective = str(objective)
        self.summary_metrics = [str(m) for m in summary_metrics]
        self.artifact_dir = str(artifact_dir)
        self.parent_run_id: str | None = None
        self.tracking_uri: str | None = None
        self._previous_parent: str | None = None

    # ------------------------------------------------------------------ sweeping process
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "logger.kind") != "mlflow":
            return
        from reid.tracking.mlflow_tracker import MlflowTracker

        tracker = MlflowTracker(config.logger.tracking_uri, config.logger.experiment_name)
        self.tracking_uri = str(config.logger.tracking_uri)
        optuna_sweep = is_optuna(config)
        name = f"{config.task_name}-{'optuna' if optuna_sweep else 'multirun'}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.parent_run_id = tracker.start(name, self._parent_tags(config, optuna_sweep))
        tracker.log_params(self._parent_params(config, optuna_sweep))
        self._previous_parent = os.environ.get(PARENT_RUN_ENV)
        os.environ[PARENT_RUN_ENV] = self.parent_run_id
        os.environ[SWEPT_KEYS_ENV] = json.dumps([] if optuna_sweep else swept_keys(config.hydra.overrides.task))
        killed = self._mark_stale_runs_killed(tracker.client, tracker.experiment_id)
        log.info(f"MLflow parent run {self.parent_run_id} ({name}); marked {len(killed)} stale runs KILLED")

    def _parent_tags(self, config: DictConfig, optuna_sweep: bool) -> dict[str, str]:
        sweeper, launcher = config.hydra.sweeper, config.hydra.launcher
        tags = {
            ROLE_TAG: "parent",
            "git_commit": git_commit(config.paths.root_dir),
            "task_name": str(config.task_name),
            "dataset": str(config.dataset.name),
            "backbone": str(config.backbone.name),
            "method": str(config.method.name),
            "ssl": str(config.ssl.name),
            "sweeper": str(sweeper._target_),
            "launcher": str(launcher._target_),
            "sweep_dir": str(config.hydra.sweep.dir),
            HOST_TAG: machine_id(),
            PID_TAG: str(os.getpid()),
        }
        if optuna_sweep:
            tags[STUDY_TAG] = str(sweeper.study_name)
            tags["optuna.storage"] = redact_url(sweeper.storage)
        return tags

    def _parent_params(self, config: DictConfig, optuna_sweep: bool) -> dict[str, str]:
        """The sweep's command-line override lists and search space, plus the Optuna settings."""
        params = dict(parse_override(line) for line in config.hydra.overrides.task)
        params = {f"sweep.{k}": v for k, v in params.items()}
        for key, space in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items():
            params[f"sweeper.params.{key}"] = str(space)
        if optuna_sweep:
            s = config.hydra.sweeper
            params.update({
                "sweeper.direction": objective_direction(config),
                "sweeper.n_trials": str(s.n_trials),
                "sweeper.n_jobs": str(s.n_jobs),
                "sweeper.max_failure_rate": str(s.max_failure_rate),
                "sweeper.sampler": str(s.sampler._target_),
                "sweeper.sampler.seed": str(OmegaConf.select(s, "sampler.seed")),
                "sweeper.study_name": str(s.study_name),
            })
        return params

    def _mark_stale_runs_killed(self, client: Any, experiment_id: str) -> list[str]:
        """RUNNING runs started on this machine by a process that is gone (a killed sweep) -> KILLED."""
        host = machine_id()
        query = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
        killed = []
        for run in search_all_runs(client, experiment_id, query):
            pid = run.data.tags.get(PID_TAG)
            if run.info.run_id != self.parent_run_id and pid is not None and not process_alive(int(pid)):
                client.set_tag(run.info.run_id, "reid.killed_detected_by", self.parent_run_id)
                client.set_terminated(run.info.run_id, status="KILLED")
                killed.append(run.info.run_id)
        return killed

    # ------------------------------------------------------------------ job process
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        parent = self.parent_run_id or os.environ.get(PARENT_RUN_ENV)
        if not parent or OmegaConf.select(config, "logger.kind") != "mlflow":
            return
        from reid.tracking.mlflow_tracker import RUN_NAME_SUFFIX_ENV, RUN_PARAMS_ENV, RUN_TAGS_ENV

        os.environ[PARENT_RUN_ENV] = parent
        tags = {
            ROLE_TAG: "child",
            "hydra.job.num": str(config.hydra.job.num),
            HOST_TAG: machine_id(),
            PID_TAG: str(os.getpid()),
        }
        if is_optuna(config):
            env_set = config.hydra.job.env_set
            tags[STUDY_TAG] = str(env_set.get(OPTUNA_STUDY_ENV, config.hydra.sweeper.study_name))
            trial = env_set.get(OPTUNA_TRIAL_ENV)
            if trial is None and config.hydra.sweeper._target_ == _STOCK_OPTUNA:
                # The stock sweeper numbers jobs from 0 in each invocation: equal to the trial number only in a
                # fresh study driven by one process (the resumable sweeper passes the real number instead).
                trial = config.hydra.job.num
            if trial is not None:
                tags[TRIAL_TAG] = str(trial)
        params = job_override_params(config.hydra.overrides.task)
        os.environ[RUN_NAME_SUFFIX_ENV] = child_run_suffix(params, config.hydra.job.num, tags.get(TRIAL_TAG))
        os.environ[RUN_TAGS_ENV] = json.dumps(tags)
        os.environ[RUN_PARAMS_ENV] = json.dumps(params)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from reid.tracking.mlflow_tracker import RUN_NAME_SUFFIX_ENV, RUN_PARAMS_ENV, RUN_TAGS_ENV

        for name in (RUN_TAGS_ENV, RUN_PARAMS_ENV, RUN_NAME_SUFFIX_ENV):
            os.environ.pop(name, None)

    # ------------------------------------------------------------------ sweeping process, at the end
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_run_id is None:
            return
        from mlflow.tracking import MlflowClient

        from reid.tracking.mlflow_tracker import call_with_retries
        from reid.tracking.retry import end_wait_s

        error = sys.exc_info()[1]  # Hydra calls this from a `finally`: the sweep's exception, if any
        client = MlflowClient(self.tracking_uri)
        children: list[Any] = []
        try:
            # A tracking server that is away (restarting) is waited for, as each job's run waits for it at its end.
            experiment_id = call_with_retries(
                lambda: client.get_run(self.parent_run_id).info.experiment_id, end_wait_s(), "the sweep's summary",
                self.tracking_uri,
            )
            children = list(search_all_runs(client, experiment_id, PARENT_FILTER.format(self.parent_run_id)))
            self._record_best(client, config, children)
            if is_optuna(config):
                self._record_study(client, config)
        finally:
            all_failed = bool(children) and not any(c.info.status == "FINISHED" for c in children)
            status = (
                "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED" if error or all_failed else "FINISHED"
            )
            client.set_terminated(self.parent_run_id, status=status)
            if self._previous_parent is None:
                os.environ.pop(PARENT_RUN_ENV, None)
            else:
                os.environ[PARENT_RUN_ENV] = self._previous_parent
            self.parent_run_id = None

    def _record_best(self, client: Any, config: DictConfig, children: list[Any]) -> None:
        """Counts of children by status, and the best child's id, overrides and summary metrics."""
        counts = {"children": len(children)}
        for status in ("FINISHED", "FAILED", "KILLED"):
            counts[f"children_{status.lower()}"] = sum(c.info.status == status for c in children)
        _log_metrics(client, self.parent_run_id, counts)
        scored = [c for c in children if c.info.status == "FINISHED" and self.objective in c.data.metrics]
        if not scored:
            client.set_tag(self.parent_run_id, "best_run_id", "none (no child finished)")
            return
        pick = min if objective_direction(config) == "minimize" else max
        best = pick(scored, key=lambda c: c.data.metrics[self.objective])
        _log_metrics(client, self.parent_run_id, {
            f"best_{m}": best.data.metrics[m] for m in self.summary_metrics if m in best.data.metrics
        })
        swept = sorted(
            k for k in {k for c in children for k in c.data.params if k.startswith(OVERRIDE_PREFIX)}
            if len({c.data.params.get(k) for c in children}) > 1 or len(children) == 1
        )
        overrides = " ".join(
            f"{k[len(OVERRIDE_PREFIX) :]}={best.data.params[k]}" for k in swept if k in best.data.params
        )
        client.set_tag(self.parent_run_id, "best_run_id", best.info.run_id)
        client.set_tag(self.parent_run_id, "best_overrides", overrides)  # the overrides that differ between children
        if TRIAL_TAG in best.data.tags:
            client.set_tag(self.parent_run_id, f"best_{TRIAL_TAG}", best.data.tags[TRIAL_TAG])

    def _record_study(self, client: Any, config: DictConfig) -> None:
        """Study summary, trials table and plots on the parent (the study may span several sweeps)."""
        import optuna

        s = config.hydra.sweeper
        if s.storage is None or s.study_name is None:
            client.set_tag(self.parent_run_id, "optuna.summary_skipped", "in-memory or unnamed study: nothing to load")
            return
        study = optuna.load_study(study_name=str(s.study_name), storage=str(s.storage))
        trials = study.get_trials(deepcopy=False)
        states = optuna.trial.TrialState
        complete = [t for t in trials if t.state == states.COMPLETE]
        _log_metrics(client, self.parent_run_id, {
            "study_trials": len(trials),
            "study_trials_complete": len(complete),
            "study_trials_failed": sum(t.state == states.FAIL for t in trials),
        })
        out = Path(str(config.hydra.sweep.dir)) / self.artifact_dir
        out.mkdir(parents=True, exist_ok=True)
        if trials:
            study.trials_dataframe().to_csv(out / "trials.csv", index=False)
        if complete and len(study.directions) == 1:
            _log_metrics(client, self.parent_run_id, {"study_best_value": study.best_value})
            client.set_tag(self.parent_run_id, "study_best_trial", str(study.best_trial.number))
            client.set_tag(self.parent_run_id, "study_best_params", json.dumps(study.best_params, sort_keys=True))
        for name, reason in save_study_plots(study, out).items():
            if reason:
                client.set_tag(self.parent_run_id, f"optuna.{name}_skipped", reason)
        client.log_artifacts(self.parent_run_id, str(out), self.artifact_dir)


def save_study_plots(study: Any, out: Path) -> dict[str, str]:
    """Optimisation history (>= 2 complete trials) and parameter importances (also >= 2 parameters that varied).

    Returns plot name -> reason it was skipped ('' when saved as ``<out>/<name>.png``).
    """
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = {p for t in complete for p in t.params}
    varied = [p for p in sorted(names) if len({repr(t.params.get(p)) for t in complete}) > 1]
    plots = {"optimization_history": ovm.plot_optimization_history, "param_importances": ovm.plot_param_importances}
    reasons = {name: "" for name in plots}
    if len(complete) < 2:
        return {name: f"needs >= 2 complete trials, the study has {len(complete)}" for name in plots}
    if len(varied) < 2:
        reasons["param_importances"] = f"needs >= 2 parameters that varied, got {varied}"
    for name, plot in plots.items():
        if reasons[name]:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ax = plot(study)
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.savefig(out / f"{name}.png", bbox_inches="tight")
        plt.close(fig)
    return reasons


def _log_metrics(client: Any, run_id: str | None, metrics: dict[str, float]) -> None:
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), stamp, 0) for k, v in metrics.items()])
