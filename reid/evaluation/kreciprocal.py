"""k-reciprocal encoding (Zhong et al., CVPR 2017) as sparse matrices.

Same sets and arithmetic as the widely copied ``re_ranking`` loop, vectorised:

* R(i, k)  = {j in top(k+1)(i) : i in top(k+1)(j)}      (k-reciprocal set)
* E(i)     = R(i, k1) U  every R(c, h), c in R(i, k1), h = int(np.around(k1 / 2)),
             whose overlap with R(i, k1) is > 2/3 |R(c, h)|
* V[i, e]  = exp(-R_norm[i, e]) / sum_{e' in E(i)} exp(-R_norm[i, e'])
* local query expansion: V[i] <- mean of V over the first k2 entries of i's list.

Every matrix is N x N CSR with only O(N * k) stored entries.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reid.evaluation.distance import pair_sq_dists


def reciprocal_sets(top: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR indicator of {(i, j): j in top[i] and i in top[j]} (``top`` rows are distinct ids)."""
    m, w = top.shape
    rows = np.repeat(np.arange(m, dtype=np.int64), w)
    cols = top.ravel().astype(np.int64)
    member = np.sort(rows * n + cols)
    back = cols * n + rows
    pos = np.minimum(np.searchsorted(member, back), member.size - 1)
    keep = member[pos] == back
    ones = np.ones(int(keep.sum()), dtype=np.int32)
    return sp.csr_matrix((ones, (rows[keep], cols[keep])), shape=(n, n))


def expansion_sets(indices: np.ndarray, k1: int) -> sp.csr_matrix:
    """CSR structure of E(i) for every i (values are meaningless counts)."""
    n = indices.shape[0]
    k_main = min(k1 + 1, indices.shape[1])
    half = int(np.around(k1 / 2))
    k_half = min(half + 1, indices.shape[1])
    r_main = reciprocal_sets(indices[:, :k_main], n)
    r_half = reciprocal_sets(indices[:, :k_half], n)
    half_size = np.diff(r_half.indptr)
    # overlap[i, c] = |R(i, k1) & R(c, h)|, kept only where c is in R(i, k1).
    overlap = (r_main @ r_half.T).multiply(r_main).tocoo()
    accepted = overlap.data > (2.0 / 3.0) * half_size[overlap.col]
    acc = sp.csr_matrix(
        (np.ones(int(accepted.sum()), dtype=np.int32), (overlap.row[accepted], overlap.col[accepted])), shape=(n, n)
    )
    expanded = (r_main + acc @ r_half).tocsr()
    expanded.sum_duplicates()
    expanded.sort_indices()
    return expanded


def _lookup(keys: np.ndarray, cache_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``keys`` in the sorted ``cache_keys`` and a found-mask."""
    if cache_keys.size == 0:
        return np.zeros(keys.size, dtype=np.int64), np.zeros(keys.size, dtype=bool)
    pos = np.minimum(np.searchsorted(cache_keys, keys), cache_keys.size - 1)
    return pos, cache_keys[pos] == keys


def encode(
    structure: sp.csr_matrix,
    x64: np.ndarray,
    row_max: np.ndarray,
    cache_keys: np.ndarray,
    cache_d64: np.ndarray,
    pair_block: int = 512,
    workers: int | None = None,
) -> sp.csr_matrix:
    """V: the normalised Gaussian weights exp(-D / row_max) over each row's set."""
    n = structure.shape[0]
    counts = np.diff(structure.indptr)
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    cols = structure.indices.astype(np.int64)
    pos, found = _lookup(rows * n + cols, cache_keys)
    d = np.empty(rows.size, dtype=np.float64)
    d[found] = cache_d64[pos[found]]
    missing = ~found
    d[missing] = pair_sq_dists(x64, rows[missing], cols[missing], block=pair_block, workers=workers)
    w = np.exp(-(d / row_max[rows]))
    sums = np.zeros(n, dtype=np.float64)
    nonempty = counts > 0
    sums[nonempty] = np.add.reduceat(w, structure.indptr[:-1][nonempty])
    w /= sums[rows]
    return sp.csr_matrix((w, cols, structure.indptr.copy()), shape=(n, n))


def query_expansion(v: sp.csr_matrix, indices: np.ndarray, k2: int) -> sp.csr_matrix:
    """Mean of V over each row's first k2 neighbours (self included), summed in rank order."""
    if k2 == 1:
        return v
    n = v.shape[0]
    kk = min(k2, indices.shape[1])
    avg = sp.csr_matrix(
        (np.ones(n * kk), indices[:, :kk].ravel().astype(np.int64), np.arange(0, n * kk + 1, kk, dtype=np.int64)),
        shape=(n, n),
    )
    out = (avg @ v).tocsr()
    out.data /= kk
    out.sort_indices()
    return out
