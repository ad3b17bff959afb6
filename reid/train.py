"""`python -m reid.train`: the Hydra entry point. Returns the objective (final mAP by default) for a sweeper.

Errors a user can fix are one line and exit code 2 (reid.errors); Ctrl-C and SIGTERM print the command that resumes.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from reid.errors import EXIT_PREEMPTED as PREEMPTED_EXIT_CODE  # 128 + SIGTERM: a checkpoint was written

# conf/ sits beside the package in the project root; an absolute path works from any working directory.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _check_sweep_mode() -> None:
    """An ``hparams_search`` preset is a sweep: without ``-m`` Hydra would silently train one ordinary run."""
    from hydra.core.hydra_config import HydraConfig

    from reid.config import ConfigError
    from reid.errors import sweep_command

    if not HydraConfig.initialized() or _in_multirun():
        return
    preset = HydraConfig.get().runtime.choices.get("hparams_search")
    if preset not in (None, "null"):
        raise ConfigError(f"hparams_search={preset} is an Optuna sweep and needs -m (multirun): {sweep_command()}")


def _name_from_overrides() -> None:
    """A single run's MLflow name ends with the overrides that make it what it is (a sweep's callback does the same)."""
    import os

    from hydra.core.hydra_config import HydraConfig

    from reid.tracking.mlflow_tracker import RUN_NAME_SUFFIX_ENV

    if _in_multirun() or not HydraConfig.initialized() or RUN_NAME_SUFFIX_ENV in os.environ:
        return
    skip = ("experiment=", "paths.", "logger.", "hydra.", "progress=", "num_workers=", "device=", "resume=")
    varied = [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith(skip)]
    if varied:
        os.environ[RUN_NAME_SUFFIX_ENV] = " ".join(varied)


def _stop_data_workers() -> None:
    """The job's DataLoader workers go with it, however it ended (reid.data.loader.stop_workers says why)."""
    if "reid.data.loader" in sys.modules:  # nothing to stop when training never got as far as loading
        sys.modules["reid.data.loader"].stop_workers()


def _stopped(kind: str, message: str, err: BaseException, code: int) -> None:
    """An interruption is not a failure: say what happened and the command that continues, then exit with ``code``."""
    from reid.errors import resume_command

    run_dir = getattr(err, "run_dir", None)  # set by the pipeline once the run folder is known
    hint = f"\n  resume: {resume_command(run_dir)}" if run_dir else ""
    print(f"[{kind}] {message}{hint}", file=sys.stderr, flush=True)
    sys.exit(code)


@hydra.main(config_path=CONFIG_DIR, config_name="train", execution_whitelist=["reid.tracking.*"])
def main(cfg: DictConfig) -> float:
    from reid.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, full_trace_wanted, one_line, user_errors

    try:
        from reid.config import validate_config

        _check_sweep_mode()
        validate_config(cfg)  # before the training stack (torch, transformers) is imported: a typo fails in seconds
        from reid.pipeline import train

        _name_from_overrides()
        return train(cfg)
    except KeyboardInterrupt as stop:
        _stopped("interrupted", "stopped by Ctrl-C; the newest checkpoint is kept.", stop, EXIT_INTERRUPTED)
    except Exception as err:
        from reid.engine.faults import Preempted

        if isinstance(err, Preempted):  # ends the whole process, in a multirun too: a preempted sweep stops
            _stopped("preempted", f"{err}.", err, PREEMPTED_EXIT_CODE)
        if not isinstance(err, user_errors()) or _in_multirun() or full_trace_wanted(cfg.get("traceback", False)):
            raise  # a bug keeps its traceback; a sweeper records a failing job and goes on
        print(one_line(err), file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
    finally:
        _stop_data_workers()


DEBUG_ALIAS = "debug=true"  # the config group `debug` (debug=fast) cannot take the value true: Hydra reads a bool


def expand_aliases(argv: list[str]) -> list[str]:
    """``debug=true`` on the command line means ``traceback=true``: a user error keeps its full traceback."""
    return ["traceback=true" if a == DEBUG_ALIAS else a for a in argv]


if __name__ == "__main__":
    sys.argv = expand_aliases(sys.argv)
    main()
