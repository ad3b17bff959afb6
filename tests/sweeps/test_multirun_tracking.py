"""A plain 2-job multirun: one MLflow parent, each job's run nested under it with its overrides, the best on the parent.

It runs on the joblib launcher with two workers, so the jobs' runs are created in other processes than the one
that created the parent: the parent id must reach them (reid/tracking/sweep_callback.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SweepEnv


def test_two_job_multirun_nests_both_runs_under_one_parent(sweep_env: SweepEnv, tmp_path: Path) -> None:
    experiment = "plain-multirun"
    cmd = sweep_env.command(
        experiment, tmp_path / "sweep", "ssl.weight=0.1,0.5", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"
    )
    sweep_env.run(cmd)

    runs = sweep_env.runs(experiment)
    parents = [r for r in runs if r.data.tags.get("reid.sweep") == "parent"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2

    # The parent: the sweep's override lists as params, launcher, status, the best child and its metrics.
    assert parent.info.status == "FINISHED"
    assert parent.data.params["sweep.ssl.weight"] == "0.1,0.5"
    assert parent.data.params["sweep.experiment"] == "demo"
    assert parent.data.tags["launcher"].endswith("JoblibLauncher")
    assert parent.data.metrics["children"] == 2 and parent.data.metrics["children_finished"] == 2
    best = max(children, key=lambda c: c.data.metrics["mAP"])
    assert parent.data.metrics["best_mAP"] == pytest.approx(best.data.metrics["mAP"])
    best_by_tag = next(c for c in children if c.info.run_id == parent.data.tags["best_run_id"])
    assert best_by_tag.data.metrics["mAP"] == pytest.approx(best.data.metrics["mAP"])
    for m in sweep_env.final_metrics:
        assert parent.data.metrics[f"best_{m}"] == pytest.approx(best_by_tag.data.metrics[m])
    assert parent.data.tags["best_overrides"] == f"ssl.weight={best_by_tag.data.params['override.ssl.weight']}"

    # The children: their own overrides as params (matching the config they ran), final metrics, other processes.
    assert sorted(c.data.params["override.ssl.weight"] for c in children) == ["0.1", "0.5"]
    assert sorted(c.data.tags["hydra.job.num"] for c in children) == ["0", "1"]
    # what the run is (dataset, method, backbone), then the swept value
    assert sorted(c.info.run_name for c in children) == [
        "synthetic baseline clip_tiny ssl.weight=0.1", "synthetic baseline clip_tiny ssl.weight=0.5"
    ]
    for c in children:
        assert c.info.status == "FINISHED"
        assert c.data.tags["reid.sweep"] == "child"
        assert c.data.params["ssl.weight"] == c.data.params["override.ssl.weight"]
        assert c.data.params["override.debug"] == "fast"
        assert c.data.params["override.dataset.options.num_train_ids"] == "8"
        for m in sweep_env.final_metrics:
            assert 0.0 <= c.data.metrics[m] <= 1.0
        assert c.data.tags["reid.pid"] != parent.data.tags["reid.pid"]  # created in a joblib worker
        # The design card's form as written sweeps a weight that plain CLIP-ReID (experiment=demo) does not use:
        # each run says so where the sweep's results are compared.
        weight = c.data.params["ssl.weight"]
        assert c.data.tags["config_warnings"].startswith(f"ssl.weight={weight} has no effect with ssl=none")
