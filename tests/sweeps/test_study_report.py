"""experiments/synthetic_study/report.py turns MLflow runs into the mean ± std table between the README markers."""
from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

REPORT = Path(__file__).resolve().parents[2] / "experiments" / "synthetic_study" / "report.py"


def load_report() -> ModuleType:
    """The script as a module (experiments/ is not a package); registered first, as its dataclass needs."""
    spec = importlib.util.spec_from_file_location("synthetic_study_report", REPORT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def add_run(
    client: MlflowClient, exp: str, tags: dict[str, str], metrics: dict[str, float], seed: str | None = None,
    params: dict[str, str] | None = None,
) -> None:
    run = client.create_run(exp, tags=tags)
    stamp = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
        params=([Param("seed", seed)] if seed is not None else []) + [Param(k, v) for k, v in (params or {}).items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    client.set_terminated(run.info.run_id, "FINISHED")


def test_report_writes_mean_and_std_per_method_between_the_markers(mlflow_uri: str, tmp_path: Path) -> None:
    report = load_report()
    client = MlflowClient(mlflow_uri)
    exp = client.create_experiment("report-study")
    baseline, clipreid = {"method": "baseline", "ssl": "none"}, {"method": "clipreid", "ssl": "none"}
    add_run(client, exp, baseline, {"mAP": 0.9, "rank1": 0.9, "mINP": 0.9}, seed="1")  # superseded by a re-run
    for seed, m in (("1", 0.1), ("2", 0.2), ("3", 0.3)):
        add_run(client, exp, baseline, {"mAP": m, "rank1": 2 * m, "mINP": m / 2}, seed=seed)
    add_run(client, exp, clipreid, {"mAP": 0.4, "rank1": 0.5, "mINP": 0.25}, seed="1")
    svll = {"method": "clipreid", "ssl": "simclr"}
    for seed, (vis, lang), m in (("1", ("0.8", "0.8"), 0.5), ("2", ("0.8", "0.8"), 0.7),
                                 ("1", ("0.8", "0.0"), 0.3), ("1", ("0", "0.8"), 0.6)):
        add_run(client, exp, svll, {"mAP": m, "rank1": m, "mINP": m}, seed=seed, params={"ssl.weight": vis, "ssl.lang_weight": lang})
    add_run(client, exp, {**clipreid, "optuna.study_name": "w"}, {"mAP": 0.99, "rank1": 1.0, "mINP": 1.0}, seed="7")
    parent = {"reid.sweep": "parent", "optuna.study_name": "w", "study_best_trial": "4",
              "study_best_params": json.dumps({"loss.id_weight": 0.123456})}
    add_run(client, exp, parent, {"study_trials_complete": 20, "study_best_value": 0.99})

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold table\n{report.END}\noutro\n")
    assert report.main(["--experiment", "report-study", "--tracking-uri", mlflow_uri, "--readme", str(readme)]) == 0

    text = readme.read_text()
    assert text.startswith(f"intro\n{report.START}\n") and text.endswith(f"\n{report.END}\noutro\n")
    assert "old table" not in text
    assert "| Baseline (CLIP fine-tuning) | baseline | none | - | 3 (1, 2, 3) | 20.00 ± 10.00 | 40.00 ± 20.00 | 10.00 ± 5.00 |" in text
    assert "| CLIP-ReID | clipreid | none | - | 1 (1) | 40.00 | 50.00 | 25.00 |" in text  # one seed: no std
    # The ablation's halves (one weight zero) are arms of their own, not seeds of SVLL-ReID.
    assert "| SVLL-ReID (SimCLR) | clipreid | simclr | both | 2 (1, 2) | 60.00 ± 14.14 | 60.00 ± 14.14 | 60.00 ± 14.14 |" in text
    assert "| SVLL-ReID, vision SSL only | clipreid | simclr | vision | 1 (1) | 30.00 | 30.00 | 30.00 |" in text
    assert "| SVLL-ReID, language SSL only | clipreid | simclr | language | 1 (1) | 60.00 | 60.00 | 60.00 |" in text
    assert "| w | 20 | 99.00 | 4 | `loss.id_weight=0.1235` |" in text
    assert "99.00 ±" not in text  # the Optuna trial is not a seed of CLIP-ReID


def test_report_needs_both_markers(tmp_path: Path) -> None:
    report = load_report()
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="needs the markers"):
        report.write_between_markers(readme, "table")
