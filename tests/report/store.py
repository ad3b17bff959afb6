"""Throwaway MLflow stores with runs that look like reid.train's (params, tags, final metrics), made directly with
the MLflow client: the reporting tests need the bookkeeping, not training."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

T0 = 1_700_000_000_000  # ms; runs start one second apart in the order they are added


@dataclass
class Store:
    uri: str
    client: MlflowClient
    artifacts: Path
    experiment_id: str = ""  # where add() puts runs: the experiment made last
    experiments: dict[str, str] = field(default_factory=dict)  # name -> id
    ids: dict[str, str] = field(default_factory=dict)  # our name for a run -> its MLflow id
    _clock: int = 0

    def experiment(self, name: str) -> str:
        self.experiment_id = self.client.create_experiment(name, artifact_location=(self.artifacts / name).as_uri())
        self.experiments[name] = self.experiment_id
        return self.experiment_id

    def add(
        self, key: str, params: dict[str, str] | None = None, metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None, status: str = "FINISHED", parent: str | None = None,
    ) -> str:
        """One run; ``parent`` is our name of an earlier run (tag mlflow.parentRunId)."""
        tags = dict(tags or {})
        if parent is not None:
            tags["mlflow.parentRunId"] = self.ids[parent]
        self._clock += 1
        run = self.client.create_run(self.experiment_id, start_time=T0 + 1000 * self._clock, tags=tags, run_name=key)
        run_id = run.info.run_id
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, T0, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if status != "RUNNING":
            self.client.set_terminated(run_id, status)
        self.ids[key] = run_id
        return run_id


def training_params(n: int, seed: int, experiment: str, **settings: object) -> dict[str, str]:
    """What every training run logs besides its settings: the seed and the per-run bookkeeping params."""
    return {
        "seed": str(seed),
        "paths.root_dir": "/work/project",
        "paths.output_dir": f"/work/project/outputs/demo/runs/2026-01-01_00-00-{n:02d}",
        "logger.experiment_name": experiment,
        "logger.tracking_uri": "sqlite:////work/project/mlflow.db",
        "dataset.name": "synthetic",
        **{k: str(v) for k, v in settings.items()},
    }


BASELINE = {"method.name": "baseline", "ssl.name": "none", "ssl.weight": "0.0", "loss.id_weight": "1.0"}
CLIPREID = {"method.name": "clipreid", "ssl.name": "none", "ssl.weight": "0.0", "loss.id_weight": "0.25"}
SVLL = {"method.name": "clipreid", "ssl.name": "simclr", "ssl.weight": "0.8", "loss.id_weight": "0.25"}
LANG_ONLY = {**SVLL, "ssl.weight": "0"}  # written as an override would write it: 0, not 0.0

# seed -> (mAP, rank1, mINP)
BASELINE_VALUES = {1: (0.10, 0.20, 0.05), 2: (0.20, 0.40, 0.10), 3: (0.30, 0.60, 0.15)}
CLIPREID_VALUES = {1: (0.15, 0.25, 0.05), 2: (0.22, 0.35, 0.10), 3: (0.38, 0.65, 0.15)}
SVLL_VALUES = {4: (0.40, 0.50, 0.20), 5: (0.50, 0.60, 0.30)}
LANG_ONLY_VALUES = {1: (0.12, 0.30, 0.06)}


def metrics(values: tuple[float, float, float]) -> dict[str, float]:
    return dict(zip(("mAP", "rank1", "mINP"), values))


def build_study_store(root: Path) -> Store:
    """Experiment ``study``: a sweep parent P with the baseline and CLIP-ReID seeds (CLIP-ReID's seed 3 one level
    deeper, under Q), a superseded first attempt of the baseline's seed 1, two stand-alone SVLL arms, an Optuna
    trial under its own parent, a FAILED and a RUNNING run. Experiment ``only_failed``: one FAILED run."""
    store = Store(uri=f"sqlite:///{root / 'mlflow.db'}", client=MlflowClient(f"sqlite:///{root / 'mlflow.db'}"),
                  artifacts=root / "artifacts")
    store.experiment("study")
    child = {"reid.sweep": "child"}
    store.add("P", params={"sweep.seed": "1,2,3"}, tags={"reid.sweep": "parent"})
    store.add("Q", params={"sweep.seed": "3"}, tags={"reid.sweep": "parent"}, parent="P")
    store.add("base1_first", training_params(0, 1, "study", **BASELINE), metrics((0.9, 0.9, 0.9)), child, parent="P")
    n = 1
    for seed, values in BASELINE_VALUES.items():
        store.add(f"base{seed}", {**training_params(n, seed, "study", **BASELINE), "override.seed": str(seed)},
                  metrics(values), child, parent="P")
        n += 1
    for seed, values in CLIPREID_VALUES.items():
        store.add(f"clip{seed}", training_params(n, seed, "study", **CLIPREID), metrics(values), child,
                  parent="Q" if seed == 3 else "P")
        n += 1
    for seed, values in SVLL_VALUES.items():
        store.add(f"svll{seed}", training_params(n, seed, "study", **SVLL), metrics(values))
        n += 1
    for seed, values in LANG_ONLY_VALUES.items():
        store.add(f"lang{seed}", training_params(n, seed, "study", **LANG_ONLY), metrics(values))
        n += 1
    store.add("O", params={"sweeper.n_trials": "20"}, metrics={"study_trials_complete": 20, "study_best_value": 0.99},
              tags={"reid.sweep": "parent", "optuna.study_name": "w", "study_best_trial": "4",
                    "study_best_params": json.dumps({"loss.id_weight": 0.123456})})
    store.add("trial0", training_params(n, 1, "study", **{**CLIPREID, "loss.id_weight": "0.6471"}),
              metrics((0.99, 0.99, 0.99)), {"optuna.trial_number": "0", "optuna.study_name": "w", **child}, parent="O")
    store.add("failed", training_params(n + 1, 4, "study", **BASELINE), tags=child, status="FAILED", parent="P")
    store.add("running", training_params(n + 2, 4, "study", **CLIPREID), status="RUNNING")
    store.experiment("only_failed")
    store.add("lonely", training_params(0, 1, "only_failed", **BASELINE), status="FAILED")
    return store
