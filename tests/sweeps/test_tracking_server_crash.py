"""A real tracking server (``mlflow server`` on PostgreSQL, local proxied artifact root) SIGKILLed under the runs
that log to it, then restarted: nothing they logged is lost (docs/reliability.md, "Trackers").

* A 4-job parallel (joblib) sweep: each job is held at a barrier after its run was created, the server is killed,
  the jobs go on training with the server gone and end waiting for it; the test restarts it and every run completes
  with every record (params, each metric point, artifacts, status) in the server.
* A run whose server stays away past its end: it says so in one line and keeps its records;
  ``python -m reid.tracking.replay`` sends them once the server is back, and sending them again doubles nothing.

Every step waits for a state the runs write and keep (held at the barrier, waiting for the server), never on the
clock; the deadlines are safety nets for a hung process.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.shared import HoldBarrier
from tests.sweeps.conftest import ROOT, SHORT_MLFLOW_HTTP, _clean_env
from tests.sweeps.tracking_ledger import assert_nothing_lost, run_journal, sent, stored

if TYPE_CHECKING:
    from tests.sweeps.conftest import MlflowServer, SweepEnv

JOBS = 4
STATE_TIMEOUT_S = 600  # safety net: a job that never reaches its end on a loaded machine


def _wait_for_journal_state(run_dirs: list[Path], state: str, proc: subprocess.Popen, log: Path) -> None:
    """Block until every run's journal is in ``state`` (a state the tracker keeps, so it cannot be missed)."""
    from reid.tracking.journal import Journal, find_journals

    deadline = time.monotonic() + STATE_TIMEOUT_S
    while True:
        states = []
        for d in run_dirs:
            found = find_journals(d) if (d / "tracking").is_dir() else []
            states.append((Journal(found[0]).state() or {}).get("state") if found else None)
        if all(s == state for s in states):
            return
        if proc.poll() is not None:
            pytest.fail(f"the sweep exited ({proc.returncode}), journal states {states}:\n{log.read_text()[-6000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"journal states {states}, not all {state!r}:\n{log.read_text()[-6000:]}")
        time.sleep(0.05)


def test_server_killed_mid_sweep_then_restarted_loses_nothing(
    sweep_env: SweepEnv, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    experiment, sweep, hold, log = "server-crash-sweep", tmp_path / "sweep", tmp_path / "hold", tmp_path / "sweep.log"
    cmd = sweep_env.command(
        experiment, sweep, "seed=1,2,3,4", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={JOBS}",
        "eval.plots=true",  # two plot artifacts per job, uploaded (through the server) while it is gone
        f"++hydra.job.env_set.REID_HOLD_DIR={hold}/${{hydra.job.num}}",  # one barrier per job
    )
    cmd = [c if not c.startswith("logger.tracking_uri=") else f"logger.tracking_uri={mlflow_server.uri}" for c in cmd]
    barriers = [HoldBarrier(hold / str(n)) for n in range(JOBS)]
    env = {**barriers[0].env("stage2:1:2"), **SHORT_MLFLOW_HTTP, "REID_TRACKING_END_WAIT_S": "600",
           "OMP_NUM_THREADS": "1"}  # four jobs share the cores
    env.pop("REID_HOLD_DIR")  # set per job by hydra.job.env_set above
    proc = sweep_env.start(cmd, log, env=env)
    try:
        for b in barriers:  # every job's run exists, its params are in; training is parked before step 2
            b.wait_held(proc, log)
        mlflow_server.kill()
        for b in barriers:
            b.release()
        jobs = [sweep / str(n) for n in range(JOBS)]
        _wait_for_journal_state(jobs, "waiting", proc, log)  # all trained to the end, records kept, waiting
        unsent = [len(run_journal(j).pending()) for j in jobs]
        mlflow_server.start()
        proc.wait(timeout=STATE_TIMEOUT_S)
    finally:
        sweep_env.kill(proc)
    output = log.read_text()
    assert proc.returncode == 0, output[-6000:]
    assert all(n >= 5 for n in unsent), unsent  # losses, evaluations, final metrics, plots, status each waited
    assert output.count("[tracking] WARNING: MLflow at") == JOBS  # one line per job for the outage
    assert output.count("answers again") == JOBS

    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("reid.sweep") == "parent")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == JOBS + 1 and len(children) == JOBS
    assert parent.info.status == "FINISHED" and parent.data.metrics["children_finished"] == JOBS
    for j in jobs:
        counts = assert_nothing_lost(client, j)
        assert counts["artifacts"] >= 3  # the resolved config and the two plots
        assert {"plots/cmc.png", "plots/ranked_list.png"} <= stored(client, run_journal(j).header["run_id"])[
            "artifacts"]
    assert len(list((mlflow_server.artifacts).rglob("ranked_list.png"))) == JOBS  # in the server's artifact root


def test_records_left_when_the_server_stays_away_are_replayed_once_it_is_back(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import os

    from mlflow.tracking import MlflowClient

    from reid.tracking.mlflow_tracker import MlflowTracker

    for name in [k for k in os.environ if k.startswith("REID_")]:  # no sweep context left by an earlier test
        monkeypatch.delenv(name)
    for name, value in {**SHORT_MLFLOW_HTTP, "REID_TRACKING_END_WAIT_S": "0"}.items():
        monkeypatch.setenv(name, value)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tracker = MlflowTracker(mlflow_server.uri, "server-crash-replay")
    run_id = tracker.start("replayed", {"run_dir": str(run_dir)})
    tracker.log_params({"lr": 0.1, "seed": 3})
    tracker.log_metrics({"loss": 2.0}, step=1)
    mlflow_server.kill()
    tracker.log_metrics({"loss": 1.5}, step=2)
    tracker.log_metrics({"mAP": 0.25, "rank1": 0.5, "rank5": 0.75, "rank10": 1.0, "mINP": 0.125})
    (run_dir / "cmc.png").write_bytes(b"not really a png")
    tracker.log_artifact(run_dir / "cmc.png", "plots")
    tracker.log_text("seed: 3\n", "config/resolved.yaml")
    tracker.end()
    err = capsys.readouterr().err
    journal = run_journal(run_dir)
    assert journal.state() == {"state": "gave_up", "unsent": 5}
    assert err.count("[tracking] WARNING: MLflow at") == 1  # one line for the outage, not one per record
    assert f"5 records of run {run_id} did not reach MLflow" in err
    assert f"python -m reid.tracking.replay {run_dir}" in err

    mlflow_server.start()
    replay = [sys.executable, "-m", "reid.tracking.replay", str(run_dir)]
    env = {**_clean_env(), **SHORT_MLFLOW_HTTP}
    done = subprocess.run(replay, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sent 5 records" in done.stdout
    client = MlflowClient(mlflow_server.uri)
    want, have = sent(run_journal(run_dir)), stored(client, run_id)
    assert have["points"] == want["points"] and sum(want["points"].values()) == 7
    assert have["params"] == {"lr": "0.1", "seed": "3"}
    assert have["artifacts"] == {"plots/cmc.png", "config/resolved.yaml"} and have["status"] == "FINISHED"
    assert run_journal(run_dir).state() == {"state": "ok", "unsent": 0}

    # Sending everything again (a reply lost after the store took the record) doubles nothing.
    (journal.path.with_suffix(".sent")).write_text("0")
    again = subprocess.run(replay, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "sent 7 records" in again.stdout, again.stdout + again.stderr
    assert stored(client, run_id)["points"] == have["points"]
