"""`python -m reid.evaluate`: the metrics of a trained run (or of a feature file), with plots and an MLflow run.

A run is rebuilt with :func:`reid.inference.load_run` and scored on its own test
split with its own protocol settings, so the training run's final metrics are
reproduced exactly; ``dataset=<name>`` scores the same model on another dataset
and ``trials=N`` repeats VehicleID's seeded query/gallery draw N times (mean ±
std). A feature file (``features=<file.npz>``) is scored directly. Everything
lands in the job's Hydra folder (``metrics.json``, ``plots/``) and in a new
MLflow run tagged ``evaluates=<training run id>``.
"""
from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from reid.evaluation.protocol import PROTOCOL_KEYS as EVAL_PROTOCOL_KEYS

# conf/ sits beside the package in the project root; an absolute path works from any working directory.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")
FEATURE_KEYS = ("qf", "gf", "q_pids", "g_pids", "q_camids", "g_camids")
PATH_KEYS = ("q_paths", "g_paths")
# Settings that change the numbers (the EvalProtocol's, and the batch size of extraction); a run's own values apply
# unless given on the command line.
PROTOCOL_KEYS = (*EVAL_PROTOCOL_KEYS, "batch_size")


@dataclass
class Split:
    """One scored query/gallery split: its metrics and what the plots and the feature file need."""

    trial: int | None
    metrics: dict[str, float]
    cmc: np.ndarray
    distances: Any  # DistanceRows of the split (reid.evaluation.distance_rows)
    qf: Any
    gf: Any
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    q_paths: list[str] | None = None
    g_paths: list[str] | None = None


@dataclass
class EvaluationReport:
    """What one evaluation produced; ``metrics`` are means over ``splits`` (one split unless trials > 1)."""

    metrics: dict[str, float]
    std: dict[str, float]
    splits: list[Split]
    dataset: str
    eval_settings: dict[str, Any]
    output_dir: Path
    table: str
    source: str
    evaluates: str | None = None
    mlflow_run_id: str | None = None
    files: dict[str, Path] = field(default_factory=dict)


# ---------------------------------------------------------------- feature files


def load_feature_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read and check a feature file; every problem is a ``ValueError`` naming the file and the array.

    Checks: the six arrays are present; ``qf``/``gf`` are finite, non-empty 2-D
    float arrays of the same width; label arrays are 1-D integers with one entry
    per feature row; optional ``q_paths``/``g_paths`` have one entry per row.
    """
    from reid.evaluation import _inputs

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"features={path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err})") from None
    missing = [k for k in FEATURE_KEYS if k not in arrays]
    if missing:
        raise ValueError(
            f"{path}: missing array(s) {missing}; a feature file holds {list(FEATURE_KEYS)} (+ optional "
            f"{list(PATH_KEYS)})"
        )
    try:
        qf = _inputs.features(arrays["qf"], "qf")
        gf = _inputs.features(arrays["gf"], "gf")
        if qf.shape[1] != gf.shape[1]:
            raise ValueError(f"qf has {qf.shape[1]}-dim features but gf has {gf.shape[1]}-dim ones")
        for side, n in (("q", qf.shape[0]), ("g", gf.shape[0])):
            for name in (f"{side}_pids", f"{side}_camids"):
                labels = _inputs.labels(arrays[name], name)
                if labels.shape[0] != n:
                    raise ValueError(f"{name} has {labels.shape[0]} entries but {side}f has {n} rows")
                arrays[name] = labels
            key = f"{side}_paths"
            if key in arrays and (arrays[key].ndim != 1 or arrays[key].shape[0] != n):
                raise ValueError(f"{key} has shape {arrays[key].shape} but {side}f has {n} rows")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return arrays


def save_feature_file(path: Path, split: Split) -> Path:
    """Write a split's raw descriptors and labels in the format ``features=`` reads."""
    arrays: dict[str, np.ndarray] = {
        "qf": np.asarray(split.qf, dtype=np.float32), "gf": np.asarray(split.gf, dtype=np.float32),
        "q_pids": split.q_pids, "g_pids": split.g_pids, "q_camids": split.q_camids, "g_camids": split.g_camids,
    }
    if split.q_paths is not None and split.g_paths is not None:
        arrays["q_paths"], arrays["g_paths"] = np.asarray(split.q_paths), np.asarray(split.g_paths)
    np.savez(path, **arrays)
    return path


# ---------------------------------------------------------------- settings


def eval_settings(defaults: DictConfig, run_eval: DictConfig | None, overrides: Sequence[str] = ()) -> DictConfig:
    """The eval settings to use: defaults, then a run's protocol values, then ``eval.*`` command-line overrides.

    A run is scored with its own protocol (flip, batch size, re-ranking ...) so
    its metrics are reproduced; what the user types on this command line wins.
    ``eval=<option>`` on the command line selects that group as a whole.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    chosen = OmegaConf.to_container(defaults, resolve=True)
    assert isinstance(chosen, dict)
    if run_eval is None:
        return OmegaConf.create(chosen)
    given: set[str] = set()
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if key == "eval":
            return OmegaConf.create(chosen)
        if key.startswith("eval."):
            given.add(key.split(".", 2)[1])
    run_values = OmegaConf.to_container(run_eval, resolve=True)
    assert isinstance(run_values, dict)
    merged = dict(chosen)
    for key in PROTOCOL_KEYS:
        if key in run_values and key not in given:
            merged[key] = run_values[key]
    return OmegaConf.create(merged)


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _tracking_uri(cfg: DictConfig) -> str:
    from reid.inference import default_tracking_uri

    return str(cfg.logger.get("tracking_uri") or default_tracking_uri(cfg.paths.root_dir))


# ---------------------------------------------------------------- scoring


def _score(e: DictConfig, qf: Any, gf: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any) -> Any:
    from reid.build import eval_protocol
    from reid.engine.evaluator import score

    return score(qf, gf, q_pids, g_pids, q_camids, g_camids, eval_protocol(e))


def _labels(records: Sequence[Any], attr: str) -> np.ndarray:
    return np.asarray([getattr(r, attr) for r in records], dtype=np.int64)


def _split_from_records(
    e: DictConfig, trial: int | None, query: Sequence[Any], gallery: Sequence[Any], qf: Any, gf: Any
) -> Split:
    q_pids, g_pids = _labels(query, "pid"), _labels(gallery, "pid")
    q_cams, g_cams = _labels(query, "camid"), _labels(gallery, "camid")
    result = _score(e, qf, gf, q_pids, g_pids, q_cams, g_cams)
    return Split(
        trial, result.metrics, result.cmc, result.distances, qf.numpy(), gf.numpy(), q_pids, g_pids, q_cams, g_cams,
        [r.path for r in query], [r.path for r in gallery],
    )


def _evaluate_features(cfg: DictConfig) -> tuple[list[Split], DictConfig, str, dict[str, str]]:
    import torch

    path = Path(str(cfg.features)).expanduser().resolve()
    arrays = load_feature_file(path)
    e = eval_settings(cfg.eval, None)
    # torch tensors: the same normalisation and distance code as a run's evaluation, hence the same numbers
    qf, gf = torch.from_numpy(np.ascontiguousarray(arrays["qf"])), torch.from_numpy(np.ascontiguousarray(arrays["gf"]))
    try:
        result = _score(e, qf, gf, arrays["q_pids"], arrays["g_pids"], arrays["q_camids"], arrays["g_camids"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    paths = {k: [str(p) for p in arrays[k]] for k in PATH_KEYS if k in arrays}
    split = Split(
        None,
        result.metrics,
        result.cmc,
        result.distances,
        arrays["qf"],
        arrays["gf"],
        arrays["q_pids"],
        arrays["g_pids"],
        arrays["q_camids"],
        arrays["g_camids"],
        paths.get("q_paths"),
        paths.get("g_paths"),
    )
    print(f"features: {path} ({len(split.q_pids)} query, {len(split.g_pids)} gallery, dim {qf.shape[1]})", flush=True)
    return [split], e, path.stem, {"features": str(path)}


def _dataset_for(cfg: DictConfig, trained: Any) -> tuple[dict[str, Any], bool]:
    """(plain dataset node, overridden?): the run's own dataset unless ``dataset=<name>`` was given."""
    node = cfg.get("dataset")
    if node is None:
        plain = OmegaConf.to_container(trained.config.dataset, resolve=True)
        return plain, False
    return OmegaConf.to_container(node, resolve=True), True


def _trial_ids(dataset: dict[str, Any], trials: int) -> list[int | None]:
    """None: the configured split as it is; 0..trials-1: the seeded draws of a dataset with a ``trial`` option."""
    if trials == 1:
        return [None]
    if "trial" not in (dataset.get("options") or {}):
        raise ValueError(
            f"trials={trials}: dataset {dataset['name']} has a fixed query/gallery split (no dataset.options.trial); "
            "repeated seeded splits are VehicleID's protocol"
        )
    return list(range(trials))


def _evaluate_run(cfg: DictConfig, overrides: Sequence[str]) -> tuple[list[Split], DictConfig, str, dict[str, str]]:
    from reid.build import limit_test_set
    from reid.data import load_dataset
    from reid.inference import load_run

    trials = _positive_int(cfg.trials, "trials")
    trained = load_run(cfg.run, device=str(cfg.device), tracking_uri=_tracking_uri(cfg), root_dir=cfg.paths.root_dir)
    print(f"run: {trained.describe()}", flush=True)
    e = eval_settings(cfg.eval, trained.config.eval, overrides)
    dataset, overridden = _dataset_for(cfg, trained)
    trial_ids = _trial_ids(dataset, trials)
    limit = cfg.eval_images
    if limit is None:
        limit = (trained.config.get("limits") or {}).get("eval_images") or 0
    limit = _positive_int(int(limit), "eval_images", minimum=0)
    side_info = trained.uses_side_info and not overridden
    if overridden:
        h, w = trained.input_size
        note = "; SIE off (its cameras are the training set's)" if trained.uses_side_info else ""
        print(
            f"dataset: {dataset['name']} with the {trained.dataset_name} model, images resized to its {h}x{w} "
            f"input{note}"
        )
    options = dict(dataset.get("options") or {})
    tests = []
    for trial in trial_ids:
        opts = options if trial is None else {**options, "trial": trial}
        ds = load_dataset(dataset["name"], dataset["root"], **opts)  # logs its summary table
        tests.append((trial if trial is not None else ds.meta.get("trial"), limit_test_set(ds, limit)))

    kw = dict(
        side_info=side_info,
        num_workers=int(cfg.num_workers),
        progress=bool(cfg.progress),
        batch_size=int(e.batch_size),
        flip=bool(e.flip),
    )
    splits = []
    if len(tests) == 1:  # query and gallery batched apart, as the training run's evaluation did: identical numbers
        trial, test = tests[0]
        qf = trained.extract(test.query, desc="query", **kw)
        gf = trained.extract(test.gallery, desc="gallery", **kw)
        splits.append(_split_from_records(e, trial, test.query, test.gallery, qf, gf))
    else:  # the splits re-draw the same test images: encode each image once
        unique = list(dict.fromkeys(r for _, t in tests for r in (*t.query, *t.gallery)))
        row = {r: i for i, r in enumerate(unique)}
        feats = trained.extract(unique, desc="test images", **kw)
        for trial, test in tests:
            qf = feats[[row[r] for r in test.query]]
            gf = feats[[row[r] for r in test.gallery]]
            splits.append(_split_from_records(e, trial, test.query, test.gallery, qf, gf))
    tags = {"evaluated_run_dir": str(trained.run_dir), "checkpoint": str(trained.checkpoint)}
    if trained.mlflow_run_id:
        tags["evaluates"] = trained.mlflow_run_id
    return splits, e, str(dataset["name"]), tags


# ---------------------------------------------------------------- reporting


def _summary(splits: list[Split]) -> tuple[dict[str, float], dict[str, float]]:
    """Means over the splits and, for several, their sample standard deviations (ddof=1)."""
    names = [m for m in METRICS if all(m in s.metrics for s in splits)]
    values = {m: np.array([s.metrics[m] for s in splits], dtype=np.float64) for m in names}
    means = {m: float(v.mean()) for m, v in values.items()}
    stds = {m: float(v.std(ddof=1)) for m, v in values.items()} if len(splits) > 1 else {}
    return means, stds


def format_table(title: str, splits: list[Split], means: dict[str, float], stds: dict[str, float]) -> str:
    """The metrics in percent; several splits get a row each and a final ``mean ± std`` row."""
    names = list(means)
    if len(splits) == 1:
        head = " | ".join(f"{n:>7}" for n in names)
        row = " | ".join(f"{100 * means[n]:6.2f}%" for n in names)
        return f"{title}\n{head}\n{'-' * len(head)}\n{row}"
    width = 15
    head = f"{'split':>10} | " + " | ".join(f"{n:>{width}}" for n in names)
    lines = [title, head, "-" * len(head)]
    for s in splits:
        lines.append(
            f"{f'trial {s.trial}':>10} | " + " | ".join(f"{100 * s.metrics[n]:{width - 1}.2f}%" for n in names)
        )
    lines.append("-" * len(head))
    cells = [f"{100 * means[n]:.2f} ± {100 * stds[n]:.2f}" for n in names]
    lines.append(f"{'mean ± std':>10} | " + " | ".join(f"{c:>{width - 1}}%" for c in cells))
    return "\n".join(lines)


def _plots(out_dir: Path, splits: list[Split], e: DictConfig, num_queries: int) -> dict[str, Path]:
    """CMC curve (mean over splits of equal length) and, when images are known, the first split's ranked lists."""
    from reid.evaluation.plots import plot_cmc, ranked_list_figure

    folder = out_dir / "plots"
    files: dict[str, Path] = {}
    length = min(len(s.cmc) for s in splits)
    cmc = np.mean([s.cmc[:length] for s in splits], axis=0)
    files["cmc"] = plot_cmc(cmc, folder / "cmc.png")
    first = splits[0]
    if first.q_paths is not None and first.g_paths is not None:
        if all(Path(p).is_file() for p in (*first.q_paths, *first.g_paths)):
            files["ranked_list"] = ranked_list_figure(
                first.q_paths, first.g_paths, first.distances, first.q_pids, first.g_pids, first.q_camids,
                first.g_camids, folder / "ranked_list.png", topk=10, num_queries=num_queries,
            )
        else:
            print("ranked list skipped: some image paths of the feature file do not exist here", flush=True)
    return files


def _log(cfg: DictConfig, report: EvaluationReport, tags: dict[str, str]) -> str | None:
    """One new MLflow run (logger=mlflow) with the standard metric names, the settings and the files."""
    from reid.tracking import build_tracker, flatten_config
    from reid.tracking.run_info import git_commit

    logger = OmegaConf.to_container(cfg.logger, resolve=True)
    assert isinstance(logger, dict)
    tracker = build_tracker(
        str(logger["kind"]), **{k: v for k, v in logger.items() if k in ("tracking_uri", "experiment_name")}
    )
    run_name = logger.get("run_name") or f"evaluate-{report.dataset}"
    run_id = tracker.start(
        run_name,
        {**tags, "reid.task": "evaluate", "dataset": report.dataset, "output_dir": str(report.output_dir),
         "git_commit": git_commit(str(cfg.paths.root_dir))},
    )
    status = "FAILED"
    try:
        tracker.log_params(
            flatten_config(
                {
                    "eval": report.eval_settings,
                    "dataset": report.dataset,
                    "trials": len(report.splits),
                    "source": report.source,
                }
            )
        )
        tracker.log_metrics(report.metrics)
        if report.std:
            tracker.log_metrics({f"{k}_std": v for k, v in report.std.items()})
            for s in report.splits:
                tracker.log_metrics({f"trial/{k}": v for k, v in s.metrics.items()}, step=int(s.trial or 0))
        for path in report.files.values():
            if path.suffix != ".npz":  # descriptors can be large; they stay in the output folder
                tracker.log_artifact(path, "plots" if path.parent.name == "plots" else None)
        tracker.log_text(OmegaConf.to_yaml(cfg), "config/evaluate.yaml")
        status = "FINISHED"
    finally:
        tracker.end(status)
    return run_id


def evaluate(cfg: DictConfig, overrides: Sequence[str] = ()) -> EvaluationReport:
    """Score ``cfg.run`` or ``cfg.features``; print, plot, save and log. ``overrides``: this job's command line."""
    run, features = cfg.get("run"), cfg.get("features")
    if (run is None) == (features is None):
        raise ValueError(
            "give exactly one of run=<run folder | checkpoint file | MLflow run id> or features=<file.npz> "
            f"(got run={run}, features={features})"
        )
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if features is not None:
        if cfg.get("dataset") is not None or cfg.trials != 1:
            raise ValueError("dataset= and trials= apply to a run; a feature file is scored as it is")
        splits, e, dataset, tags = _evaluate_features(cfg)
        source = str(features)
    else:
        splits, e, dataset, tags = _evaluate_run(cfg, overrides)
        source = tags["checkpoint"]
    means, stds = _summary(splits)
    how = f"re-ranked k1={e.k1} k2={e.k2} lambda={e.lambda_value}" if e.rerank else "no re-ranking"
    count = f", {len(splits)} trials: mean ± std" if len(splits) > 1 else ""
    sizes = f"{len(splits[0].q_pids)} query / {len(splits[0].g_pids)} gallery"
    title = f"evaluation on {dataset} ({sizes}, {how}{count})"
    table = format_table(title, splits, means, stds)
    print(table, flush=True)
    report = EvaluationReport(
        means, stds, splits, dataset, OmegaConf.to_container(e, resolve=True), out_dir, table, source,  # type: ignore[arg-type]
        evaluates=tags.get("evaluates"),
    )
    if bool(cfg.eval.plots):
        report.files.update(_plots(out_dir, splits, e, int(cfg.eval.ranked_list_queries)))
    if bool(cfg.save_features) and features is None:
        for s in splits:
            name = "features.npz" if len(splits) == 1 else f"features_trial{s.trial}.npz"
            report.files[name] = save_feature_file(out_dir / name, s)
    summary = {
        "dataset": dataset, "source": source, **tags, "eval": report.eval_settings, "metrics": means, "std": stds,
        "trials": [{"trial": s.trial, **s.metrics} for s in splits],
    }
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(summary, indent=2) + "\n")
    report.files["metrics"] = metrics_path
    report.mlflow_run_id = _log(cfg, report, tags)
    print(
        f"results: {out_dir}" + (f"  (MLflow run {report.mlflow_run_id})" if report.mlflow_run_id else ""), flush=True
    )
    return report


@hydra.main(config_path=CONFIG_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    from reid.errors import exit_on_user_error

    with exit_on_user_error(bool(cfg.get("traceback", False))):
        return evaluate(cfg, HydraConfig.get().overrides.task).metrics["mAP"]


if __name__ == "__main__":
    main()
