"""Read the synthetic study's runs back from MLflow and write its results table into README.md.

Per arm (the runs' ``method`` and ``ssl`` tags, and which SSL terms had a non-zero weight, so the ablation's
halves are arms of their own): mean ± sample std over seeds of the final mAP, rank-1 and mINP,
from FINISHED runs that are not Optuna trials (the latest run per seed, so a re-run study is not double counted).
Per Optuna study (the sweeps' parent runs): trials completed, best mAP and its parameters.

    python experiments/synthetic_study/report.py [--experiment synthetic_study] [--tracking-uri URI] [--readme PATH]

The tracking URI defaults to the one conf/logger/mlflow.yaml gives a run started in the project root.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reid.tracking.run_info import search_all_runs

ROOT = Path(__file__).resolve().parents[2]
README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
METRICS = {"mAP": "mAP", "rank1": "rank-1", "mINP": "mINP"}  # metric -> column title
# The study's arms by (method, ssl tag, active SSL terms); anything else is reported under its tags.
ARMS = {
    ("baseline", "none", "-"): "Baseline (CLIP fine-tuning)",
    ("clipreid", "none", "-"): "CLIP-ReID",
    ("clipreid", "simclr", "both"): "SVLL-ReID (SimCLR)",
    ("clipreid", "simclr", "language"): "SVLL-ReID, language SSL only",
    ("clipreid", "simclr", "vision"): "SVLL-ReID, vision SSL only",
    ("clipreid", "simsiam", "both"): "SVLL-ReID with SimSiam",
}
STUDY_TAG = "optuna.study_name"


@dataclass
class ArmResult:
    label: str
    method: str
    ssl: str
    terms: str
    seeds: list[str]
    values: dict[str, list[float]]


def default_tracking_uri() -> str:
    """conf/logger/mlflow.yaml's tracking_uri as resolved for a run started in the project root."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("train", return_hydra_config=True)
    cfg.hydra.runtime.cwd = str(ROOT)
    HydraConfig.instance().set_config(cfg)
    return str(cfg.logger.tracking_uri)


def ssl_terms(ssl: str, params: dict[str, str]) -> str:
    """Which self-supervision terms a run had: both, language (stage 1) or vision (stage 2) only, none; "-" without SSL.

    Read from the logged weights (``ssl.weight``: vision, ``ssl.lang_weight``: language); a missing one counts as on.
    """
    if ssl == "none":
        return "-"
    vision = float(params.get("ssl.weight", "1")) != 0.0
    language = float(params.get("ssl.lang_weight", "1")) != 0.0
    return {(True, True): "both", (True, False): "vision", (False, True): "language"}.get((vision, language), "none")


def seed_results(runs: Sequence[Any]) -> list[ArmResult]:
    """Group the non-Optuna, non-parent runs by arm (method, ssl, SSL terms); the latest run per seed counts."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(dict)
    for run in sorted(runs, key=lambda r: r.info.start_time):
        tags, metrics = run.data.tags, run.data.metrics
        if STUDY_TAG in tags or tags.get("reid.sweep") == "parent" or not all(m in metrics for m in METRICS):
            continue
        ssl = tags.get("ssl", "?")
        arm = (tags.get("method", "?"), ssl, ssl_terms(ssl, run.data.params))
        latest[arm][run.data.params.get("seed", run.info.run_id)] = run
    order = list(ARMS) + sorted(set(latest) - set(ARMS))
    results = []
    for arm in (a for a in order if a in latest):
        by_seed = latest[arm]
        results.append(ArmResult(
            label=ARMS.get(arm, f"{arm[0]} + ssl={arm[1]} ({arm[2]})"), method=arm[0], ssl=arm[1], terms=arm[2],
            seeds=sorted(by_seed),
            values={m: [r.data.metrics[m] for _, r in sorted(by_seed.items())] for m in METRICS},
        ))
    return results


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN with a single seed)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def percent(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    return f"{100 * mean:.2f}" + ("" if math.isnan(std) else f" ± {100 * std:.2f}")


def study_results(runs: Sequence[Any]) -> list[dict[str, str]]:
    """The latest sweep parent of each Optuna study: the study-wide summary the sweep callback logged."""
    latest: dict[str, Any] = {}
    for run in sorted(runs, key=lambda r: r.info.start_time):
        if run.data.tags.get("reid.sweep") == "parent" and STUDY_TAG in run.data.tags:
            latest[run.data.tags[STUDY_TAG]] = run
    rows = []
    for study, run in sorted(latest.items()):
        m, tags = run.data.metrics, run.data.tags
        best = m.get("study_best_value")
        params = json.loads(tags.get("study_best_params", "{}"))
        rows.append({
            "study": study,
            "complete": str(int(m.get("study_trials_complete", 0))),
            "best": "–" if best is None else f"{100 * best:.2f}",
            "trial": tags.get("study_best_trial", "–"),
            "params": ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in params.items()) or "–",
        })
    return rows


def render(experiment: str, tracking_uri: str, arms: list[ArmResult], studies: list[dict[str, str]]) -> str:
    lines = [f"MLflow experiment `{experiment}` ({tracking_uri}); mean ± sample std over seeds, in %.", ""]
    if arms:
        lines += ["| Method | `method` | `ssl` | SSL terms | seeds | " + " | ".join(METRICS.values()) + " |",
                  "|---|---|---|---|---|" + "---|" * len(METRICS)]
        for a in arms:
            cells = " | ".join(percent(a.values[m]) for m in METRICS)
            lines.append(f"| {a.label} | {a.method} | {a.ssl} | {a.terms} | {len(a.seeds)} ({', '.join(a.seeds)}) | {cells} |")
    else:
        lines.append("No finished runs with final metrics yet.")
    if studies:
        lines += ["", "| Optuna study | complete trials | best mAP | best trial | best parameters |", "|---|---|---|---|---|"]
        lines += [f"| {s['study']} | {s['complete']} | {s['best']} | {s['trial']} | {s['params']} |" for s in studies]
    return "\n".join(lines)


def write_between_markers(path: Path, text: str) -> None:
    """Replace what lies between the START and END markers (both must be there, in order)."""
    content = path.read_text()
    head, sep, rest = content.partition(START)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError(f"{path} needs the markers {START} and {END}")
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="synthetic_study", help="MLflow experiment name (run.sh's default)")
    parser.add_argument("--tracking-uri", default=None, help="default: conf/logger/mlflow.yaml's store")
    parser.add_argument("--readme", type=Path, default=README, help="file holding the results markers")
    args = parser.parse_args(argv)
    from mlflow.tracking import MlflowClient

    uri = args.tracking_uri or default_tracking_uri()
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(args.experiment)
    if exp is None:
        print(f"no MLflow experiment {args.experiment!r} in {uri}", file=sys.stderr)
        return 1
    runs = list(search_all_runs(client, exp.experiment_id, "attributes.status = 'FINISHED'"))
    text = render(args.experiment, uri, seed_results(runs), study_results(runs))
    write_between_markers(args.readme, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
