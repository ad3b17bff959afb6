"""docs/own_data.md's worked example, command for command: folder tree -> train -> evaluate (+ re-ranking) -> search.

The tree is the one ``experiments/own_data_example/make_folder_dataset.py`` writes (string identities and
cameras); training is CLIP-ReID (both stages) as ``experiment=demo`` runs it, shrunk to a smoke run
(``debug=fast``) on the randomly initialised ``clip_tiny`` so the test takes seconds, not minutes.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from tests.evaluation.cli_helpers import METRICS, _parse_results, _run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "experiments" / "own_data_example" / "make_folder_dataset.py"
WORLD = dict(  # 8 training identities (a PK batch's P), 5 test identities: 32 train, 10 query, 14 gallery images
    seed=3, num_train_ids=8, num_test_ids=5, num_cameras=3, min_cameras_per_id=2, max_cameras_per_id=2,
    min_images_per_camera=2, max_images_per_camera=2, num_distractors=4, num_junk=3, family_size=3,
    height=64, width=32,
)
EXPERIMENT = "own_data"
TEST_NAMES = {"ines", "jonas", "kiri", "lars", "mina"}
METRIC_ROW = re.compile(r"^\s*" + r"\s*\|\s*".join([r"(\d+\.\d+)%"] * 5) + r"\s*$", re.M)  # " 14.36% |  0.00% | ..."


def _example():
    spec = importlib.util.spec_from_file_location("make_folder_dataset", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Build the tree, train on it and evaluate the run twice (plain, re-ranked), as the docs show."""
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("own_data")
    example = _example()
    data = tmp / "mydata"
    counts = example.make_folder_dataset(data, tmp / "world", **WORLD)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    logger = (f"logger.tracking_uri={uri}", f"logger.experiment_name={EXPERIMENT}")
    run_dir = tmp / "train_run"
    train = _run([
        sys.executable, "-m", "reid.train", "dataset=folder", f"dataset.root={data}",
        f'dataset.options.camera_pattern="{example.CAMERA_PATTERN}"', "dataset.size=[128,64]", "experiment=demo",
        "debug=fast", "backbone=clip_tiny", "eval.plots=false", "eval.at_start=false",
        "dataset.options.val_fraction=0.0",  # the demo's validation split would leave 6 of the 8 ids: one P×K batch
        f"paths.model_dir={tmp / 'models'}", f"hydra.run.dir={run_dir}", *logger,
    ])
    evals = {}
    for name, extra in (("plain", ()), ("rerank", ("eval.rerank=true",))):
        evals[name] = _run(
            [
                sys.executable,
                "-m",
                "reid.evaluate",
                f"run={run_dir}",
                "num_workers=0",
                "progress=false",
                "eval.plots=false",
                f"hydra.run.dir={tmp / ('eval_' + name)}",
                *extra,
                *logger,
            ]
        ).stdout
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    return {
        "data": data,
        "counts": counts,
        "run_dir": run_dir,
        "train": train.stdout,
        "evals": evals,
        "client": client,
        "runs": runs,
    }


def test_training_reads_the_tree_and_keeps_the_user_labels(workflow: dict) -> None:
    assert workflow["counts"] == {"train": 32, "query": 10, "gallery": 14}
    out = workflow["train"]
    # the dataset check, then both CLIP-ReID stages (a smoke run: one short epoch each)
    assert re.search(r"train\s+\|\s+8\s+\|\s+32\s+\|\s+3", out) and re.search(r"query\s+\|\s+5\s+\|\s+10\s+\|", out)
    assert "stage1" in out and "stage2" in out
    maps = json.loads((workflow["run_dir"] / "label_maps.json").read_text())
    assert maps["pid"] == {
        "ada": 0, "bruno": 1, "cleo": 2, "dmitri": 3, "esme": 4, "farid": 5, "greta": 6, "hugo": 7,
        "ines": 8, "jonas": 9, "kiri": 10, "lars": 11, "mina": 12, "unknown": 13,
    }
    assert set(maps["camid"]) == {"north", "south", "east"} and sorted(maps["camid"].values()) == [0, 1, 2]
    (train_run,) = [r for r in workflow["runs"] if "evaluates" not in r.data.tags]
    assert train_run.data.tags["dataset"] == "folder" and train_run.data.params["dataset.name"] == "folder"
    assert "label_maps.json" in {a.path for a in workflow["client"].list_artifacts(train_run.info.run_id)}


def test_evaluate_reproduces_the_run_and_reranks(workflow: dict) -> None:
    (train_run,) = [r for r in workflow["runs"] if "evaluates" not in r.data.tags]
    plain, rerank = workflow["evals"]["plain"], workflow["evals"]["rerank"]
    assert "evaluation on folder (10 query / 14 gallery, no re-ranking)" in plain
    assert "evaluation on folder (10 query / 14 gallery, re-ranked k1=50 k2=15 lambda=0.3)" in rerank
    evaluations = {
        r.data.tags["output_dir"]: r for r in workflow["runs"] if r.data.tags.get("evaluates") == train_run.info.run_id
    }
    assert len(evaluations) == 2
    by_kind = {("rerank" if d.endswith("eval_rerank") else "plain"): r for d, r in evaluations.items()}
    assert {m: by_kind["plain"].data.metrics[m] for m in METRICS} == {m: train_run.data.metrics[m] for m in METRICS}
    printed = [float(x) for x in METRIC_ROW.search(plain).groups()]
    assert printed == pytest.approx([100 * train_run.data.metrics[m] for m in METRICS], abs=0.006)
    assert all(0.0 <= by_kind["rerank"].data.metrics[m] <= 1.0 for m in METRICS)


def test_search_marks_matches_by_folder_identity(workflow: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    from reid.evaluation.plots import FALSE_COLOR, TRUE_COLOR
    from reid.search import main

    data: Path = workflow["data"]
    query = sorted((data / "query" / "jonas").glob("*.jpg"))[0]
    out = tmp_path / "ranked.png"
    argv = [
        "--run",
        str(workflow["run_dir"]),
        "--query",
        str(query),
        "--gallery",
        str(data / "gallery"),
        "--topk",
        "14",
        "--out",
        str(out),
    ]
    assert main([*argv, "--labels", "folder"]) == 0
    rows = _parse_results(capsys.readouterr().out)
    assert len(rows) == 14 and sorted(r[3] for r in rows) == sorted((data / "gallery").rglob("*.jpg"))
    assert [r[2] for r in rows] == ["yes" if r[3].parent.name == "jonas" else "no" for r in rows]
    assert sum(r[2] == "yes" for r in rows) == 2  # jonas: 2 gallery images
    picture = Image.open(out)
    for col, row in enumerate(rows[:3]):
        assert picture.getpixel((64 + 16 + 64 * col + 1, 1)) == (TRUE_COLOR if row[2] == "yes" else FALSE_COLOR)
    # The tree's names are not Market-style: auto leaves matches unmarked, market says which file is wrong.
    assert main([*argv, "--labels", "auto"]) == 0
    assert "same id" not in capsys.readouterr().out
    assert main([*argv, "--labels", "market"]) == 2
    assert f"--labels market: {query} is not a Market-style name" in capsys.readouterr().err
    assert {p.name for p in (data / "gallery").iterdir()} == TEST_NAMES | {"unknown"}
