"""Errors a user can fix, through the command line as a user meets them: one ``error: ...`` message on stderr, exit
code 2 and no traceback (the trace only with ``HYDRA_FULL_ERROR=1`` or ``debug=true``); a run that had started is
FAILED in MLflow, with the message as its ``failure`` tag and in ``failure.txt``, and its log as ``run.log``."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.faults.conftest import CONF_DIR, JOB_SETTINGS, TINY_JOB, job_env

if TYPE_CHECKING:
    from conftest import FaultEnv


def _user_error(done: Any) -> str:
    """The one error message of a job that stopped on a user error (asserting the exit code and no traceback)."""
    assert done.returncode == 2, f"exit {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    assert sum(line.startswith("error: ") for line in done.stderr.splitlines()) == 1, done.stderr[-4000:]
    return done.stderr[done.stderr.index("error: ") + len("error: "):].strip()


def _failed_run(fault_env: FaultEnv, experiment: str, message: str, scratch: Path) -> None:
    """The job's MLflow run is FAILED and carries the message as a tag and a text artifact, beside its log."""
    from mlflow.tracking import MlflowClient

    run = fault_env.only_run(experiment)
    assert run.info.status == "FAILED"
    assert run.data.tags["failure"] == message.splitlines()[0]
    client = MlflowClient(fault_env.mlflow_uri)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"failure.txt", "run.log"}
    failure = Path(client.download_artifacts(run.info.run_id, "failure.txt", dst_path=str(scratch)))
    assert message.splitlines()[0] in failure.read_text()


def _market_command(fault_env: FaultEnv, run_dir: Path, experiment: str, root: Path) -> list[str]:
    return [
        sys.executable, "-m", "reid.train", *JOB_SETTINGS, *fault_env.paths(run_dir), "dataset=market1501",
        f"dataset.root={root}", "logger=mlflow", f"logger.tracking_uri={fault_env.mlflow_uri}",
        f"logger.experiment_name={experiment}",
    ]


def test_missing_data_is_one_line_and_a_failed_run_with_the_reason(fault_env: FaultEnv, tmp_path: Path) -> None:
    root = tmp_path / "no-such-data"
    done = fault_env.run(_market_command(fault_env, tmp_path / "run", "missing-data", root))
    message = _user_error(done)
    assert str(root) in message and "Market-1501" in message, message
    _failed_run(fault_env, "missing-data", message, tmp_path)
    assert (tmp_path / "run" / "run.log").read_text().count("error") == 0  # the log holds the run, not the verdict


def test_missing_weights_name_where_they_were_looked_for(fault_env: FaultEnv, tmp_path: Path) -> None:
    env = {**job_env(), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = fault_env.command(tmp_path / "run", "missing-weights", "backbone=vit_b16")
    message = _user_error(fault_env.run(cmd, env=env))
    assert "openai/clip-vit-base-patch16" in message and str(tmp_path / "hf") in message, message
    _failed_run(fault_env, "missing-weights", message, tmp_path)


def test_bad_resume_and_init_paths_are_one_line(fault_env: FaultEnv, tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    message = _user_error(fault_env.run(fault_env.command(tmp_path / "a", "bad-resume", f"resume={nowhere}")))
    assert message == f"resume must be auto, true, false or an existing checkpoint file / run folder, got '{nowhere}'"
    message = _user_error(fault_env.run(fault_env.command(tmp_path / "b", "bad-init", f"init_from={nowhere}")))
    assert str(nowhere) in message, message


def test_a_non_finite_stop_is_one_line_and_a_failed_run(fault_env: FaultEnv, tmp_path: Path) -> None:
    env = {**job_env(), "REID_INJECT_NONFINITE": "stage2:1:2"}
    message = _user_error(fault_env.run(fault_env.command(tmp_path / "run", "nonfinite-cli"), env=env))
    assert message.startswith("non-finite loss term 'loss' at stage2 epoch 1 step 2"), message
    assert message.endswith("training stopped, the last good checkpoint is kept"), message
    _failed_run(fault_env, "nonfinite-cli", message, tmp_path)


def test_the_full_trace_is_there_when_asked_for(fault_env: FaultEnv, tmp_path: Path) -> None:
    cmd = fault_env.command(tmp_path / "run", "trace", "method.stage2.optimizer.lr=-1")
    assert _user_error(fault_env.run(cmd)) == "method.stage2.optimizer.lr must be > 0, got -1.0"
    for extra_env, extra in (({"HYDRA_FULL_ERROR": "1"}, []), ({}, ["debug=true"])):
        done = fault_env.run(cmd + extra, env={**job_env(), **extra_env})
        assert done.returncode == 1 and "Traceback" in done.stderr, done.stderr[-3000:]
        assert "ConfigError: method.stage2.optimizer.lr must be > 0" in done.stderr


def test_a_sweep_preset_without_multirun_shows_the_command_with_m(fault_env: FaultEnv, tmp_path: Path) -> None:
    cmd = fault_env.command(tmp_path / "run", "no-m", "hparams_search=clipreid_loss_weights")
    message = _user_error(fault_env.run(cmd))
    assert message.startswith("hparams_search=clipreid_loss_weights is an Optuna sweep and needs -m (multirun): "
                              "python -m reid.train -m "), message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_batch_the_identities_cannot_fill_fails_before_training_and_its_hint_works(
    fault_env: FaultEnv, tmp_path: Path
) -> None:
    from hydra import compose, initialize_config_dir

    from reid.build.training import check_batches_fit
    from reid.methods import method_class

    cmd = fault_env.command(tmp_path / "run", "pk", "method.stage2.batch_size=64")
    done = fault_env.run(cmd)
    message = _user_error(done)
    assert "needs 16 distinct identities per batch, but the training split has 8" in message, message
    assert "[stage1]" not in done.stdout  # nothing trained
    hint = re.search(r"set (method\.stage2\.batch_size=\d+) or less", message)
    assert hint is not None, message
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        cfg = compose("train", overrides=[*TINY_JOB, hint.group(1)])
    kinds = method_class(str(cfg.method.name))().stages
    check_batches_fit(cfg, list(kinds), kinds, 8)  # the hinted value fits the 8 training identities
