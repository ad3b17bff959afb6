"""Distance helpers: dense squared Euclidean, L2 normalisation, float64 pair distances."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid.evaluation.distance import l2_normalize, pair_sq_dists, squared_euclidean


def test_squared_euclidean_matches_brute_force_in_any_chunking():
    rng = np.random.default_rng(0)
    q, g = rng.standard_normal((13, 7)), rng.standard_normal((29, 7))
    expected = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    for chunk in (1, 4, 100):
        out = squared_euclidean(q, g, chunk_size=chunk)
        assert out.dtype == np.float64 and out.shape == (13, 29)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    out32 = squared_euclidean(torch.from_numpy(q).float(), torch.from_numpy(g).float())
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, expected, rtol=1e-5, atol=1e-5)


def test_squared_euclidean_is_clamped_at_zero_for_identical_rows():
    x = np.random.default_rng(1).standard_normal((5, 300)).astype(np.float32) * 10
    assert squared_euclidean(x, x).min() >= 0.0


def test_squared_euclidean_rejects_bad_input():
    with pytest.raises(ValueError, match="different feature dims"):
        squared_euclidean(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="gf contains NaN or inf"):
        squared_euclidean(np.zeros((2, 3)), np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="qf must have a floating dtype"):
        squared_euclidean(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3)))


def test_l2_normalize_keeps_type_and_handles_zero_rows():
    a = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    out = l2_normalize(a)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    t = l2_normalize(torch.from_numpy(a))
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), out)


def test_pair_sq_dists_exact_zero_symmetry_and_duplicates():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 33))
    x[10] = x[3]
    rows = rng.integers(0, 50, 3000)
    cols = rng.integers(0, 50, 3000)
    d = pair_sq_dists(x, rows, cols, block=7, workers=2)
    np.testing.assert_allclose(d, ((x[rows] - x[cols]) ** 2).sum(1), rtol=1e-13)
    assert np.array_equal(d, pair_sq_dists(x, cols, rows))  # exactly symmetric
    assert pair_sq_dists(x, np.array([3, 3]), np.array([3, 10])).tolist() == [0.0, 0.0]
    same = pair_sq_dists(x, np.array([7, 7]), np.array([3, 10]))
    assert same[0] == same[1]  # duplicates tie exactly
