"""The widely copied dense k-reciprocal re-ranking loop (Zhong et al. 2017, as in CLIP-ReID), kept as an oracle.

Structure unchanged from the public code, but in float64 with a stable argsort, so that ties are ordered as
:func:`reid.evaluation.re_ranking` orders them. It holds several (N, N) arrays (N = queries + gallery): fine for
tests and for the benchmark's reference column, not for real galleries; use :func:`reid.evaluation.re_ranking`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def dense_re_ranking(
    qf: np.ndarray,
    gf: np.ndarray,
    k1: int,
    k2: int,
    lambda_value: float,
    sq_dists: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """(Q, G) re-ranked distances. ``sq_dists`` maps the stacked float64 features to their (N, N) squared distances
    (callers choose exactness versus speed; the raw matrix is dropped as soon as it is normalised)."""
    query_num = qf.shape[0]
    feat = np.vstack([qf, gf]).astype(np.float64)
    all_num = feat.shape[0]
    original_dist = sq_dists(feat)
    del feat
    original_dist = np.transpose(original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist)
    initial_rank = np.argsort(original_dist, axis=1, kind="stable").astype(np.int32)
    for i in range(all_num):
        forward = initial_rank[i, : k1 + 1]
        backward = initial_rank[forward, : k1 + 1]
        k_reciprocal = forward[np.where(backward == i)[0]]
        expansion = k_reciprocal
        for candidate in k_reciprocal:
            half = int(np.around(k1 / 2))
            c_forward = initial_rank[candidate, : half + 1]
            c_backward = initial_rank[c_forward, : half + 1]
            c_reciprocal = c_forward[np.where(c_backward == candidate)[0]]
            if len(np.intersect1d(c_reciprocal, k_reciprocal)) > 2 / 3 * len(c_reciprocal):
                expansion = np.append(expansion, c_reciprocal)
        expansion = np.unique(expansion)
        weight = np.exp(-original_dist[i, expansion])
        V[i, expansion] = weight / np.sum(weight)
    original_dist = original_dist[:query_num]
    if k2 != 1:
        V_qe = np.zeros_like(V)
        for i in range(all_num):
            V_qe[i] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
        del V_qe
    del initial_rank
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(all_num)]
    jaccard = np.zeros_like(original_dist)
    for i in range(query_num):
        temp_min = np.zeros(all_num)
        for e in np.where(V[i] != 0)[0]:
            temp_min[inv_index[e]] += np.minimum(V[i, e], V[inv_index[e], e])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    final = jaccard * (1 - lambda_value) + original_dist * lambda_value
    return final[:, query_num:]
