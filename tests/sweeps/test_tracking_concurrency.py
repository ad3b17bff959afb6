"""Parallel jobs on the default SQLite MLflow store lose nothing (docs/reliability.md, "Trackers").

* Several processes opening a fresh store at once: MLflow migrates an empty database without a lock, so all but
  one used to fail; reid creates it under a file lock (reid/tracking/sqlite_store.py).
* A 2-job joblib sweep on a fresh SQLite store: every record each job's tracker logged (its journal) is in the
  store, exactly once, and the final metrics are those of each job's metrics.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tests.sweeps.conftest import ROOT, _clean_env
from tests.sweeps.tracking_ledger import assert_nothing_lost

if TYPE_CHECKING:
    from tests.sweeps.conftest import SweepEnv

OPEN_STORE = (
    "import sys; from reid.tracking.mlflow_tracker import MlflowTracker; "
    "t = MlflowTracker(sys.argv[1], 'opened-together'); print('experiment', t.experiment_id)"
)


def test_processes_opening_a_fresh_sqlite_store_together_all_succeed(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_STORE, uri], cwd=ROOT, env=_clean_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    ids = {line.split()[-1] for out in outputs for line in out.splitlines() if line.startswith("experiment ")}
    assert len(ids) == 1, outputs  # one experiment, found or created by each


def test_two_parallel_jobs_on_a_fresh_sqlite_store_record_every_run_param_and_metric(
    sweep_env: SweepEnv, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the default store's kind, fresh: created by the sweep itself
    sweep = tmp_path / "sweep"
    cmd = sweep_env.command("sqlite-parallel", sweep, "seed=1,2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    cmd = [c if not c.startswith("logger.tracking_uri=") else f"logger.tracking_uri={uri}" for c in cmd]
    sweep_env.run(cmd)

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("sqlite-parallel")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("reid.sweep") == "parent")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert parent.info.status == "FINISHED" and parent.data.metrics["children_finished"] == 2
    counts = [assert_nothing_lost(client, sweep / str(num)) for num in (0, 1)]
    assert {r.info.run_id for r in children} == {
        json.loads((sweep / str(n) / "metrics.json").read_text())["mlflow_run_id"] for n in (0, 1)
    }
    for c in counts:  # each job logged its config, per-epoch losses and evaluations, and the final metrics
        assert c["params"] > 50 and c["metric_points"] > 10 and c["artifacts"] >= 1
