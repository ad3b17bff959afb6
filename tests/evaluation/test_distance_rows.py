"""Training's evaluation never builds the (Q, G) matrix without re-ranking, and reads the same numbers as if it did."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import reid.evaluation.distance_rows as distance_rows
from reid.engine.evaluator import score
from reid.evaluation import evaluate
from reid.evaluation.diagnostics import same_camera_false_matches
from reid.evaluation.distance import l2_normalize, squared_euclidean
from reid.evaluation.distance_rows import DistanceRows
from reid.evaluation.plots import ranked_list_figure
from reid.evaluation.protocol import EvalProtocol


def _features(num_q: int = 600, num_g: int = 900, dim: int = 16, seed: int = 3):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, dim))
    q_pids, g_pids = rng.integers(0, 40, num_q), rng.integers(0, 40, num_g)
    qf = torch.as_tensor(centers[q_pids] + 0.8 * rng.standard_normal((num_q, dim)), dtype=torch.float32)
    gf = torch.as_tensor(centers[g_pids] + 0.8 * rng.standard_normal((num_g, dim)), dtype=torch.float32)
    return qf, gf, q_pids, g_pids, rng.integers(0, 6, num_q), rng.integers(0, 6, num_g)


def test_rows_blocks_and_taken_rows_equal_the_dense_matrix():
    qf, gf, *_ = _features(70, 50)
    dense = squared_euclidean(qf, gf)
    rows = DistanceRows.squared_euclidean(qf, gf)
    assert rows.shape == (70, 50)
    np.testing.assert_array_equal(rows.block(13, 41), dense[13:41])
    np.testing.assert_array_equal(rows.take([69, 0, 5, 5]), dense[[69, 0, 5, 5]])
    np.testing.assert_array_equal(np.concatenate([b for _, b in rows.blocks(9)]), dense)
    assert [a for a, _ in rows.blocks(32)] == [0, 32, 64]
    np.testing.assert_array_equal(rows.dense(), dense)
    np.testing.assert_array_equal(DistanceRows.from_matrix(dense).take([3, 1]), dense[[3, 1]])
    with pytest.raises(ValueError, match="indices into 70 queries"):
        rows.take([70])
    with pytest.raises(ValueError, match="2-D"):
        DistanceRows.from_matrix(dense[0])


def test_score_without_rerank_reads_blocks_only_and_gives_the_dense_metrics(monkeypatch):
    qf, gf, q_pids, g_pids, q_cams, g_cams = _features()
    computed_rows = []
    block = distance_rows.squared_euclidean_block

    def spy(q, g, g_sq=None):
        computed_rows.append(q.shape[0])
        return block(q, g, g_sq)

    monkeypatch.setattr(distance_rows, "squared_euclidean_block", spy)
    result = score(qf, gf, q_pids, g_pids, q_cams, g_cams, EvalProtocol(normalize=True, rerank=False))
    assert computed_rows and max(computed_rows) <= 256 and sum(computed_rows) == 600  # each row once, by blocks
    cmc, mAP, mINP = evaluate(squared_euclidean(l2_normalize(qf), l2_normalize(gf)), q_pids, g_pids, q_cams, g_cams)
    assert 0.2 < mAP < 0.95
    assert result.metrics["mAP"] == pytest.approx(mAP, abs=1e-12)
    assert result.metrics["mINP"] == pytest.approx(mINP, abs=1e-12)
    np.testing.assert_array_equal(result.cmc, cmc)


def test_camera_share_and_ranked_list_equal_on_rows_and_on_the_matrix(tmp_path, monkeypatch):
    qf, gf, q_pids, g_pids, q_cams, g_cams = _features(300, 40)
    dense = squared_euclidean(qf, gf)
    rows = DistanceRows.squared_euclidean(qf, gf)
    share = same_camera_false_matches(dense, q_pids, g_pids, q_cams, g_cams)
    assert 0.0 < share < 1.0
    assert same_camera_false_matches(rows, q_pids, g_pids, q_cams, g_cams) == share

    paths = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        Image.new("RGB", (16, 32), colour).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    q_paths, g_paths = [paths[i % 3] for i in range(300)], [paths[i % 3] for i in range(40)]
    args = (q_pids, g_pids, q_cams, g_cams)
    ranked_list_figure(q_paths, g_paths, dense, *args, tmp_path / "dense.png", topk=5, num_queries=4)
    taken = []
    take = rows.take
    monkeypatch.setattr(rows, "take", lambda idx: taken.append(list(idx)) or take(idx))
    ranked_list_figure(q_paths, g_paths, rows, *args, tmp_path / "rows.png", topk=5, num_queries=4)
    assert taken == [[0, 100, 199, 299]]  # the four shown queries' rows, nothing else
    with Image.open(tmp_path / "dense.png") as a, Image.open(tmp_path / "rows.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
