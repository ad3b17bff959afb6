"""Final re-ranked distances: Jaccard distance of the sparse encodings blended with R.

For query q and gallery g, ``jaccard = 1 - s / (2 - s)`` with
``s = sum_e min(V[q, e], V[g, e])`` (the min-sum over shared support), and
``final = (1 - lambda) * jaccard + lambda * D[q, g] / row_max[q]``.
The (Q, G) output is written in query-row chunks; per chunk only chunk-sized
temporaries exist. The min-sum for a (q, g) pair is accumulated over e in
ascending order, as in the public loop, so identical encodings give identical
sums.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from reid.evaluation.distance import squared_euclidean_block, strict_fp32


def _min_sum_chunk(vq: sp.csr_matrix, vg_csc: sp.csc_matrix, num_gallery: int) -> np.ndarray:
    """Dense (rows, G) array of sum_e min(vq[r, e], vg[g, e])."""
    rows = vq.shape[0]
    per_row = np.diff(vq.indptr)
    r = np.repeat(np.arange(rows, dtype=np.int64), per_row)
    e = vq.indices
    col_nnz = np.diff(vg_csc.indptr)[e]
    total = int(col_nnz.sum())
    if total == 0:
        return np.zeros((rows, num_gallery), dtype=np.float64)
    offsets = np.cumsum(col_nnz) - col_nnz
    pos = np.repeat(vg_csc.indptr[e].astype(np.int64) - offsets, col_nnz) + np.arange(total, dtype=np.int64)
    g = vg_csc.indices[pos].astype(np.int64)
    mins = np.minimum(np.repeat(vq.data, col_nnz), vg_csc.data[pos])
    flat = np.repeat(r, col_nnz) * num_gallery + g
    return np.bincount(flat, weights=mins, minlength=rows * num_gallery).reshape(rows, num_gallery)


def fill_final(
    out: np.ndarray,
    v: sp.csr_matrix,
    x64: np.ndarray,
    row_max: np.ndarray,
    lambda_value: float,
    chunk: int = 256,
) -> None:
    """Write the re-ranked (Q, G) distances into ``out`` (preallocated float64 or float32).

    Each block of ``chunk`` query rows is computed in float64 with whole-block torch operations (multi-threaded,
    in place) and rounded only when stored, so a float32 ``out`` differs from the float64 one by that rounding alone.
    """
    num_query, num_gallery = out.shape
    if out.dtype not in (np.float32, np.float64):
        raise ValueError(f"out must be float32 or float64, got {out.dtype}")
    vq_all = v[:num_query].tocsr()
    vq_all.sort_indices()
    vg_csc = v[num_query:].tocsc()
    vg_csc.sort_indices()
    q = torch.from_numpy(x64[:num_query])
    g = torch.from_numpy(x64[num_query:])
    g_sq = (g * g).sum(dim=1)
    max_q = torch.from_numpy(row_max[:num_query]).unsqueeze(1)
    with strict_fp32():
        for a in range(0, num_query, chunk):
            b = min(num_query, a + chunk)
            s = torch.from_numpy(_min_sum_chunk(vq_all[a:b], vg_csc, num_gallery))
            # Same float64 operations as (1 - s / (2 - s)) * (1 - lambda) + D / row_max * lambda, in place.
            denom = torch.sub(2.0, s)
            s.div_(denom).neg_().add_(1.0).mul_(1.0 - lambda_value)
            original = squared_euclidean_block(q[a:b], g, g_sq)
            original.div_(max_q[a:b]).mul_(lambda_value)
            s.add_(original)
            del original, denom
            torch.from_numpy(out[a:b]).copy_(s)
