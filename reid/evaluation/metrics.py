"""CMC, mAP and mINP under the Market-1501 protocol, vectorised.

Protocol (docs/method.md §5, used for every dataset): for each query, gallery items
with the same pid AND the same camera are removed; queries left without a true
match are skipped. Each query's gallery is ranked by a STABLE sort on
(distance, gallery index). With ranks r_1 < ... < r_m (1-based, after removal) of
the m true matches:

* CMC[k] = fraction of queries with r_1 <= k + 1,
* AP = (1/m) * sum_j j / r_j (precision at each true match, as torchreid / CLIP-ReID),
* INP = m / r_m (Ye et al.'s inverse negative penalty).

No sort of the full rows is needed: only the ranks of the true matches are. A
false item can only precede a true match if its distance is <= the largest true
distance of that row, so each row keeps just those items and binary-searches
them, by (distance, index), among the sorted true matches.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from reid.evaluation import _inputs


def _true_pairs(
    q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray, g_camids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(query, gallery) index pairs of true matches: same pid, different camera; sorted by query."""
    order = np.argsort(g_pids, kind="stable")
    sorted_pids = g_pids[order]
    lo = np.searchsorted(sorted_pids, q_pids, side="left")
    hi = np.searchsorted(sorted_pids, q_pids, side="right")
    count = hi - lo
    qi = np.repeat(np.arange(q_pids.shape[0], dtype=np.int64), count)
    offsets = np.repeat(lo - (np.cumsum(count) - count), count)
    gi = order[offsets + np.arange(int(count.sum()), dtype=np.int64)]
    keep = g_camids[gi] != q_camids[qi]
    return qi[keep], gi[keep]


def _segment_bounds(sorted_rows: np.ndarray, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.arange(num_rows)
    return np.searchsorted(sorted_rows, ids, side="left"), np.searchsorted(sorted_rows, ids, side="right")


RANK_METHODS = ("auto", "threshold", "search")
# Per chunk, the threshold search costs about this many passes over each item it keeps (its vectorised binary
# search); the row search costs about _SEARCH_PASSES passes over every item. "auto" takes the cheaper one.
_THRESHOLD_PASSES_PER_STEP = 3.0
_SEARCH_PASSES = 6.0


def _true_match_ranks(
    d: np.ndarray, tq: np.ndarray, tg: np.ndarray, g_pids: np.ndarray, q_pids: np.ndarray, method: str = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-based ranks of the true matches of one row chunk.

    Args: ``d`` (rows, G) distances; ``tq``/``tg`` chunk-relative row and gallery
    index of each true match; ``q_pids`` the chunk's query pids; ``method`` one of RANK_METHODS.
    Returns (ranks, seg_start, seg_end): ranks ascending within each row's segment.
    """
    rows = d.shape[0]
    tv = d[tq, tg]
    order = np.lexsort((tg, tv, tq))
    tq, tg, tv = tq[order], tg[order], tv[order]
    start, end = _segment_bounds(tq, rows)
    has = end > start
    threshold = np.full(rows, -np.inf, dtype=d.dtype)
    threshold[has] = tv[end[has] - 1]
    if tv.size == 0:
        return np.zeros(0, dtype=np.int64), start, end
    keep = d <= threshold[:, None]
    if method == "auto":
        kept = int(np.count_nonzero(keep))
        steps = np.log2(max(int((end - start).max()), 1)) + 2.0
        method = "threshold" if kept * steps * _THRESHOLD_PASSES_PER_STEP <= _SEARCH_PASSES * d.size else "search"
    if method == "search":
        ranks = _ranks_by_row_search(d, tv, tg, start, end, g_pids, q_pids)
        return ranks, start, end
    flat = np.flatnonzero(keep)  # much faster than 2-D np.nonzero
    del keep
    sel_r, sel_g = np.divmod(flat, d.shape[1])
    false = g_pids[sel_g] != q_pids[sel_r]  # same-pid items are true matches or removed ones
    sel_r, sel_g = sel_r[false], sel_g[false]
    values = d[sel_r, sel_g]
    # Binary search in the row's true segment: lo = first true whose (dist, idx) > the false item's.
    lo = _first_true_after(tv, tg, start[sel_r].copy(), end[sel_r].copy(), values, sel_g)
    precedes = lo < end[sel_r]  # false items after the row's last true match do not count
    cum = np.cumsum(np.bincount(lo[precedes], minlength=tv.size))
    before_row = np.concatenate(([0], cum))[start[tq]]
    local = np.arange(tv.size) - start[tq]
    return local + 1 + (cum - before_row), start, end


def _first_true_after(
    tv: np.ndarray, tg: np.ndarray, lo: np.ndarray, hi: np.ndarray, values: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """For each item (value, col), the first position in tv[lo:hi] (sorted by (tv, tg)) whose (tv, tg) > it."""
    last = max(tv.size - 1, 0)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) >> 1
        probe = np.minimum(mid, last)
        less = (tv[probe] < values) | ((tv[probe] == values) & (tg[probe] < cols))
        lo = np.where(active & less, mid + 1, lo)
        hi = np.where(active & ~less, mid, hi)


def _ranks_by_row_search(
    d: np.ndarray, tv: np.ndarray, tg: np.ndarray, start: np.ndarray, end: np.ndarray, g_pids: np.ndarray,
    q_pids: np.ndarray,
) -> np.ndarray:
    """Ranks for contested rows, where most items precede the last true match: each row's false items are placed
    among its sorted true matches by one ``np.searchsorted`` (O(G log m) per row, no sort of the row); items equal
    in distance to a true match are then ordered by gallery index."""
    ranks = np.empty(tv.size, dtype=np.int64)
    cols = np.arange(d.shape[1])
    for r in np.flatnonzero(end > start):
        s, e = int(start[r]), int(end[r])
        row = d[r]
        false = g_pids != q_pids[r]
        values, g = row[false], cols[false]
        pos = np.searchsorted(tv[s:e], values, side="left") + s
        tie = np.flatnonzero(tv[np.minimum(pos, e - 1)] == values)
        if tie.size:
            pos[tie] = _first_true_after(tv, tg, pos[tie], np.full(tie.size, e), values[tie], g[tie])
        counts = np.bincount(pos - s, minlength=e - s + 1)[: e - s]
        ranks[s:e] = np.arange(1, e - s + 1) + np.cumsum(counts)
    return ranks


def _distance_rows(distmat: Any, a: int, b: int) -> np.ndarray:
    """Rows [a, b) as a float32/float64 numpy array, checked for NaN/inf."""
    rows = _inputs.to_numpy(distmat[a:b], "distmat")
    if rows.dtype == np.float16:
        rows = rows.astype(np.float32)
    _inputs.check_finite(rows, "distmat")
    return rows


def _check_distmat(distmat: Any) -> tuple[int, int]:
    if _inputs._is_torch_tensor(distmat):
        if distmat.ndim != 2 or not distmat.dtype.is_floating_point:
            raise ValueError(f"distmat must be a 2-D float tensor, got {tuple(distmat.shape)} {distmat.dtype}")
        return int(distmat.shape[0]), int(distmat.shape[1])
    if not isinstance(distmat, np.ndarray):
        raise ValueError(f"distmat must be a numpy array or torch tensor, got {type(distmat).__name__}")
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {distmat.shape}")
    _inputs.check_float_dtype(distmat, "distmat")
    return distmat.shape


def evaluate(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    *,
    chunk_size: int = 256,
    rank_method: str = "auto",
) -> tuple[np.ndarray, float, float]:
    """(cmc, mAP, mINP) of a (Q, G) distance matrix under the Market-1501 protocol.

    ``cmc`` has ``min(max_rank, G)`` entries (CLIP-ReID / torchreid also cap at G);
    ``cmc[0]`` is rank-1. ``rank_method`` chooses how true-match ranks are found in each chunk of rows
    ("auto": the cheaper of "threshold" and "search" for that chunk; all give identical results).
    Raises ``ValueError`` on bad shapes/dtypes, NaN/inf distances, or when no query has a true match left.
    """
    num_q, num_g = _check_distmat(distmat)
    return evaluate_rows(
        lambda a, b: _distance_rows(distmat, a, b), num_q, num_g, q_pids, g_pids, q_camids, g_camids, max_rank,
        chunk_size=chunk_size, rank_method=rank_method,
    )


def evaluate_rows(
    rows_of: Callable[[int, int], np.ndarray],
    num_q: int,
    num_g: int,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    *,
    chunk_size: int = 256,
    rank_method: str = "auto",
) -> tuple[np.ndarray, float, float]:
    """:func:`evaluate` on distances that ``rows_of(a, b)`` yields block by block (rows a..b-1, finite float
    numpy), so that only one block of the (Q, G) matrix needs to exist at a time."""
    if num_q == 0 or num_g == 0:
        raise ValueError(f"distmat is empty, got shape {(num_q, num_g)}")
    q_pids = _inputs.labels(q_pids, "q_pids", num_q)
    g_pids = _inputs.labels(g_pids, "g_pids", num_g)
    q_camids = _inputs.labels(q_camids, "q_camids", num_q)
    g_camids = _inputs.labels(g_camids, "g_camids", num_g)
    max_rank = min(_inputs.positive_int(max_rank, "max_rank"), num_g)
    chunk_size = _inputs.positive_int(chunk_size, "chunk_size")
    if rank_method not in RANK_METHODS:
        raise ValueError(f"rank_method must be one of {RANK_METHODS}, got {rank_method!r}")

    tq_all, tg_all = _true_pairs(q_pids, g_pids, q_camids, g_camids)
    hits = np.zeros(max_rank + 1, dtype=np.int64)
    ap_sum = inp_sum = 0.0
    num_valid = 0
    for a in range(0, num_q, chunk_size):
        b = min(num_q, a + chunk_size)
        d = rows_of(a, b)
        lo, hi = np.searchsorted(tq_all, [a, b])
        ranks, start, end = _true_match_ranks(d, tq_all[lo:hi] - a, tg_all[lo:hi], g_pids, q_pids[a:b], rank_method)
        del d
        valid = end > start
        if not valid.any():
            continue
        start, end = start[valid], end[valid]
        m = (end - start).astype(np.float64)
        local = np.arange(ranks.size) - np.repeat(start, end - start)
        ap_sum += float((np.add.reduceat((local + 1) / ranks, start) / m).sum())
        inp_sum += float((m / ranks[end - 1]).sum())
        hits += np.bincount(np.minimum(ranks[start] - 1, max_rank), minlength=max_rank + 1)
        num_valid += int(valid.sum())
    if num_valid == 0:
        raise ValueError("no query has a true match in the gallery after same-pid/same-camera removal")
    cmc = np.cumsum(hits[:max_rank]) / num_valid
    return cmc, ap_sum / num_valid, inp_sum / num_valid
