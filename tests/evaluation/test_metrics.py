"""Market-1501 metrics: hand-worked cases, a per-query loop reference, input validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid.evaluation import evaluate

# --- Hand-worked example -------------------------------------------------------
# gallery  g0   g1   g2   g3   g4   g5
# pid       1    2    1    3    1    2
# cam       0    1    1    0    2    0
G_PIDS = np.array([1, 2, 1, 3, 1, 2])
G_CAMS = np.array([0, 1, 1, 0, 2, 0])
# q0: pid 1 cam 0 -> g0 removed (same pid+cam); true matches g2, g4.
# q1: pid 2 cam 1 -> g1 removed; true match g5.
# q2: pid 3 cam 0 -> g3 removed; no true match left: skipped.
Q_PIDS = np.array([1, 2, 3])
Q_CAMS = np.array([0, 1, 0])
DIST = np.array(
    [
        # q0 order after removal: g1 .2, g3 .3, g5 .4, g2 .5, g4 .9 -> true at ranks 4, 5
        [0.1, 0.2, 0.5, 0.3, 0.9, 0.4],
        # q1: g0, g3, g5 tie at .3 -> stable by index: g0(1) g3(2) g5(3) g4(4) g2(5) -> true at rank 3
        [0.3, 0.0, 0.6, 0.3, 0.5, 0.3],
        [0.5, 0.5, 0.5, 0.0, 0.5, 0.5],
    ]
)
# q0: AP = (1/4 + 2/5) / 2 = 0.325, INP = 2/5; q1: AP = 1/3, INP = 1/3.
EXPECTED_CMC = np.array([0.0, 0.0, 0.5, 1.0, 1.0])
EXPECTED_MAP = (0.325 + 1.0 / 3.0) / 2.0
EXPECTED_MINP = (0.4 + 1.0 / 3.0) / 2.0


def test_hand_worked_example():
    cmc, mAP, mINP = evaluate(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    np.testing.assert_allclose(cmc, EXPECTED_CMC, rtol=0, atol=1e-15)
    assert mAP == pytest.approx(EXPECTED_MAP, abs=1e-15)
    assert mINP == pytest.approx(EXPECTED_MINP, abs=1e-15)


def test_hand_worked_example_caps_cmc_at_gallery_size_and_any_chunking():
    for chunk in (1, 2, 3, 256):
        cmc, mAP, mINP = evaluate(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=50, chunk_size=chunk)
        np.testing.assert_allclose(cmc, [0.0, 0.0, 0.5, 1.0, 1.0, 1.0], atol=1e-15)
        assert mAP == pytest.approx(EXPECTED_MAP, abs=1e-15)
        assert mINP == pytest.approx(EXPECTED_MINP, abs=1e-15)


def test_same_camera_true_match_is_removed_not_counted():
    # Query pid 5 cam 0; g0 (pid 5 cam 0) is nearest but removed, g2 (pid 5 cam 1) is the true match.
    d = np.array([[0.0, 0.1, 0.2, 0.3]])
    cmc, mAP, mINP = evaluate(d, [5], [5, 6, 5, 7], [0], [0, 0, 1, 0], max_rank=3)
    np.testing.assert_allclose(cmc, [0.0, 1.0, 1.0])  # g1 first, then g2
    assert mAP == pytest.approx(0.5) and mINP == pytest.approx(0.5)


def test_all_tied_distances_rank_by_gallery_index():
    # Every distance equal: rank = position among kept items in index order.
    d = np.ones((1, 5), dtype=np.float32)
    cmc, mAP, mINP = evaluate(d, [1], [0, 1, 0, 1, 1], [0], [1, 1, 1, 0, 1], max_rank=5)
    # g3 is removed (pid 1, cam 0); kept order g0 g1 g2 g4 -> true g1 at 2, g4 at 4
    np.testing.assert_allclose(cmc, [0.0, 1.0, 1.0, 1.0, 1.0])
    assert mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert mINP == pytest.approx(2 / 4)


def test_no_valid_query_raises():
    d = np.zeros((1, 2))
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate(d, [1], [1, 2], [0], [0, 0])


def test_torch_and_float16_inputs_match_numpy():
    ref = evaluate(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    out = evaluate(
        torch.from_numpy(DIST), torch.from_numpy(Q_PIDS), G_PIDS, torch.from_numpy(Q_CAMS), G_CAMS, max_rank=5
    )
    np.testing.assert_allclose(out[0], ref[0])
    assert out[1:] == pytest.approx(ref[1:])
    half = evaluate(DIST.astype(np.float16), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    np.testing.assert_allclose(half[0], ref[0])
    assert half[1:] == pytest.approx(ref[1:])


# --- Agreement with torchreid's per-query loop ----------------------------------


def loop_reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """torchreid's eval_market1501 / CLIP-ReID's eval_func with a stable argsort, plus mINP."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1, kind="stable")
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for i in range(num_q):
        order = indices[i]
        remove = (g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i])
        raw = matches[i][~remove]
        if not np.any(raw):
            continue
        cum = raw.cumsum()
        last = np.where(raw == 1)[0].max()
        all_inp.append(cum[last] / (last + 1.0))
        cmc = np.minimum(cum, 1)
        padded = np.ones(max_rank)
        padded[: min(max_rank, cmc.size)] = cmc[:max_rank]
        all_cmc.append(padded)
        precision = cum / np.arange(1, cum.size + 1) * raw
        all_ap.append(precision.sum() / raw.sum())
    return np.mean(all_cmc, axis=0), float(np.mean(all_ap)), float(np.mean(all_inp))


@pytest.mark.parametrize("seed", range(6))
def test_matches_loop_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    num_q, num_g = int(rng.integers(5, 80)), int(rng.integers(30, 400))
    q_pids, g_pids = rng.integers(0, 12, num_q), rng.integers(0, 12, num_g)
    q_cams, g_cams = rng.integers(0, 4, num_q), rng.integers(0, 4, num_g)
    # Rounding creates many exact ties between true and false matches.
    d = np.round(rng.random((num_q, num_g)), int(rng.integers(1, 3)))
    d = d.astype(np.float32 if seed % 2 else np.float64)
    ref = loop_reference(d, q_pids, g_pids, q_cams, g_cams, 20)
    out = evaluate(d, q_pids, g_pids, q_cams, g_cams, max_rank=20, chunk_size=int(rng.integers(1, 50)))
    np.testing.assert_allclose(out[0], ref[0], rtol=0, atol=1e-12)
    assert out[1] == pytest.approx(ref[1], abs=1e-12)
    assert out[2] == pytest.approx(ref[2], abs=1e-12)


def test_matches_loop_reference_on_feature_distances():
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((30, 16))
    q_pids, g_pids = rng.integers(0, 30, 120), rng.integers(0, 30, 900)
    qf = centers[q_pids] + 0.9 * rng.standard_normal((120, 16))
    gf = centers[g_pids] + 0.9 * rng.standard_normal((900, 16))
    d = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    q_cams, g_cams = rng.integers(0, 6, 120), rng.integers(0, 6, 900)
    ref = loop_reference(d, q_pids, g_pids, q_cams, g_cams, 50)
    out = evaluate(d, q_pids, g_pids, q_cams, g_cams, chunk_size=17)
    np.testing.assert_allclose(out[0], ref[0], atol=1e-12)
    assert out[1:] == pytest.approx(ref[1:], abs=1e-12)


@pytest.mark.parametrize("rank_method", ["threshold", "search"])
@pytest.mark.parametrize("seed", range(4))
def test_each_rank_method_matches_the_loop_reference(seed, rank_method):
    """Both per-chunk strategies, forced, on tied random distances (contested) and on feature distances."""
    rng = np.random.default_rng(100 + seed)
    num_q, num_g = int(rng.integers(5, 60)), int(rng.integers(30, 300))
    q_pids, g_pids = rng.integers(0, 10, num_q), rng.integers(0, 10, num_g)
    q_cams, g_cams = rng.integers(0, 3, num_q), rng.integers(0, 3, num_g)
    tied = np.round(rng.random((num_q, num_g)), 1).astype(np.float32 if seed % 2 else np.float64)
    centers = rng.standard_normal((10, 8))
    feats = lambda pids: centers[pids] + 0.3 * rng.standard_normal((pids.size, 8))  # noqa: E731
    separated = ((feats(q_pids)[:, None, :] - feats(g_pids)[None, :, :]) ** 2).sum(-1)
    for d in (tied, separated):
        ref = loop_reference(d, q_pids, g_pids, q_cams, g_cams, 20)
        out = evaluate(d, q_pids, g_pids, q_cams, g_cams, max_rank=20, chunk_size=int(rng.integers(1, 40)),
                       rank_method=rank_method)
        np.testing.assert_allclose(out[0], ref[0], rtol=0, atol=1e-12)
        assert out[1] == pytest.approx(ref[1], abs=1e-12) and out[2] == pytest.approx(ref[2], abs=1e-12)


def test_unknown_rank_method_raises():
    with pytest.raises(ValueError, match="rank_method must be one of"):
        evaluate(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, rank_method="sort")


# --- Validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: {**a, "distmat": a["distmat"][:, :-1]}, "g_pids has 6 entries, expected 5"),
        (lambda a: {**a, "q_pids": a["q_pids"][:2]}, "q_pids has 2 entries, expected 3"),
        (lambda a: {**a, "g_camids": a["g_camids"][:, None]}, "g_camids must be 1-D"),
        (lambda a: {**a, "distmat": a["distmat"][0]}, "distmat must be 2-D"),
        (lambda a: {**a, "distmat": (a["distmat"] * 10).astype(np.int64)}, "floating dtype"),
        (lambda a: {**a, "q_pids": a["q_pids"].astype(np.float64)}, "q_pids must have an integer dtype"),
        (lambda a: {**a, "max_rank": 0}, "max_rank must be >= 1"),
        (lambda a: {**a, "distmat": np.zeros((0, 6))}, "empty"),
    ],
)
def test_bad_inputs_raise(mutate, message):
    args = dict(distmat=DIST, q_pids=Q_PIDS, g_pids=G_PIDS, q_camids=Q_CAMS, g_camids=G_CAMS)
    with pytest.raises(ValueError, match=message):
        evaluate(**mutate(args))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_distances_raise(bad):
    d = DIST.copy()
    d[2, 4] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        evaluate(d, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    with pytest.raises(ValueError, match="NaN or inf"):
        evaluate(torch.from_numpy(d), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)


def test_camera_diagnostics_read_camera_structure_and_nothing_else():
    import torch

    from reid.evaluation.diagnostics import camera_probe_accuracy, same_camera_false_matches

    # distances: query 0 (id 0, cam 0) ranks g1 (id 1, cam 0), g2 (id 2, cam 1), g0 (id 0, cam 0: junk),
    # g3 (id 0, cam 1)
    d = np.array([[0.1, 0.2, 0.0, 0.3]])
    share = same_camera_false_matches(
        d, np.array([0]), np.array([1, 2, 0, 0]), np.array([0]), np.array([0, 1, 0, 1]), k=2
    )
    assert share == 0.5  # top-2 after junk: g1 (false, own camera), g2 (false, other camera)
    rng = np.random.default_rng(0)
    pids, cams = np.repeat(np.arange(40), 4), np.tile(np.arange(4), 40)
    styled = torch.as_tensor(np.eye(4)[cams] * 3 + rng.normal(size=(160, 4)) * 0.1, dtype=torch.float32)
    plain = torch.as_tensor(rng.normal(size=(160, 4)), dtype=torch.float32)
    assert camera_probe_accuracy(styled, pids, cams)[0] == 1.0
    acc, chance = camera_probe_accuracy(plain, pids, cams)
    assert chance == 0.25 and acc < 0.5


def test_evaluate_features_equals_evaluate_on_the_dense_matrix():
    """Blocked distances straight into the metrics give the numbers of the full matrix, for any block size."""
    from reid.evaluation import evaluate_features
    from reid.evaluation.distance import squared_euclidean

    rng = np.random.default_rng(11)
    centers = rng.standard_normal((25, 32))
    q_pids, g_pids = rng.integers(0, 25, 90), rng.integers(0, 25, 700)
    qf = (centers[q_pids] + rng.standard_normal((90, 32))).astype(np.float32)
    gf = (centers[g_pids] + rng.standard_normal((700, 32))).astype(np.float32)
    q_cams, g_cams = rng.integers(0, 6, 90), rng.integers(0, 6, 700)
    ref = evaluate(squared_euclidean(qf, gf), q_pids, g_pids, q_cams, g_cams)
    assert 0.2 < ref[1] < 0.95  # neither trivial nor hopeless
    for chunk in (1, 7, 256):
        out = evaluate_features(torch.from_numpy(qf), gf, q_pids, g_pids, q_cams, g_cams, chunk_size=chunk)
        np.testing.assert_array_equal(out[0], ref[0])
        assert out[1] == pytest.approx(ref[1], abs=1e-12) and out[2] == pytest.approx(ref[2], abs=1e-12)
    with pytest.raises(ValueError, match="different feature dims"):
        evaluate_features(qf, gf[:, :5], q_pids, g_pids, q_cams, g_cams)
