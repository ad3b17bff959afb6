"""Count what a run's tracker was asked to log (its journal, reid/tracking/journal.py) against what the MLflow
store holds, record by record: the concurrency and server-crash tests' "nothing lost"."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from reid.tracking.journal import Journal, find_journals


def run_journal(run_dir: Path) -> Journal:
    """The one journal a job's run folder holds."""
    found = find_journals(Path(run_dir))
    assert len(found) == 1, f"expected one tracking journal in {run_dir}, found {found}"
    return Journal(found[0])


def sent(journal: Journal) -> dict[str, Any]:
    """What the journal's records add up to: params, metric points, tags, artifact paths, the final status."""
    params: dict[str, str] = {}
    points: Counter = Counter()
    tags: dict[str, str] = {}
    artifacts: set[str] = set()
    status = None
    for r in journal.records:
        args = r["args"]
        if r["op"] == "log_params":
            for k, v in args["params"].items():
                params.setdefault(k, v)  # the first value wins; MLflow keeps params immutable
        elif r["op"] == "log_metrics":
            points.update((k, int(step), float(v), int(ts)) for k, v, ts, step in args["metrics"])
        elif r["op"] == "set_tags":
            tags.update(args["tags"])
        elif r["op"] == "log_artifact":
            name = Path(args["path"]).name
            artifacts.add(f"{args['artifact_path']}/{name}" if args["artifact_path"] else name)
        elif r["op"] == "log_text":
            artifacts.add(args["artifact_file"])
        elif r["op"] == "set_terminated":
            status = args["status"]
    return {"params": params, "points": points, "tags": tags, "artifacts": artifacts, "status": status}


def artifact_paths(client: Any, run_id: str, path: str | None = None) -> set[str]:
    out: set[str] = set()
    for info in client.list_artifacts(run_id, path):
        out |= artifact_paths(client, run_id, info.path) if info.is_dir else {info.path}
    return out


def stored(client: Any, run_id: str) -> dict[str, Any]:
    """The same quantities as :func:`sent`, read back from the store."""
    run = client.get_run(run_id)
    points: Counter = Counter()
    for key in run.data.metrics:
        points.update((m.key, m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, key))
    return {
        "params": dict(run.data.params), "points": points, "tags": dict(run.data.tags),
        "artifacts": artifact_paths(client, run_id), "status": run.info.status,
    }


def assert_nothing_lost(client: Any, run_dir: Path) -> dict[str, int]:
    """Every record the job's journal holds is in the store, exactly (no metric point missing or doubled), the
    journal has none left unsent, and the final metrics match the job's own metrics.json. Returns the counts."""
    journal = run_journal(run_dir)
    assert not journal.pending(), f"{journal.path}: {len(journal.pending())} records never reached the store"
    want, run_id = sent(journal), journal.header["run_id"]
    have = stored(client, run_id)
    assert have["params"] == want["params"]
    assert have["points"] == want["points"], (
        f"missing: {want['points'] - have['points']}, extra: {have['points'] - want['points']}"
    )
    assert want["tags"].items() <= have["tags"].items()
    assert want["artifacts"] <= have["artifacts"], f"missing artifacts: {want['artifacts'] - have['artifacts']}"
    assert have["status"] == want["status"] == "FINISHED"
    final = json.loads((Path(run_dir) / "metrics.json").read_text())
    assert final["mlflow_run_id"] == run_id
    last_sent = {k: v for r in journal.records if r["op"] == "log_metrics" for k, v, _, _ in r["args"]["metrics"]}
    for name in ("mAP", "rank1", "rank5", "rank10", "mINP"):  # the contract's names, as the job computed them
        assert last_sent[name] == final["metrics"][name]
    return {"params": len(want["params"]), "metric_points": sum(want["points"].values()),
            "artifacts": len(want["artifacts"]), "records": len(journal.records)}
