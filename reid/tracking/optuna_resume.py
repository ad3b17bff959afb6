"""A resumable Optuna sweeper: re-running the same sweep command continues a stored study up to ``n_trials`` in all.

Why it exists: the stock hydra-optuna-sweeper 1.4 re-opens a stored study (``load_if_exists=True``) but then always
asks for ``n_trials`` *more* trials, leaves the trial that was running when the sweep was killed in state RUNNING
for ever, and restarts a seeded sampler from the same seed, so that a resumed sweep replays the first sweep's random
start-up draws as duplicate trials. This subclass keeps the stock config schema and search-space parsing and changes
only the loop:

* the budget is the study's total: ``n_trials`` minus the trials that already have an outcome (COMPLETE, PRUNED,
  FAIL) or are RUNNING on some machine, recounted before every batch so that machines sharing one study (e.g. on
  PostgreSQL) split the budget between them;
* a RUNNING trial whose owner process (machine + pid, recorded on the trial) is gone is *reclaimed*: told FAIL,
  marked ``reid.interrupted`` (so it does not count against the budget) and its parameters enqueued again, so the
  interrupted configuration is re-run rather than lost; the same happens in-process on Ctrl-C;
* on resume a seeded sampler is re-seeded with ``seed + number of trials already in the study`` (deterministic, yet
  not a replay);
* every job gets its trial number and study name through ``hydra.job.env_set`` (environment variables
  :data:`reid.tracking.OPTUNA_TRIAL_ENV`, :data:`reid.tracking.OPTUNA_STUDY_ENV`), which reach the job in every
  launcher, and runs as ``hydra.job.num = trial number``, so output folders never collide across resumes.

Use it with ``override /hydra/sweeper: optuna`` plus ``hydra.sweeper._target_:`` this class (conf/hparams_search/*).
Hydra instantiates only registered plugin classes; it finds this one through its plugin discovery (the
``hydra.plugins`` entry point in pyproject.toml), and :func:`register_sweeper` registers it by hand for code that
builds a sweeper outside a Hydra app (tests).
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import optuna
from hydra.core.plugins import Plugins
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from reid.tracking import OPTUNA_STUDY_ENV, OPTUNA_TRIAL_ENV
from reid.tracking.host import machine_id, process_alive

log = logging.getLogger(__name__)

# User attributes this sweeper keeps on trials.
OWNER_HOST_ATTR = "reid.host"
OWNER_PID_ATTR = "reid.pid"
INTERRUPTED_ATTR = "reid.interrupted"
RETRY_OF_ATTR = "reid.retry_of"
ERROR_ATTR = "reid.error"

# The targets the stock sweeper allows its sampler config to instantiate (hydra 1.4's execution whitelist).
_SAMPLER_WHITELIST = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")
_USED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def owner_is_gone(trial: FrozenTrial, host: str) -> bool:
    """A RUNNING trial started by a process on ``host`` that no longer exists (killed sweep, crashed machine)."""
    attrs = trial.user_attrs
    return (
        trial.state == TrialState.RUNNING
        and attrs.get(OWNER_HOST_ATTR) == host
        and OWNER_PID_ATTR in attrs
        and not process_alive(int(attrs[OWNER_PID_ATTR]))
    )


def trials_used(study: optuna.Study) -> int:
    """Trials that count against ``n_trials``: finished with an outcome, or running somewhere now.

    Interrupted trials do not count (their parameters were enqueued again); WAITING ones are still to be asked.
    """
    used = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in _USED_STATES or (t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED_ATTR)):
            used += 1
    return used


def interrupt_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Fail a RUNNING trial as interrupted and enqueue its parameters again, so the configuration is retried."""
    optuna.trial.Trial(study, trial._trial_id).set_user_attr(INTERRUPTED_ATTR, reason)
    study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF_ATTR: trial.number})
    log.warning(f"Trial {trial.number} interrupted ({reason}): failed and its parameters enqueued again")


def reclaim_stale_trials(study: optuna.Study, host: str) -> list[int]:
    """Interrupt every RUNNING trial whose owner process on this host is gone; returns their numbers."""
    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if owner_is_gone(t, host)]
    for t in stale:
        interrupt_trial(study, t, f"owner process {t.user_attrs[OWNER_PID_ATTR]} on {host} is gone")
    return [t.number for t in stale]


def consecutive_groups(trials: Sequence[optuna.trial.Trial]) -> list[list[optuna.trial.Trial]]:
    """Split trials into runs of consecutive numbers, so each run launches with hydra.job.num = trial number."""
    groups: list[list[optuna.trial.Trial]] = []
    for t in trials:
        if groups and groups[-1][-1].number + 1 == t.number:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def ensure_sqlite_parent(storage: Any) -> None:
    """SQLite creates its file but not the folder; make the folder of a ``sqlite:///path`` storage URL."""
    if not isinstance(storage, str):
        return
    url = make_url(storage)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


class ResumableOptunaSweeperImpl(OptunaSweeperImpl):
    """The stock implementation with a study-wide budget, stale-trial reclaim and resume re-seeding."""

    def __init__(self, sampler_cfg: DictConfig | None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sampler_cfg = sampler_cfg
        self.host = machine_id()

    def _reseeded_sampler(self, offset: int) -> Any:
        """A fresh sampler from the config with ``seed + offset`` (None when unseeded or a grid)."""
        cfg = self.sampler_cfg
        grid = isinstance(self.sampler, (functools.partial, optuna.samplers.GridSampler))  # a grid never replays
        if cfg is None or OmegaConf.select(cfg, "seed") is None or grid:
            return None
        return instantiate(cfg, seed=int(cfg.seed) + offset, _execution_whitelist_=_SAMPLER_WHITELIST)

    def _grid(self, distributions: dict[str, Any]) -> None:
        """The stock grid handling: the partial GridSampler gets the search space and caps n_trials at its size."""
        choices = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
        self.sampler = self.sampler(choices)
        size = 1
        for values in choices.values():
            size *= len(values)
        self.n_trials = min(self.n_trials, size)

    def _launch(
        self, study: optuna.Study, trials: list[optuna.trial.Trial], overrides: Sequence[Sequence[str]]
    ) -> list[Any]:
        """Launch trials (one launcher call per run of consecutive numbers); interrupt them if the launch is."""
        by_number = dict(zip((t.number for t in trials), overrides))
        study_value = "'" + study.study_name.replace("'", "\\'") + "'"  # quoted: any study name is a valid value
        returns: list[Any] = []
        try:
            for group in consecutive_groups(trials):
                batch = [
                    tuple(by_number[t.number])
                    + (
                        f"++hydra.job.env_set.{OPTUNA_TRIAL_ENV}={t.number}",
                        f"++hydra.job.env_set.{OPTUNA_STUDY_ENV}={study_value}",
                    )
                    for t in group
                ]
                returns.extend(self.launcher.launch(batch, initial_job_idx=group[0].number))
        except BaseException:  # Ctrl-C or a launcher crash: keep the study consistent, then propagate
            numbers = {t.number for t in trials}
            for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if frozen.number in numbers:
                    interrupt_trial(study, frozen, f"sweep interrupted on {self.host}")
            raise
        return returns

    def _tell(
        self, study: optuna.Study, trial: optuna.trial.Trial, ret: Any, directions: list[str]
    ) -> Exception | None:
        """Report one job's result; a job that raised (or returned no number) becomes a FAIL trial."""
        try:
            value = ret.return_value  # re-raises the job's exception for a failed job
            values = [float(value)] if len(directions) == 1 else [float(v) for v in value]
            if len(values) != len(directions):
                raise ValueError(f"{len(directions)} objectives but the job returned {len(values)} values")
        except Exception as e:
            try:
                trial.set_user_attr(ERROR_ATTR, f"{type(e).__name__}: {e}")
            except optuna.exceptions.UpdateFinishedTrialError:  # reclaimed meanwhile by another sweep
                pass
            self._finish(study, trial, TrialState.FAIL, None)
            log.warning(f"Trial {trial.number} failed: {type(e).__name__}: {e}")
            return e
        self._finish(study, trial, TrialState.COMPLETE, values)
        return None

    def _finish(
        self, study: optuna.Study, trial: optuna.trial.Trial, state: TrialState, values: list[float] | None
    ) -> None:
        """study.tell; a GridSampler calls study.stop() after its last point, which raises outside optimize().

        Optuna stores the trial's state before the sampler's after_trial hook runs, so that error is harmless
        (the stock sweeper ignores it the same way).
        """
        try:
            # skip_if_finished: another sweep may have reclaimed the trial meanwhile (its result is then dropped)
            study.tell(trial, values=values, state=state, skip_if_finished=True)
        except RuntimeError as e:
            if not (isinstance(study.sampler, optuna.samplers.GridSampler) and "Study.stop" in str(e)):
                raise

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config()
        params_conf.extend(arguments)
        distributions, fixed_params, fixed_overrides = create_params_from_overrides(params_conf)
        for name in fixed_params:  # a fixed value on the command line takes the key out of the search space
            distributions.pop(name, None)
        if isinstance(self.sampler, functools.partial) and self.sampler.func == optuna.samplers.GridSampler:
            self._grid(distributions)
        directions = self._get_directions()

        ensure_sqlite_parent(self.storage)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=self.sampler,
            directions=cast(list[Literal["minimize", "maximize"]], directions),
            load_if_exists=True,
        )
        reclaimed = reclaim_stale_trials(study, self.host)
        existing = len(study.get_trials(deepcopy=False))
        reseeded = self._reseeded_sampler(existing) if existing else None
        if reseeded is not None:
            study.sampler = reseeded
        log.info(
            f"Study {study.study_name!r} on {self.storage}: {existing} trials stored, {trials_used(study)} of "
            f"n_trials={self.n_trials} used, reclaimed {reclaimed or 'none'}"
            + (f", sampler re-seeded with seed+{existing}" if reseeded is not None else "")
        )

        while (remaining := self.n_trials - trials_used(study)) > 0:
            trials = [study.ask() for _ in range(min(self.n_jobs, remaining))]
            for t in trials:
                t.set_user_attr(OWNER_HOST_ATTR, self.host)
                t.set_user_attr(OWNER_PID_ATTR, os.getpid())
            overrides = self._configure_trials(trials, distributions, fixed_params, fixed_overrides)
            returns = self._launch(study, trials, overrides)
            failures = [e for t, r in zip(trials, returns) if (e := self._tell(study, t, r, directions)) is not None]
            if failures and len(failures) / len(returns) > self.max_failure_rate:
                log.error(
                    f"{len(failures)} of {len(returns)} trials failed with max_failure_rate={self.max_failure_rate}"
                )
                for r in returns:
                    _ = r.return_value  # re-raise the first job's own exception, with its traceback

        self._save_results(study, directions)

    def _save_results(self, study: optuna.Study, directions: list[str]) -> None:
        """The stock ``optimization_results.yaml`` in the sweep folder, over the whole study."""
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise RuntimeError(f"study {study.study_name!r}: no trial completed (see the FAIL trials' {ERROR_ATTR!r})")
        if len(directions) < 2:
            best = study.best_trial
            results: dict[str, Any] = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            log.info(f"Best trial {best.number}: value {best.value}, params {best.params}")
        else:
            results = {
                "name": "optuna",
                "solutions": [{"params": t.params, "values": t.values} for t in study.best_trials],
            }
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)  # a finished study re-run launches nothing that would make it
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")


class ResumableOptunaSweeper(OptunaSweeper):
    """``hydra.sweeper._target_`` for resumable studies; same config keys as the stock ``hydra/sweeper: optuna``."""

    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        custom_search_space: str | None,
        params: DictConfig | None,
    ) -> None:
        instance = instantiate(sampler, _execution_whitelist_=_SAMPLER_WHITELIST)
        self.sweeper = ResumableOptunaSweeperImpl(
            sampler,
            instance,
            direction,
            storage,
            study_name,
            n_trials,
            n_jobs,
            max_failure_rate,
            custom_search_space,
            params,
        )


def register_sweeper() -> None:
    """Make the class instantiable as a Hydra sweeper (Hydra only instantiates plugins it has scanned or been given)."""
    Plugins.instance().register(ResumableOptunaSweeper)
