"""k-reciprocal re-ranking against a dense float64 transcription of the public algorithm."""
from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch

from reid.evaluation import evaluate, re_ranking
from reid.evaluation.knn import float32_error_coeff, search
from reid.evaluation.neighbours import SearchSettings, exact_neighbours
from reid.evaluation.rerank_reference import dense_re_ranking

BACKENDS = ["faiss_cpu", "torch"]


# --- Reference: the public re_ranking loop (Zhong et al.; CLIP-ReID utils/reranking.py),
# every array float64, rows sorted with a stable argsort. Distances are sum((x - y)^2).


def dense_sq_dists(x: np.ndarray) -> np.ndarray:
    out = np.empty((x.shape[0], x.shape[0]))
    for a in range(0, x.shape[0], 64):
        out[a : a + 64] = ((x[a : a + 64, None, :] - x[None, :, :]) ** 2).sum(-1)
    return out


def reference_re_ranking(qf, gf, k1, k2, lambda_value):
    return dense_re_ranking(qf, gf, k1, k2, lambda_value, dense_sq_dists)


# --- Data: L2-normalised clustered features with exact duplicates ------------------------


@cache
def clustered(num_q: int, num_g: int, seed: int = 0, dim: int = 24):
    rng = np.random.default_rng(seed)
    num_ids = max(4, (num_q + num_g) // 12)
    centers = rng.standard_normal((num_ids, dim))
    pids = rng.integers(0, num_ids, num_q + num_g)
    x = centers[pids] + 0.8 * rng.standard_normal((num_q + num_g, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    # Ties: duplicated gallery items (same identity and camera), and a query repeated in the gallery.
    cams = rng.integers(0, 6, num_q + num_g)
    for dst, src in ((num_q + 5, num_q + 7), (num_q + 8, num_q + 7), (num_q + 11, 2)):
        x[dst], pids[dst], cams[dst] = x[src], pids[src], cams[src]
    cams[num_q + 11] = (cams[2] + 1) % 6  # the repeated query is a true match of query 2
    return x[:num_q], x[num_q:], pids[:num_q], pids[num_q:], cams[:num_q], cams[num_q:]


@cache
def reference(num_q, num_g, k1, k2):
    qf, gf, *_ = clustered(num_q, num_g)
    return reference_re_ranking(qf, gf, k1, k2, 0.3)


CASES = [
    (20, 80, 20, 6),
    (20, 80, 3, 1),
    (20, 80, 4, 2),
    (50, 300, 20, 6),
    (50, 300, 50, 15),
    (50, 300, 3, 1),
    (50, 300, 7, 3),
    (50, 300, 9, 4),
    (100, 700, 20, 6),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_q, num_g, k1, k2", CASES)
def test_matches_dense_reference(backend, num_q, num_g, k1, k2):
    qf, gf, q_pids, g_pids, q_cams, g_cams = clustered(num_q, num_g)
    ref = reference(num_q, num_g, k1, k2)
    out = re_ranking(qf, gf, k1=k1, k2=k2, lambda_value=0.3, backend=backend)
    assert out.dtype == np.float64 and out.shape == (num_q, num_g)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
    assert np.abs(out - ref).max() < 1e-12  # in practice equal to rounding
    cmc, mAP, mINP = evaluate(out, q_pids, g_pids, q_cams, g_cams)
    rcmc, rmAP, rmINP = evaluate(ref, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_allclose(cmc, rcmc, atol=1e-6)
    assert mAP == pytest.approx(rmAP, abs=1e-6) and mINP == pytest.approx(rmINP, abs=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_when_every_row_needs_a_second_search(backend):
    """No margin and one far candidate: the exactness checks must trigger re-searches."""
    qf, gf, *_ = clustered(50, 300)
    out = re_ranking(
        qf, gf, 20, 6, 0.3, backend=backend, candidate_margin=0, far_candidates=1, knn_query_block=37, knn_tile=53
    )
    np.testing.assert_allclose(out, reference(50, 300, 20, 6), rtol=0, atol=1e-12)


def test_more_neighbours_than_points_and_torch_inputs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 5)).astype(np.float32)
    x[8] = x[4]
    qf, gf = x[:3], x[3:]
    ref = reference_re_ranking(qf, gf, 20, 6, 0.5)
    out = re_ranking(torch.from_numpy(qf), torch.from_numpy(gf), 20, 6, 0.5, backend="torch")
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12)


def test_lambda_one_is_the_normalised_original_distance():
    qf, gf, *_ = clustered(20, 80)
    x = np.vstack([qf, gf]).astype(np.float64)
    d = dense_sq_dists(x)
    expected = (d / d.max(axis=1, keepdims=True))[:20, 20:]
    out = re_ranking(qf, gf, 20, 6, 1.0, backend="faiss_cpu")
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("num_q, num_g, k1, k2", [(50, 300, 20, 6), (100, 700, 20, 6)])
def test_float32_output_is_the_rounded_float64_one_and_changes_no_metric(num_q, num_g, k1, k2):
    qf, gf, q_pids, g_pids, q_cams, g_cams = clustered(num_q, num_g)
    out64 = re_ranking(qf, gf, k1, k2, 0.3, backend="torch")
    out32 = re_ranking(qf, gf, k1, k2, 0.3, backend="torch", dtype="float32")
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    np.testing.assert_array_equal(out32, out64.astype(np.float32))  # one rounding, nothing else
    cmc64, map64, minp64 = evaluate(out64, q_pids, g_pids, q_cams, g_cams)
    cmc32, map32, minp32 = evaluate(out32, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_allclose(cmc32, cmc64, rtol=0, atol=1e-6)
    assert abs(map32 - map64) <= 1e-6 and abs(minp32 - minp64) <= 1e-6


def test_protocol_rerank_dtype_reaches_re_ranking():
    from reid.engine.evaluator import distances
    from reid.evaluation.protocol import EvalProtocol

    qf, gf, *_ = clustered(20, 80)
    protocol = EvalProtocol(rerank=True, k1=20, k2=6, backend="torch")
    out64 = distances(torch.from_numpy(qf), torch.from_numpy(gf), protocol).dense()
    out32 = distances(torch.from_numpy(qf), torch.from_numpy(gf), protocol.with_changes(rerank_dtype="float32")).dense()
    assert out64.dtype == np.float64 and out32.dtype == np.float32
    np.testing.assert_array_equal(out32, out64.astype(np.float32))


def test_auto_backend_on_the_cpu_is_torch():
    from reid.evaluation.knn import resolve_backend

    if torch.cuda.is_available():
        pytest.skip("checks the CPU choice")
    assert resolve_backend("auto") == ("torch", torch.device("cpu"))


# --- Neighbour lists and the float32 error bound -------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_neighbours_with_heavy_ties(backend):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 8))
    x = np.repeat(base, 3, axis=0)[rng.permutation(120)]  # every point has two exact copies
    x = x.astype(np.float32).astype(np.float64)
    d = dense_sq_dists(x)
    r = d / d.max(axis=1, keepdims=True)
    expected = np.argsort(r, axis=1, kind="stable")[:, :10]
    nb = exact_neighbours(x, 10, SearchSettings(backend, torch.device("cpu"), margin=1, far_k=1, tile=29))
    np.testing.assert_array_equal(nb.indices, expected)
    np.testing.assert_array_equal(nb.row_max, d.max(axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_distances_respect_the_error_bound(backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 300)) * rng.uniform(0.1, 3.0, (200, 1))
    x32 = x.astype(np.float32)
    norms = np.linalg.norm(x, axis=1)
    coeff = float32_error_coeff(300, backend)
    every = np.arange(200)
    for cand, rows in ((search(x32, every, 30, 5, backend, torch.device("cpu"), tile=64), every),
                       (search(x32, every[::3], 30, 5, backend, torch.device("cpu"), query_block=16), every[::3])):
        for idx, d32 in ((cand.near_idx, cand.near_d32), (cand.far_idx, cand.far_d32)):
            exact = ((x[rows, None, :] - x[idx]) ** 2).sum(-1)
            bound = coeff * (norms[rows, None] + norms[idx]) ** 2
            assert np.all(np.abs(d32 - exact) <= bound)
            assert np.all(np.diff(d32, axis=1) >= 0) if d32 is cand.near_d32 else np.all(np.diff(d32, axis=1) <= 0)


# --- Validation -------------------------------------------------------------------------


def test_bad_inputs_raise():
    qf, gf, *_ = clustered(20, 80)
    with pytest.raises(ValueError, match="different feature dims"):
        re_ranking(qf, gf[:, :10])
    bad = qf.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="qf contains NaN or inf"):
        re_ranking(bad, gf)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="qf contains NaN or inf"):
        re_ranking(bad, gf)
    with pytest.raises(ValueError, match="gf must have a floating dtype"):
        re_ranking(qf, (gf * 100).astype(np.int32))
    with pytest.raises(ValueError, match="qf must be 2-D"):
        re_ranking(qf[0], gf)
    with pytest.raises(ValueError, match="k1 must be >= 1"):
        re_ranking(qf, gf, k1=0)
    with pytest.raises(ValueError, match="k2 must be an int"):
        re_ranking(qf, gf, k2=6.0)
    with pytest.raises(ValueError, match=r"lambda_value must lie in \[0, 1\]"):
        re_ranking(qf, gf, lambda_value=1.5)
    with pytest.raises(ValueError, match="backend must be one of"):
        re_ranking(qf, gf, backend="annoy")
    with pytest.raises(ValueError, match="too large for the float32"):
        re_ranking(qf * 1e19, gf)
    with pytest.raises(ValueError, match="dtype must be one of"):
        re_ranking(qf, gf, dtype="float16")
    with pytest.raises(ValueError, match="identical"):
        re_ranking(np.ones((2, 4), np.float32), np.ones((3, 4), np.float32))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
def test_faiss_gpu_without_gpu_raises():
    qf, gf, *_ = clustered(20, 80)
    with pytest.raises(ValueError, match="faiss_gpu"):
        re_ranking(qf, gf, backend="faiss_gpu")
