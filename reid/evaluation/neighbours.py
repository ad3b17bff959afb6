"""Exact float64 neighbour lists and row maxima without the dense N x N matrix.

The public re-ranking code sorts full rows of the normalised float64 distance
``R[i, j] = D[i, j] / max_j D[i, j]``. Here a float32 backend proposes
candidates; their distances are recomputed in float64 (``pair_sq_dists``), the
candidates are re-sorted stably by ``(R, index)`` and a worst-case float32
error bound proves that no point outside the candidate set can belong in front.
Rows where the proof fails are searched again with more candidates, so the
result equals the dense float64 computation, ties included.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from reid.evaluation.distance import pair_sq_dists
from reid.evaluation.knn import Candidates, float32_error_coeff, search

log = logging.getLogger(__name__)

# Relative gap that makes fl(a / M) < fl(b / M) certain whenever b > a * (1 + _QUOTIENT_GAP).
_QUOTIENT_GAP = 2.0**-50


@dataclass
class ExactNeighbours:
    """``indices[i]``: the first k entries of row i of a stable argsort of ``R``.

    ``pair_keys`` (sorted, ``i * N + j``) and ``pair_d64`` cache every float64
    distance computed on the way, for later weight look-ups.
    """

    indices: np.ndarray
    row_max: np.ndarray
    pair_keys: np.ndarray
    pair_d64: np.ndarray
    rows_researched_near: int
    rows_researched_far: int


@dataclass
class SearchSettings:
    """Knobs of the float32 candidate search (all exactness-neutral)."""

    backend: str
    device: torch.device
    margin: int = 8
    far_k: int = 4
    query_block: int = 1024
    db_block: int = 65536
    tile: int = 4096
    pair_block: int = 512
    workers: int | None = None


def _pairs(x64: np.ndarray, rows: np.ndarray, idx: np.ndarray, s: SearchSettings) -> np.ndarray:
    width = idx.shape[1]
    d = pair_sq_dists(x64, np.repeat(rows, width), idx.ravel(), block=s.pair_block, workers=s.workers)
    return d.reshape(-1, width)


def exact_row_max(
    x64: np.ndarray, x32: np.ndarray, err: np.ndarray, cand: Candidates, s: SearchSettings
) -> tuple[np.ndarray, int]:
    """max_j D64(i, j) for every i from initial far candidates; returns (row_max, rows searched again)."""
    n = x64.shape[0]
    rows = np.arange(n)
    width = cand.far_idx.shape[1]
    row_max = np.empty(n, dtype=np.float64)
    researched = 0
    while True:
        d64 = _pairs(x64, rows, cand.far_idx, s)
        best = d64.max(axis=1)
        # Every unretrieved j has d32(j) <= the smallest retrieved d32, so D64(j) <= that + err.
        bound = cand.far_d32[:, -1].astype(np.float64) + err[rows]
        ok = (width >= n) | (bound <= best)
        row_max[rows[ok]] = best[ok]
        rows = rows[~ok]
        if rows.size == 0:
            return row_max, researched
        researched += rows.size
        width = min(n, width * 4)
        cand = search(x32, rows, 0, width, s.backend, s.device, s.query_block, s.db_block)


def exact_knn(
    x64: np.ndarray, x32: np.ndarray, k: int, row_max: np.ndarray, err: np.ndarray, cand: Candidates, s: SearchSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """First k of each row's stable (R, index) order from initial near candidates (width >= k).

    Returns (indices, sorted pair keys, their float64 distances, rows searched again).
    """
    n = x64.shape[0]
    rows = np.arange(n)
    width = cand.near_idx.shape[1]
    out = np.empty((n, k), dtype=np.int64)
    keys, vals = [], []
    researched = 0
    while True:
        idx = cand.near_idx
        d64 = _pairs(x64, rows, idx, s)
        keys.append((rows[:, None] * n + idx).ravel())
        vals.append(d64.ravel())
        r = d64 / row_max[rows, None]
        order = np.lexsort((idx, r), axis=1)
        out[rows] = np.take_along_axis(idx, order[:, :k], axis=1)
        kth = np.take_along_axis(d64, order[:, :k], axis=1).max(axis=1)
        # Every unretrieved j has d32(j) >= the largest retrieved d32, so D64(j) >= that - err.
        floor = cand.near_d32[:, -1].astype(np.float64) - err[rows]
        ok = (width >= n) | (floor > kth * (1.0 + _QUOTIENT_GAP))
        rows = rows[~ok]
        if rows.size == 0:
            break
        researched += rows.size
        width = min(n, width * 2)
        cand = search(x32, rows, width, 0, s.backend, s.device, s.query_block, s.db_block)
    all_keys = np.concatenate(keys)
    uniq, first = np.unique(all_keys, return_index=True)
    return out, uniq, np.concatenate(vals)[first], researched


def exact_neighbours(x64: np.ndarray, k: int, s: SearchSettings) -> ExactNeighbours:
    """Exact top-k lists (k capped at N) and row maxima of the float64 distances of ``x64``."""
    n, dim = x64.shape
    k = min(k, n)
    norms = np.sqrt(np.einsum("ij,ij->i", x64, x64))
    if 4.0 * norms.max() ** 2 >= np.finfo(np.float32).max / 4:
        raise ValueError("feature norms are too large for the float32 candidate search; rescale the features")
    x32 = x64.astype(np.float32)
    err = float32_error_coeff(dim, s.backend) * (norms + norms.max()) ** 2
    # One search for both sides (a single pass over the data on the torch backend).
    cand = search(x32, np.arange(n), min(n, k + max(0, s.margin)), min(n, max(1, s.far_k)), s.backend, s.device,
                  s.query_block, s.db_block, s.tile)
    row_max, far_again = exact_row_max(x64, x32, err, cand, s)
    if np.any(row_max <= 0.0):
        raise ValueError("all query and gallery features are identical: normalised distances would be 0/0")
    indices, keys, d64, near_again = exact_knn(x64, x32, k, row_max, err, cand, s)
    log.debug("exact neighbours of %d points: %d row re-searches (nearest), %d (farthest)", n, near_again, far_again)
    return ExactNeighbours(indices, row_max, keys, d64, near_again, far_again)
