"""Bad input data stops with an error naming the file (or the layout), or is skipped and counted when asked.

Images: a Market-1501 copy of the session's tiny world with one file broken per case. Features: ``.npz`` files
handed to ``reid.evaluation.evaluate`` / ``re_ranking``.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from reid.data import load_dataset
from reid.data.errors import DatasetError

if TYPE_CHECKING:
    from conftest import FaultEnv

TOP = "Market-1501-v15.09.15"
SPLITS = ("bounding_box_train", "query", "bounding_box_test")


@pytest.fixture
def market(fault_env: FaultEnv, tmp_path: Path) -> Path:
    """A dataset root holding the tiny world as a plain Market-1501 dataset (read by dataset=market1501)."""
    shutil.copytree(fault_env.data_dir / "synthetic" / TOP, tmp_path / "market" / TOP)
    return tmp_path / "market"


def _victim(root: Path, split: str = "bounding_box_train", index: int = 3) -> Path:
    """An image the dataset keeps (junk images, pid -1, are dropped before any check)."""
    return sorted(p for p in (root / TOP / split).glob("*.jpg") if not p.name.startswith("-1_"))[index]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _not_an_image(path: Path) -> None:
    path.write_text("this is a README saved with an image's name\n")


def _truncated_png(path: Path) -> Path:
    png = path.with_suffix(".png")
    Image.open(path).save(png)
    path.unlink()
    _truncate(png)
    return png


BREAKERS = {
    "truncated JPEG": (_truncate, "OSError: image file is truncated"),
    "zero-byte file": (_zero_bytes, "zero-byte file"),
    "not an image": (_not_an_image, "UnidentifiedImageError"),
    "truncated PNG": (_truncated_png, None),
}


@pytest.mark.parametrize("kind", list(BREAKERS))
def test_verify_images_names_the_bad_file_and_why(market: Path, kind: str) -> None:
    breaker, reason = BREAKERS[kind]
    victim = _victim(market)
    victim = breaker(victim) or victim
    with pytest.raises(DatasetError) as err:
        load_dataset("market1501", market, verify_images=True)
    message = str(err.value)
    assert message.startswith("market1501: 1 corrupt or unreadable image(s): ")
    assert f"{victim} (" in message
    if reason is not None:
        assert reason in message
    assert "drop them with dataset.options.skip_corrupt=true" in message
    load_dataset("market1501", market)  # without verification the parser alone does not open images


def test_skip_corrupt_drops_and_counts(market: Path) -> None:
    clean = load_dataset("market1501", market)
    broken = [
        _victim(market, "bounding_box_train", 0),
        _victim(market, "query", 1),
        _victim(market, "bounding_box_test", 2),
    ]
    _truncate(broken[0]), _zero_bytes(broken[1]), _not_an_image(broken[2])
    ds = load_dataset("market1501", market, skip_corrupt=True)
    assert ds.meta["skipped_corrupt"] == 3
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (
        len(clean.train) - 1,
        len(clean.query) - 1,
        len(clean.gallery) - 1,
    )
    kept = {r.path for r in (*ds.train, *ds.query, *ds.gallery)}
    assert not kept & {str(p) for p in broken}
    assert sorted({r.pid for r in ds.train}) == list(range(ds.num_train_pids))  # still 0..N-1


def _market_job(market: Path, *overrides: str) -> tuple[str, ...]:
    return ("dataset=market1501", f"dataset.root={market}", "dataset.size=[128,64]", *overrides)


def test_training_stops_on_a_corrupt_image_before_building_anything(
    in_process: Callable[..., float], market: Path, tmp_path: Path
) -> None:
    victim = _victim(market, "query", 0)
    _zero_bytes(victim)
    with pytest.raises(DatasetError, match=f"{victim} \\(zero-byte file\\)"):
        in_process(tmp_path / "run", *_market_job(market, "dataset.options.verify_images=true"), world=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_skip_corrupt_hint_applied_as_written_trains_and_reports_the_count(
    in_process: Callable[..., float], fault_env: FaultEnv, market: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for split, index in (("bounding_box_train", 0), ("bounding_box_train", 5), ("bounding_box_test", 1)):
        _truncate(_victim(market, split, index))
    short = ("method=baseline", "method.stage2.epochs=1", "limits.steps_per_epoch=1")
    with pytest.raises(DatasetError) as err:
        in_process(tmp_path / "first", *_market_job(market, "dataset.options.verify_images=true", *short), world=False)
    hint = re.search(r"with (\S+=true) ", str(err.value))
    assert hint is not None, str(err.value)
    in_process(tmp_path / "run", *_market_job(market, hint.group(1), *short), experiment="skip-corrupt", world=False)
    assert "[data] skipped 3 corrupt image(s)" in capsys.readouterr().out
    run = fault_env.only_run("skip-corrupt")
    assert run.info.status == "FINISHED" and run.data.params["data.skipped_corrupt"] == "3"


def test_wrong_market_layout_names_the_expected_layout(market: Path) -> None:
    # A common mistake: the split folders copied straight under the root, without Market-1501's top folder.
    for split in SPLITS:
        shutil.move(market / TOP / split, market / split)
    (market / TOP).rmdir()
    with pytest.raises(DatasetError) as err:
        load_dataset("market1501", market)
    message = str(err.value)
    assert f"expected folder '{market / TOP}' does not exist" in message
    assert (
        "Expected layout under the dataset root:\n<root>/\n  Market-1501-v15.09.15/\n    bounding_box_train/  (*.jpg)"
        in message
    )


def test_wrong_folder_layout_names_the_expected_layout(tmp_path: Path) -> None:
    (tmp_path / "mine" / "train").mkdir(parents=True)
    Image.new("RGB", (8, 16)).save(tmp_path / "mine" / "train" / "c1_0001.jpg")  # no identity folder, no query/
    with pytest.raises(DatasetError) as err:
        load_dataset("folder", tmp_path / "mine")
    message = str(err.value)
    assert "found neither a manifest (manifest.csv or manifest.tsv) nor the folder(s) query/, gallery/" in message
    assert "train/<identity>/<image>.jpg" in message


# ----------------------------------------------------------------------------------------------- feature files


def _features_npz(path: Path, **changes: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "qf": rng.normal(size=(4, 8)).astype(np.float32),
        "gf": rng.normal(size=(6, 8)).astype(np.float32),
        "q_pids": np.array([1, 2, 3, 4]),
        "g_pids": np.array([1, 2, 3, 4, 5, 6]),
        "q_camids": np.zeros(4, dtype=np.int64),
        "g_camids": np.ones(6, dtype=np.int64),
    }
    np.savez(path, **{**arrays, **changes})
    return path


def _evaluate_npz(path: Path) -> None:
    from reid.evaluation import evaluate
    from reid.evaluation.distance import squared_euclidean

    f = np.load(path)
    distmat = squared_euclidean(f["qf"], f["gf"])
    evaluate(np.asarray(distmat), f["q_pids"], f["g_pids"], f["q_camids"], f["g_camids"])


def test_good_feature_file_evaluates(tmp_path: Path) -> None:
    _evaluate_npz(_features_npz(tmp_path / "ok.npz"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"q_pids": np.array([1, 2, 3])}, "q_pids has 3 entries, expected 4"),
        ({"g_camids": np.ones(5, dtype=np.int64)}, "g_camids has 5 entries, expected 6"),
        ({"g_pids": np.arange(6, dtype=np.float64)}, "g_pids must have an integer dtype, got float64"),
        ({"qf": np.full((4, 8), np.nan, dtype=np.float32)}, "qf contains NaN or inf values"),
        ({"gf": np.ones((6, 5), dtype=np.float32)}, "qf and gf have different feature dims: 8 vs 5"),
    ],
    ids=["short q_pids", "short g_camids", "float g_pids", "NaN qf", "gf dim mismatch"],
)
def test_bad_feature_file_names_the_array(tmp_path: Path, changes: dict[str, np.ndarray], message: str) -> None:
    path = _features_npz(tmp_path / "bad.npz", **changes)
    with pytest.raises(ValueError, match=message):
        _evaluate_npz(path)


def test_nan_distances_name_the_distance_matrix() -> None:
    from reid.evaluation import evaluate

    distmat = np.ones((2, 3), dtype=np.float32)
    distmat[1, 2] = np.nan
    with pytest.raises(ValueError, match="distmat contains NaN or inf values"):
        evaluate(
            distmat, np.array([1, 2]), np.array([1, 2, 3]), np.zeros(2, dtype=np.int64), np.ones(3, dtype=np.int64)
        )


def test_nan_features_in_re_ranking_name_the_array() -> None:
    from reid.evaluation import re_ranking

    qf = np.zeros((3, 4), dtype=np.float32)
    gf = np.ones((5, 4), dtype=np.float32)
    gf[2, 1] = np.inf
    with pytest.raises(ValueError, match="gf contains NaN or inf values"):
        re_ranking(qf, gf, k1=2, k2=1)
