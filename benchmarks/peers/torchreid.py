"""torchreid's re-ranking and Market-1501 evaluation (KaiyangZhou/deep-person-reid, torchreid/utils/rerank.py and
the python ``eval_market1501`` of torchreid/metrics/rank.py, master at 08bb2cc, read 2026-12-03), re-written for
the benchmark. The Cython evaluator (``rank_cy``) is not built here, so the python path is what is timed.

Published algorithm: the same k-reciprocal loop, but it takes the (Q, G), (Q, Q) and (G, G) distance matrices
that torchreid's engine computes (squared Euclidean), **squares them again** (``np.power(d, 2)``) and keeps every
array in float32 (Houjing Huang's 2017 variant).
"""
from __future__ import annotations

import numpy as np


def _reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = initial_rank[i, : k + 1]
    backward = initial_rank[forward, : k + 1]
    return forward[np.nonzero(backward == i)[0]]


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """(Q, G) re-ranked distances from the three distance blocks, float32 throughout."""
    top = np.concatenate([q_q_dist, q_g_dist], axis=1)
    bottom = np.concatenate([q_g_dist.T, g_g_dist], axis=1)
    dist = np.concatenate([top, bottom], axis=0)
    del top, bottom
    dist = np.power(dist, 2).astype(np.float32)
    dist = np.transpose(1.0 * dist / np.max(dist, axis=0))
    v = np.zeros_like(dist).astype(np.float32)
    initial_rank = np.argsort(dist).astype(np.int32)
    num_q = q_g_dist.shape[0]
    n = dist.shape[0]
    half = int(np.around(k1 / 2.0))
    for i in range(n):
        recip = _reciprocal(initial_rank, i, k1)
        expansion = recip
        for c in recip:
            c_recip = _reciprocal(initial_rank, c, half)
            if len(np.intersect1d(c_recip, recip)) > 2.0 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        w = np.exp(-dist[i, expansion])
        v[i, expansion] = 1.0 * w / np.sum(w)
    dist = dist[:num_q]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float32)
        for i in range(n):
            v_qe[i] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
        del v_qe
    del initial_rank
    columns = [np.nonzero(v[:, e] != 0)[0] for e in range(n)]
    jaccard = np.zeros_like(dist, dtype=np.float32)
    for i in range(num_q):
        temp_min = np.zeros((1, n), dtype=np.float32)
        for e in np.nonzero(v[i] != 0)[0]:
            rows = columns[e]
            temp_min[0, rows] = temp_min[0, rows] + np.minimum(v[i, e], v[rows, e])
        jaccard[i] = 1 - temp_min / (2.0 - temp_min)
    final = jaccard * (1 - lambda_value) + dist * lambda_value
    return final[:, num_q:]


def eval_market1501(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50):
    """(cmc, mAP, mINP): per-query loop over an unstable full argsort; AP through a python list comprehension."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for i in range(num_q):
        order = indices[i]
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        hits = matches[i][keep]
        if not np.any(hits):
            continue
        cmc = hits.cumsum()
        last = np.max(np.nonzero(hits == 1))
        all_inp.append(cmc[last] / (last + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        cum = hits.cumsum()
        precision = np.asarray([x / (j + 1.0) for j, x in enumerate(cum)]) * hits
        all_ap.append(precision.sum() / hits.sum())
    cmc = np.asarray(all_cmc).astype(np.float32).sum(0) / len(all_cmc)
    return cmc, float(np.mean(all_ap)), float(np.mean(all_inp))
