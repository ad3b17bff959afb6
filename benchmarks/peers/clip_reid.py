"""CLIP-ReID's k-reciprocal re-ranking and ``eval_func`` (Syliz517/CLIP-ReID, utils/reranking.py and
utils/metrics.py at commit eb1898b, read 2026-12-03), re-written for the benchmark.

Published algorithm: Zhong et al. 2017, in the form of the widely copied ``re_ranking(probFea, galFea, ...)``:
float32 torch distances ``|x|^2 + |y|^2 - 2 x.y``, columns divided by their maximum and transposed, an
unstable full-row ``np.argsort``, and V, its query expansion, the min-sum and the Jaccard matrix stored in
**float16**. ``eval_func`` ranks with an unstable argsort and reports CMC and mAP (no mINP).
"""
from __future__ import annotations

import numpy as np
import torch


def _reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = initial_rank[i, : k + 1]
    backward = initial_rank[forward, : k + 1]
    return forward[np.nonzero(backward == i)[0]]


def re_ranking(qf: torch.Tensor, gf: torch.Tensor, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """(Q, G) re-ranked distances with CLIP-ReID's precision: float32 distances, float16 weights and sums."""
    num_q = qf.shape[0]
    feat = torch.cat([qf, gf])
    n = feat.shape[0]
    sq = feat.pow(2).sum(dim=1, keepdim=True).expand(n, n)
    dist = (sq + sq.t()).addmm_(feat, feat.t(), beta=1, alpha=-2).numpy()
    del feat, sq
    dist = np.transpose(dist / np.max(dist, axis=0))
    v = np.zeros_like(dist).astype(np.float16)
    initial_rank = np.argsort(dist).astype(np.int32)
    half = int(np.around(k1 / 2))
    for i in range(n):
        recip = _reciprocal(initial_rank, i, k1)
        expansion = recip
        for c in recip:
            c_recip = _reciprocal(initial_rank, c, half)
            if len(np.intersect1d(c_recip, recip)) > 2 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        w = np.exp(-dist[i, expansion])
        v[i, expansion] = w / np.sum(w)
    dist = dist[:num_q]
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float16)
        for i in range(n):
            v_qe[i] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
        del v_qe
    del initial_rank
    columns = [np.nonzero(v[:, e] != 0)[0] for e in range(n)]
    jaccard = np.zeros_like(dist, dtype=np.float16)
    for i in range(num_q):
        temp_min = np.zeros((1, n), dtype=np.float16)
        for e in np.nonzero(v[i] != 0)[0]:
            rows = columns[e]
            temp_min[0, rows] = temp_min[0, rows] + np.minimum(v[i, e], v[rows, e])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    final = jaccard * (1 - lambda_value) + dist * lambda_value
    return final[:, num_q:]


def eval_func(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50):
    """(cmc, mAP): per-query loop over an unstable full argsort, same-pid-same-camera items removed."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
    all_cmc, all_ap = [], []
    for i in range(num_q):
        order = indices[i]
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        hits = matches[i][keep]
        if not np.any(hits):
            continue
        cum = hits.cumsum()
        cmc = np.minimum(cum, 1)
        all_cmc.append(cmc[:max_rank])
        precision = cum / np.arange(1, cum.shape[0] + 1) * hits
        all_ap.append(precision.sum() / hits.sum())
    cmc = np.asarray(all_cmc).astype(np.float32).sum(0) / len(all_cmc)
    return cmc, float(np.mean(all_ap))
