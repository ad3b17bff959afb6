"""A job killed (SIGKILL) or preempted (SIGTERM) mid-run resumes with the same command and ends exactly where an
uninterrupted job with the same seed ends: same final metrics, bit-identical weights, one MLflow run."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reid.engine.checkpoint import Checkpointer, latest_checkpoint, list_checkpoints
from tests.shared import HoldBarrier

if TYPE_CHECKING:
    from conftest import FaultEnv, Reference

PREEMPTED_EXIT_CODE = 143  # reid.train's exit status after a SIGTERM (128 + 15): part of its interface


def _resume_and_compare(fault_env: FaultEnv, cmd: list[str], run_dir: Path, experiment: str, run_id: str,
                        reference: Reference) -> None:
    """Run ``cmd`` again (resume=auto finds the run folder's checkpoints) and compare with the reference job."""
    done = fault_env.run_ok(cmd)
    assert "[resume] from " in done.stdout, done.stdout[-3000:]
    run = fault_env.only_run(experiment)  # the resumed job logged into the interrupted job's MLflow run
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    expected = reference.result()
    assert fault_env.final_metrics(run) == expected["metrics"]
    final = run_dir / "checkpoints" / fault_env.final_checkpoint
    fault_env.assert_same_weights(fault_env.system_weights(final), expected["weights"])


def _resume_line(out: str) -> str:
    """The command an interrupted run printed (``  resume: python -m reid.train ... resume=<run folder>``)."""
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith("resume: ")]
    assert len(lines) == 1, out[-4000:]
    return lines[0].removeprefix("resume: ")


def _run_printed_command(fault_env: FaultEnv, out: str) -> None:
    """Run the printed resume command as a user would paste it (``python`` being this interpreter)."""
    args = shlex.split(_resume_line(out))
    assert args[:3] == ["python", "-m", "reid.train"]
    done = fault_env.run_ok([sys.executable, *args[1:]])
    assert "[resume] from " in done.stdout, done.stdout[-3000:]


def test_sigkill_then_same_command_resumes_exactly(fault_env: FaultEnv, reference: Reference, tmp_path: Path) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "killed.log"
    cmd = fault_env.command(run_dir, "sigkill")
    barrier = HoldBarrier(tmp_path / "hold")
    proc = fault_env.start(cmd, log, env=barrier.env("stage2:2:1"))  # parked after stage 2's first epoch
    barrier.wait_held(proc, log)
    proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: the harshest interruption
    assert proc.wait(timeout=60) == -signal.SIGKILL

    names = [p.name for p in list_checkpoints(run_dir / "checkpoints")]
    assert names == ["ckpt_stage1_e0001.pt", "ckpt_stage1_e0002.pt", "ckpt_stage2_e0001.pt"]  # stage 2 is mid-run
    run_id = Checkpointer.load(latest_checkpoint(run_dir / "checkpoints"))["mlflow_run_id"]
    assert fault_env.only_run("sigkill").info.status == "RUNNING"  # nobody could close it

    _resume_and_compare(fault_env, cmd, run_dir, "sigkill", run_id, reference)


def test_sigterm_mid_epoch_checkpoints_exits_cleanly_and_resumes_exactly(
    fault_env: FaultEnv, reference: Reference, tmp_path: Path
) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "preempted.log"
    cmd = fault_env.command(run_dir, "sigterm")
    barrier = HoldBarrier(tmp_path / "hold")
    proc = fault_env.start(cmd, log, env=barrier.env("stage2:2:2"))  # parked before stage 2's epoch 2, step 2
    barrier.wait_held(proc, log)
    proc.send_signal(signal.SIGTERM)  # what SLURM / Kubernetes send before they kill a preempted job
    assert proc.wait(timeout=300) == PREEMPTED_EXIT_CODE, log.read_text()[-4000:]  # the signal itself releases it

    out = log.read_text()
    assert "Traceback" not in out, out[-4000:]
    assert "[preempted] SIGTERM at stage2 epoch " in out and f"resume={run_dir}" in _resume_line(out)
    saved = latest_checkpoint(run_dir / "checkpoints")
    assert f"checkpoint written to {saved}" in out
    state = Checkpointer.load(saved)
    # The step it was held before runs, then the loop sees the flag: a mid-epoch checkpoint after exactly that step.
    assert (state["stage"], state["epoch"], state["batch"], state["complete"]) == ("stage2", 2, 2, False)
    assert f"stage2 epoch {state['epoch']} step {state['batch']};" in out
    run = fault_env.only_run("sigterm")
    assert run.info.run_id == state["mlflow_run_id"] and run.info.status == "KILLED"

    _resume_and_compare(fault_env, cmd, run_dir, "sigterm", state["mlflow_run_id"], reference)


def _group_signal_with_workers(fault_env: FaultEnv, tmp_path: Path, experiment: str, sig: signal.Signals,
                               at: str) -> tuple[Path, str, int]:
    """Hold a job that loads with 2 DataLoader workers, then signal its whole process group (a terminal's Ctrl-C,
    SLURM's SIGTERM): the workers get the signal too. Returns the run folder, the job's output and its exit code."""
    run_dir, log = tmp_path / "run", tmp_path / f"{experiment}.log"
    cmd = fault_env.command(run_dir, experiment, "num_workers=2")
    barrier = HoldBarrier(tmp_path / "hold")
    proc = fault_env.start(cmd, log, env=barrier.env(at))
    held = barrier.wait_held(proc, log)
    assert held["stage"] == "stage2"
    os.killpg(proc.pid, sig)  # start_new_session: the job and its workers form one group
    if sig == signal.SIGINT:
        barrier.release()  # Ctrl-C ends the hold with KeyboardInterrupt already; the release is for safety
    try:
        code = proc.wait(timeout=300)
    except subprocess.TimeoutExpired:  # a job that never exits (its workers hung it): leave no process behind
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return run_dir, log.read_text(), code


def test_sigterm_to_workers_too_still_checkpoints_mid_epoch_and_prints_the_resume_command(
    fault_env: FaultEnv, reference: Reference, tmp_path: Path
) -> None:
    run_dir, out, code = _group_signal_with_workers(fault_env, tmp_path, "sigterm-group", signal.SIGTERM, "stage2:2:2")
    assert code == PREEMPTED_EXIT_CODE, out[-4000:]
    assert "Traceback" not in out and "DataLoader worker" not in out, out[-4000:]  # the workers ignored SIGTERM
    state = Checkpointer.load(latest_checkpoint(run_dir / "checkpoints"))
    assert (state["stage"], state["epoch"], state["batch"], state["complete"]) == ("stage2", 2, 2, False)
    assert fault_env.only_run("sigterm-group").info.status == "KILLED"

    _run_printed_command(fault_env, out)
    run = fault_env.only_run("sigterm-group")
    assert run.info.run_id == state["mlflow_run_id"] and run.info.status == "FINISHED"
    assert fault_env.final_metrics(run) == reference.result()["metrics"]  # workers or not, the same job


def test_ctrl_c_prints_the_resume_command_which_continues_from_the_last_checkpoint(
    fault_env: FaultEnv, reference: Reference, tmp_path: Path
) -> None:
    run_dir, out, code = _group_signal_with_workers(fault_env, tmp_path, "sigint", signal.SIGINT, "stage2:2:2")
    assert code == 130, out[-4000:]  # 128 + SIGINT
    assert "Traceback" not in out and "[interrupted] stopped by Ctrl-C" in out, out[-4000:]
    names = [p.name for p in list_checkpoints(run_dir / "checkpoints")]
    assert names[-1] == "ckpt_stage2_e0001.pt"  # interrupted inside epoch 2: the end of epoch 1 is the newest
    assert fault_env.only_run("sigint").info.status == "KILLED"

    _run_printed_command(fault_env, out)
    run = fault_env.only_run("sigint")
    assert run.info.status == "FINISHED" and fault_env.final_metrics(run) == reference.result()["metrics"]
