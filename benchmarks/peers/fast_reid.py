"""fast-reid's re-ranking and python Market-1501 evaluation (JDAI-CV/fast-reid: ``compute_jaccard_distance`` of
fastreid/utils/compute_dist.py at 10a7c01 and the re-ranking branch of fastreid/evaluation/reid_evaluation.py;
the python ``eval_market1501`` of fastreid/evaluation/rank.py at 23bedfc; read 2026-12-03), re-written for the
benchmark. Its Cython evaluator is not built here; its python evaluator is torchreid's (fast-reid credits it),
so :func:`eval_market1501` is torchreid's. On a machine without CUDA the kNN runs as fast-reid's CPU option
(``search_option=3``: an exhaustive FAISS L2 index).

Published algorithm (differs from the widely copied loop): the initial ranking is the FAISS top-k1 list (k1
entries, the point itself first); the weights are a softmax over the **un-normalised** squared distances to
the expansion set; V is float32 (``fp16=False``); only gallery columns enter the min-sum; the Jaccard distance
is blended with the plain squared-Euclidean (Q, G) distance: ``(1 - lambda) * jaccard + lambda * dist``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from peers.torchreid import eval_market1501  # noqa: F401  (fast-reid's python evaluator is torchreid's)


def _reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = initial_rank[i, : k + 1]
    backward = initial_rank[forward, : k + 1]
    return forward[np.nonzero(backward == i)[0]]


def jaccard_distance(features: torch.Tensor, num_q: int, num_g: int, k1: int = 20, k2: int = 6) -> np.ndarray:
    """(Q, G) Jaccard distances of fast-reid's ``compute_jaccard_distance`` (CPU search option)."""
    import faiss

    n = features.shape[0]
    index = faiss.IndexFlatL2(features.shape[1])
    x = np.ascontiguousarray(features.numpy())
    index.add(x)
    _, initial_rank = index.search(x, k1)
    nn_k1 = [_reciprocal(initial_rank, i, k1) for i in range(n)]
    nn_half = [_reciprocal(initial_rank, i, int(np.around(k1 / 2))) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        recip = nn_k1[i]
        expansion = recip
        for c in recip:
            c_recip = nn_half[c]
            if len(np.intersect1d(c_recip, recip)) > 2 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        xi, y = features[i].unsqueeze(0), features[expansion]
        d = xi.pow(2).sum(dim=1, keepdim=True) + y.pow(2).sum(dim=1, keepdim=True).t()
        d.addmm_(xi, y.t(), beta=1, alpha=-2)
        v[i, expansion] = F.softmax(-d, dim=1).view(-1).numpy()
    del nn_k1, nn_half
    if k2 != 1:
        v_qe = np.zeros_like(v, dtype=np.float32)
        for i in range(n):
            v_qe[i] = np.mean(v[initial_rank[i, :k2], :], axis=0)
        v = v_qe
        del v_qe
    columns = [np.nonzero(v[:, e] != 0)[0] for e in range(n)]
    jaccard = np.zeros((num_q, num_g), dtype=np.float32)
    for i in range(num_q):
        temp_min = np.zeros((1, n), dtype=np.float32)
        for e in np.nonzero(v[i] != 0)[0]:
            rows = columns[e]
            rows = rows[rows >= num_q]
            temp_min[0, rows] = temp_min[0, rows] + np.minimum(v[i, e], v[rows, e])
        jaccard[i] = (1 - temp_min / (2 - temp_min))[:, num_q:]
    del columns, v
    jaccard[jaccard < 0] = 0.0
    return jaccard


def re_ranking(qf: torch.Tensor, gf: torch.Tensor, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """fast-reid's evaluator with re-ranking on: Jaccard blended with the squared-Euclidean (Q, G) distance."""
    m, n = qf.shape[0], gf.shape[0]
    dist = qf.pow(2).sum(dim=1, keepdim=True).expand(m, n) + gf.pow(2).sum(dim=1, keepdim=True).expand(n, m).t()
    dist = dist.addmm(qf, gf.t(), beta=1, alpha=-2).numpy()
    jaccard = jaccard_distance(torch.cat([qf, gf]), m, n, k1, k2)
    return jaccard * (1 - lambda_value) + dist * lambda_value
