"""The (Q, G) distances of one evaluation, handed out by blocks of query rows.

Without re-ranking nothing needs the whole matrix at once: the metrics, the camera diagnostics and the ranked-list
picture each read it a block of rows at a time. :class:`DistanceRows` is that access; built from descriptors it
computes each block when asked (memory: the descriptors plus one block), built from a matrix (the re-ranked one,
which exists whole anyway) it slices it. Either way a block holds the same bits as the dense matrix: descriptor
rows are computed in the aligned blocks of ``distance.ROW_BLOCK`` rows that ``squared_euclidean`` uses.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from reid.evaluation import _inputs
from reid.evaluation.distance import ROW_BLOCK, paired_features, squared_euclidean_block, strict_fp32


class DistanceRows:
    """Rows of a (Q, G) distance matrix on demand: ``block(a, b)``, ``take(indices)``, ``blocks(size)``.

    Reading by the aligned blocks of ``ROW_BLOCK`` rows (what ``blocks()`` and the metrics do) computes each row once.
    """

    def __init__(self, shape: tuple[int, int], rows_of: Callable[[int, int], np.ndarray],
                 take_of: Callable[[np.ndarray], np.ndarray]) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self._rows_of, self._take_of = rows_of, take_of

    @classmethod
    def from_matrix(cls, distmat: Any) -> DistanceRows:
        """Rows of an existing matrix (checked 2-D float, numpy or torch)."""
        d = _inputs.to_numpy(distmat, "distmat")
        if d.ndim != 2:
            raise ValueError(f"distmat must be 2-D, got shape {d.shape}")
        _inputs.check_float_dtype(d, "distmat")
        return cls(d.shape, lambda a, b: d[a:b], lambda idx: d[idx])

    @classmethod
    def squared_euclidean(cls, qf: Any, gf: Any) -> DistanceRows:
        """``|q - g|²`` of the descriptors, each block computed when read (what ``squared_euclidean`` computes)."""
        q, g, g_sq = paired_features(qf, gf)
        num_q = q.shape[0]

        def aligned(k: int) -> np.ndarray:  # rows k*ROW_BLOCK .. (k+1)*ROW_BLOCK-1, as squared_euclidean makes them
            with strict_fp32():
                return squared_euclidean_block(q[k * ROW_BLOCK : (k + 1) * ROW_BLOCK], g, g_sq).cpu().numpy()

        def rows_of(a: int, b: int) -> np.ndarray:
            if b <= a:
                return np.zeros((0, g.shape[0]), np.float64 if q.dtype == torch.float64 else np.float32)
            first, last = a // ROW_BLOCK, (b - 1) // ROW_BLOCK
            parts = [aligned(k) for k in range(first, last + 1)]
            stacked = parts[0] if len(parts) == 1 else np.concatenate(parts)
            return stacked[a - first * ROW_BLOCK : b - first * ROW_BLOCK]

        def take_of(idx: np.ndarray) -> np.ndarray:
            out = np.empty((idx.size, g.shape[0]), np.float64 if q.dtype == torch.float64 else np.float32)
            for k in np.unique(idx // ROW_BLOCK):
                hit = np.flatnonzero(idx // ROW_BLOCK == k)
                out[hit] = aligned(int(k))[idx[hit] - k * ROW_BLOCK]
            return out

        return cls((num_q, g.shape[0]), rows_of, take_of)

    def block(self, a: int, b: int) -> np.ndarray:
        """Distances of query rows ``a .. b-1`` to every gallery item."""
        return self._rows_of(a, b)

    def take(self, indices: Any) -> np.ndarray:
        """Distances of the query rows ``indices`` (1-D ints), in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= self.shape[0])):
            raise ValueError(f"query indices must be 1-D indices into {self.shape[0]} queries")
        return self._take_of(idx)

    def blocks(self, size: int = ROW_BLOCK) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, block) for consecutive blocks of ``size`` query rows."""
        size = _inputs.positive_int(size, "size")
        for a in range(0, self.shape[0], size):
            yield a, self.block(a, min(self.shape[0], a + size))

    def dense(self) -> np.ndarray:
        """The whole (Q, G) matrix (for callers that need it; the metrics never do)."""
        return np.concatenate([blk for _, blk in self.blocks()], axis=0) if self.shape[0] else np.zeros(self.shape)
