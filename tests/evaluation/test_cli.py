"""`python -m reid.evaluate`, `python -m reid.search` and `reid.inference.load_run` on a real (tiny) trained run.

One CLIP-ReID smoke run is trained per module, as a user would (``python -m reid.train`` in a subprocess, so its
folder is a genuine Hydra run folder), on a world of 8 identities with ``debug=fast``. It uses the randomly
initialised ``clip_tiny`` backbone: the self-pretrained one would add a pretraining world and run to every fresh
``paths.model_dir``; that inference never needs a backbone's pretrained files is tested separately by pointing a
copy of the run's config at a missing pretrained folder.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.evaluation.cli_helpers import METRICS, _parse_results, _run
from tests.shared import TINY_WORLD

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
TRAIN = ("experiment=demo", "debug=fast", "backbone=clip_tiny", "eval.at_start=false", "eval.plots=false", *TINY_WORLD)
EXPERIMENT = "cli"


@dataclass
class Trained:
    run_dir: Path
    run_id: str
    metrics: dict[str, float]
    mlflow_uri: str
    data_dir: Path

    @property
    def market(self) -> Path:
        return self.data_dir / "synthetic" / "Market-1501-v15.09.15"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("cli")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    run_dir = tmp / "train_run"
    _run(
        [
            sys.executable,
            "-m",
            "reid.train",
            *TRAIN,
            f"paths.data_dir={tmp / 'data'}",
            f"paths.model_dir={tmp / 'models'}",
            f"logger.tracking_uri={uri}",
            f"logger.experiment_name={EXPERIMENT}",
            f"hydra.run.dir={run_dir}",
        ]
    )
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(runs) == 1
    run = runs[0]
    return Trained(run_dir, run.info.run_id, {m: run.data.metrics[m] for m in METRICS}, uri, tmp / "data")


@pytest.fixture(scope="module")
def cli_eval(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """``python -m reid.evaluate run=<run folder>`` as documented, also writing the features it scored."""
    out = tmp_path_factory.mktemp("cli_eval") / "job"
    done = _run([
        sys.executable, "-m", "reid.evaluate", f"run={trained.run_dir}", f"logger.tracking_uri={trained.mlflow_uri}",
        f"logger.experiment_name={EXPERIMENT}", "num_workers=0", "progress=false", "save_features=true",
        f"hydra.run.dir={out}",
    ])
    return out, done


def compose_evaluate(*overrides: str):
    """The evaluate config as the CLI composes it; Hydra's run folder and cwd given as explicit paths."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR)):
        return compose("evaluate", overrides=list(overrides))


def run_evaluate(tmp_path: Path, *overrides: str):
    from reid.evaluate import evaluate

    full = (
        f"paths.root_dir={ROOT}",
        f"paths.output_dir={tmp_path / 'eval'}",
        "num_workers=0",
        "progress=false",
        *overrides,
    )
    return evaluate(compose_evaluate(*full), full)


def _direct_metrics(qf, gf, q_pids, g_pids, q_cams, g_cams, rerank: dict | None = None) -> dict[str, float]:
    """The metrics straight from reid.evaluation, the way the evaluation protocol defines them."""
    from reid.evaluation import evaluate, re_ranking
    from reid.evaluation.distance import l2_normalize, squared_euclidean

    q, g = l2_normalize(torch.as_tensor(qf)), l2_normalize(torch.as_tensor(gf))
    dist = re_ranking(q, g, **rerank) if rerank else squared_euclidean(q, g)
    cmc, mAP, mINP = evaluate(dist, q_pids, g_pids, q_cams, g_cams, max_rank=50)
    ranks = {f"rank{r}": cmc[r - 1] for r in (1, 5, 10) if r <= len(cmc)}  # the CMC stops at the gallery size
    return {"mAP": mAP, **ranks, "mINP": mINP}


# ---------------------------------------------------------------- evaluate: runs


def test_evaluate_run_folder_reproduces_the_training_metrics(trained: Trained, cli_eval) -> None:
    from mlflow.tracking import MlflowClient

    out, done = cli_eval
    assert "evaluation on synthetic (35 query / 91 gallery, no re-ranking)" in done.stdout
    assert re.search(r"mAP \|\s+rank1 \|\s+rank5 \|\s+rank10 \|\s+mINP", done.stdout)
    for name in ("plots/cmc.png", "plots/ranked_list.png", "metrics.json", "features.npz", ".hydra/config.yaml"):
        assert (out / name).is_file(), name
    client = MlflowClient(trained.mlflow_uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.output_dir = '{out}'")
    assert len(runs) == 1
    ev = runs[0]
    assert ev.data.tags["evaluates"] == trained.run_id
    assert ev.data.tags["checkpoint"] == str(trained.run_dir / "checkpoints" / "ckpt_stage2_e0001.pt")
    assert ev.info.status == "FINISHED"
    # Same weights, same test slice (the run's limits.eval_images), same protocol: the same numbers, bit for bit.
    assert {m: ev.data.metrics[m] for m in METRICS} == trained.metrics
    artifacts = {a.path for a in client.list_artifacts(ev.info.run_id)} | {
        a.path for a in client.list_artifacts(ev.info.run_id, "plots")
    }
    assert {"metrics.json", "plots/cmc.png", "plots/ranked_list.png"} <= artifacts


def test_evaluate_by_mlflow_run_id_and_eval_overrides(trained: Trained, cli_eval, tmp_path: Path) -> None:
    out, _ = cli_eval
    logger = (f"logger.tracking_uri={trained.mlflow_uri}", f"logger.experiment_name={EXPERIMENT}")
    report = run_evaluate(tmp_path / "by_id", f"run={trained.run_id}", *logger)
    assert report.metrics == trained.metrics
    assert report.evaluates == trained.run_id and report.mlflow_run_id is not None

    # eval.* on the command line overrides the run's own protocol: here k-reciprocal re-ranking.
    report = run_evaluate(
        tmp_path / "rerank", f"run={trained.run_dir}", "eval.rerank=true", "eval.k1=6", "eval.k2=3", "logger=none"
    )
    f = np.load(out / "features.npz")
    expected = _direct_metrics(
        f["qf"],
        f["gf"],
        f["q_pids"],
        f["g_pids"],
        f["q_camids"],
        f["g_camids"],
        rerank=dict(k1=6, k2=3, lambda_value=0.3),
    )
    assert report.metrics == pytest.approx(expected, abs=1e-12)
    assert report.metrics != trained.metrics
    assert "re-ranked k1=6 k2=3 lambda=0.3" in report.table


def _write_vehicleid(root: Path, market: Path) -> Path:
    """A VehicleID tree over the synthetic test images: each identity becomes a vehicle with 2+ images."""
    top = root / "VehicleID_V1.0"
    (top / "image").mkdir(parents=True)
    (top / "train_test_split").mkdir()
    lines: list[str] = []
    for folder in ("query", "bounding_box_test"):
        for p in sorted((market / folder).glob("*.jpg")):
            pid = int(p.name.split("_")[0])
            if pid > 0:
                shutil.copy(p, top / "image" / p.name)
                lines.append(f"{p.stem} {pid}")
    (top / "train_test_split" / "test_list_800.txt").write_text("\n".join(lines) + "\n")
    (top / "train_test_split" / "train_list.txt").write_text("\n".join(lines[:4]) + "\n")
    return root


def test_evaluate_on_another_dataset_over_seeded_trials(trained: Trained, tmp_path: Path) -> None:
    from reid.build import limit_test_set
    from reid.data import load_dataset
    from reid.inference import load_run

    root = _write_vehicleid(tmp_path / "vid", trained.market)
    report = run_evaluate(
        tmp_path, f"run={trained.run_dir}", "dataset=vehicleid", f"dataset.root={root}", "trials=3", "logger=none"
    )
    assert [s.trial for s in report.splits] == [0, 1, 2]
    assert len({tuple(s.q_paths) for s in report.splits}) == 3  # three different seeded draws
    names = ["mAP", "rank1", "rank5", "mINP"]  # one gallery image per vehicle: 8 images, so no rank-10
    assert list(report.metrics) == names
    per_trial = np.array([[s.metrics[m] for m in names] for s in report.splits])
    assert [report.metrics[m] for m in names] == pytest.approx(per_trial.mean(axis=0), abs=1e-15)
    assert [report.std[m] for m in names] == pytest.approx(per_trial.std(axis=0, ddof=1), abs=1e-15)
    assert "mean ± std" in report.table and "trial 2" in report.table

    # Each trial equals scoring that draw on its own (the run's 128x64 input, not VehicleID's 256x256).
    run = load_run(trained.run_dir)
    for split in report.splits:
        test = limit_test_set(load_dataset("vehicleid", root, trial=split.trial), int(run.config.limits.eval_images))
        qf, gf = run.extract(test.query), run.extract(test.gallery)
        labels = [np.array([getattr(r, a) for r in rs]) for a in ("pid", "camid") for rs in (test.query, test.gallery)]
        expected = _direct_metrics(qf, gf, labels[0], labels[1], labels[2], labels[3])
        assert split.metrics == pytest.approx(expected, rel=1e-9)

    with pytest.raises(ValueError, match="trials=2: dataset synthetic has a fixed query/gallery split"):
        run_evaluate(tmp_path, f"run={trained.run_dir}", "trials=2", "logger=none")


# ---------------------------------------------------------------- evaluate: feature files


def _features(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    q_pids = np.arange(6) % 4 + 1
    g_pids = np.concatenate([q_pids, q_pids, [0, 0, 7, 8]])
    centres = rng.normal(size=(9, 16))
    return {
        "qf": (centres[q_pids] + 0.8 * rng.normal(size=(6, 16))).astype(np.float32),
        "gf": (centres[g_pids] + 0.8 * rng.normal(size=(16, 16))).astype(np.float32),
        "q_pids": q_pids, "g_pids": g_pids,
        "q_camids": np.zeros(6, dtype=np.int64), "g_camids": np.arange(16) % 3 + 1,
    }


def test_feature_file_gives_the_direct_metrics(tmp_path: Path) -> None:
    arrays = _features()
    path = tmp_path / "feats.npz"
    np.savez(path, **arrays)
    report = run_evaluate(tmp_path, f"features={path}", "logger=none")
    expected = _direct_metrics(*(arrays[k] for k in ("qf", "gf", "q_pids", "g_pids", "q_camids", "g_camids")))
    assert report.metrics == expected
    assert report.dataset == "feats" and (tmp_path / "eval" / "plots" / "cmc.png").is_file()
    assert not (tmp_path / "eval" / "plots" / "ranked_list.png").exists()  # no image paths in the file

    report = run_evaluate(tmp_path, f"features={path}", "eval.rerank=true", "eval.k1=4", "eval.k2=2", "logger=none")
    rerank = dict(k1=4, k2=2, lambda_value=0.3)
    assert report.metrics == _direct_metrics(
        *(arrays[k] for k in ("qf", "gf", "q_pids", "g_pids", "q_camids", "g_camids")), rerank=rerank
    )


def test_feature_file_written_by_evaluate_reproduces_the_run(trained: Trained, cli_eval, tmp_path: Path) -> None:
    out, _ = cli_eval
    report = run_evaluate(tmp_path, f"features={out / 'features.npz'}", "logger=none")
    assert report.metrics == trained.metrics
    assert (tmp_path / "eval" / "plots" / "ranked_list.png").is_file()  # q_paths / g_paths are in the file


def _corrupt(kind: str) -> dict[str, np.ndarray]:
    a = _features()
    if kind == "nan":
        a["gf"][3, 5] = np.nan
    elif kind == "inf":
        a["qf"][0, 0] = np.inf
    elif kind == "short_labels":
        a["q_pids"] = a["q_pids"][:5]
    elif kind == "dims":
        a["gf"] = a["gf"][:, :8]
    elif kind == "one_d":
        a["qf"] = a["qf"][0]
    elif kind == "float_labels":
        a["g_camids"] = a["g_camids"].astype(np.float64)
    elif kind == "missing":
        del a["g_camids"]
    return a


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("nan", "gf contains NaN or inf values"),
        ("inf", "qf contains NaN or inf values"),
        ("short_labels", "q_pids has 5 entries but qf has 6 rows"),
        ("dims", "qf has 16-dim features but gf has 8-dim ones"),
        ("one_d", "qf must be 2-D (num_images, dim), got shape (16,)"),
        ("float_labels", "g_camids must have an integer dtype"),
        ("missing", "missing array(s) ['g_camids']"),
    ],
)
def test_corrupted_feature_file_names_the_file_and_the_array(tmp_path: Path, kind: str, message: str) -> None:
    path = tmp_path / f"{kind}.npz"
    np.savez(path, **_corrupt(kind))
    with pytest.raises(ValueError) as err:
        run_evaluate(tmp_path, f"features={path}", "logger=none")
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_unreadable_or_missing_feature_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=re.escape(f"{bad}: not a readable .npz file")):
        run_evaluate(tmp_path, f"features={bad}", "logger=none")
    with pytest.raises(FileNotFoundError, match=re.escape(f"features={tmp_path / 'none.npz'}: no such file")):
        run_evaluate(tmp_path, f"features={tmp_path / 'none.npz'}", "logger=none")
    with pytest.raises(ValueError, match="give exactly one of run="):
        run_evaluate(tmp_path, "logger=none")


# ---------------------------------------------------------------- search


def test_search_prints_the_top_k_and_draws_them(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from PIL import Image

    from reid.evaluation.distance import l2_normalize, squared_euclidean
    from reid.evaluation.plots import FALSE_COLOR, TRUE_COLOR
    from reid.inference import load_run
    from reid.search import gallery_images, main

    query = sorted((trained.market / "query").glob("*.jpg"))[2]
    gallery = trained.market / "bounding_box_test"
    out = tmp_path / "ranked.png"
    assert (
        main(
            [
                "--run",
                str(trained.run_dir),
                "--query",
                str(query),
                "--gallery",
                str(gallery),
                "--topk",
                "5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    rows = _parse_results(stdout)
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert f"gallery: {len(gallery_images(gallery))} images" in stdout
    assert "ranked by squared Euclidean on L2-normalised descriptors" in stdout

    # The same distance as the evaluation: squared Euclidean between L2-normalised descriptors, stable order.
    run = load_run(trained.run_dir)
    images = gallery_images(gallery)
    dist = squared_euclidean(l2_normalize(run.extract([query])), l2_normalize(run.extract(images)))[0]
    order = np.argsort(dist, kind="stable")[:5]
    assert [r[3] for r in rows] == [images[i] for i in order]
    assert [r[1] for r in rows] == pytest.approx([float(dist[i]) for i in order], abs=5e-5)
    q_pid = query.name.split("_")[0]
    assert [r[2] for r in rows] == ["yes" if r[3].name.split("_")[0] == q_pid else "no" for r in rows]

    # Query + gap + 5 cells of the model's 128x64 aspect, captions below; frames say same identity or not.
    picture = Image.open(out)
    assert picture.size == (64 * 6 + 16, 128 + 14)
    for col, row in enumerate(rows):
        frame = picture.getpixel((64 + 16 + 64 * col + 1, 1))
        assert frame == (TRUE_COLOR if row[2] == "yes" else FALSE_COLOR)


def test_search_unlabelled_folder_recursive_with_rerank(
    trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from PIL import Image

    from reid.search import NEUTRAL_COLOR, main

    sources = sorted((trained.market / "bounding_box_test").glob("*.jpg"))[:3]
    gallery = tmp_path / "gallery"
    (gallery / "sub" / "deeper").mkdir(parents=True)
    targets = [gallery / "a.jpg", gallery / "sub" / "b.JPEG", gallery / "sub" / "deeper" / "c.png"]
    for src, dst in zip(sources, targets):
        Image.open(src).save(dst, format="PNG" if dst.suffix == ".png" else "JPEG")
    (gallery / "notes.txt").write_text("not an image")
    query = targets[0]  # lies in the gallery: skipped, so it cannot be its own first match
    out = tmp_path / "r.png"
    assert (
        main(
            [
                "--run",
                str(trained.run_dir),
                "--query",
                str(query),
                "--gallery",
                str(gallery),
                "--out",
                str(out),
                "--rerank",
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    rows = _parse_results(stdout)
    assert sorted(r[3] for r in rows) == sorted(targets[1:])
    assert all(r[2] is None for r in rows) and "same id" not in stdout
    assert "ranked by k-reciprocal re-ranking (k1=50, k2=15, lambda=0.3)" in stdout
    picture = Image.open(out)
    assert picture.getpixel((64 + 16 + 1, 1)) == NEUTRAL_COLOR


# ---------------------------------------------------------------- load_run and its errors


def test_load_run_by_checkpoint_file_without_pretrained_files(trained: Trained, tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from reid.inference import load_run

    images = sorted((trained.market / "query").glob("*.jpg"))[:4]
    reference = load_run(trained.run_dir)
    ckpt = trained.run_dir / "checkpoints" / "ckpt_stage2_e0001.pt"
    by_file = load_run(ckpt)
    assert by_file.run_dir == trained.run_dir and by_file.checkpoint == ckpt
    assert by_file.mlflow_run_id == trained.run_id and (by_file.stage, by_file.epoch) == ("stage2", 1)
    assert torch.equal(by_file.extract(images), reference.extract(images))

    # A self-pretrained backbone whose pretrained folder is gone: built from backbone.config, never re-pretrained.
    copy = tmp_path / "run"
    shutil.copytree(trained.run_dir, copy)
    cfg = OmegaConf.load(copy / ".hydra" / "config.yaml")
    cfg.backbone.pretrained = str(tmp_path / "missing" / "clip_tiny_synthetic")
    cfg.backbone.pretrain = {"world_root": str(tmp_path / "missing"), "epochs": 8}
    OmegaConf.save(cfg, copy / ".hydra" / "config.yaml")
    moved = load_run(copy)
    assert torch.equal(moved.extract(images), reference.extract(images))
    assert not (tmp_path / "missing").exists()
    assert moved.config.paths.output_dir == str(copy) and moved.config.paths.root_dir == str(ROOT)


def test_checkpoint_weights_must_match_the_image_model(trained: Trained, tmp_path: Path) -> None:
    from reid.inference import RunLoadError, load_run

    state = torch.load(trained.run_dir / "checkpoints" / "ckpt_stage2_e0001.pt", weights_only=False)
    system = state["system"]
    ssl = tmp_path / "ssl.pt"  # SSL heads are not rebuilt for inference: their weights are ignored
    torch.save({**state, "system": {**system, "ssl_image.proj.weight": torch.zeros(2, 2)}}, ssl)
    assert load_run(trained.run_dir, ssl).ignored_keys == ["ssl_image.proj.weight"]

    missing = tmp_path / "missing.pt"
    torch.save({**state, "system": {k: v for k, v in system.items() if k != "image.head.bn.weight"}}, missing)
    with pytest.raises(
        RunLoadError,
        match=re.escape(f"checkpoint {missing} does not match the run's image model: missing ['image.head.bn.weight']"),
    ):
        load_run(trained.run_dir, missing)
    extra = tmp_path / "extra.pt"
    torch.save({**state, "system": {**system, "image.extra.weight": torch.zeros(1)}}, extra)
    with pytest.raises(RunLoadError, match=re.escape("unexpected ['image.extra.weight']")):
        load_run(trained.run_dir, extra)


def test_missing_paths_are_named(trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from reid.inference import RunLoadError, load_run
    from reid.search import main

    gone = tmp_path / "no_such_run"
    with pytest.raises(FileNotFoundError, match=re.escape(f"run {gone}: no such run folder or checkpoint file")):
        load_run(gone)
    with pytest.raises(FileNotFoundError, match=re.escape(str(gone))):
        run_evaluate(tmp_path, f"run={gone}", "logger=none")
    query = next((trained.market / "query").glob("*.jpg"))
    assert main(["--run", str(gone), "--query", str(query), "--gallery", str(trained.market / "query")]) == 2
    assert f"run {gone}: no such run folder" in capsys.readouterr().err

    no_config = tmp_path / "no_config"
    shutil.copytree(trained.run_dir / "checkpoints", no_config / "checkpoints")
    with pytest.raises(FileNotFoundError, match=re.escape(f"{no_config / '.hydra' / 'config.yaml'}: no Hydra config")):
        load_run(no_config)
    no_ckpt = tmp_path / "no_ckpt"
    shutil.copytree(trained.run_dir / ".hydra", no_ckpt / ".hydra")
    with pytest.raises(FileNotFoundError, match=re.escape(f"{no_ckpt / 'checkpoints'}: no checkpoints folder")):
        load_run(no_ckpt)
    (no_ckpt / "checkpoints").mkdir()
    shutil.copy(trained.run_dir / "checkpoints" / "ckpt_stage1_e0001.pt", no_ckpt / "checkpoints")
    with pytest.raises(FileNotFoundError, match=r"no stage-2 checkpoint .*holds ckpt_stage1_e0001\.pt"):
        load_run(no_ckpt)
    absent = trained.run_dir / "checkpoints" / "ckpt_stage2_e0099.pt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(absent))):
        load_run(trained.run_dir, "ckpt_stage2_e0099.pt")
    with pytest.raises(RunLoadError, match=f"MLflow run {'0' * 32} not found in {re.escape(trained.mlflow_uri)}"):
        load_run("0" * 32, tracking_uri=trained.mlflow_uri)
