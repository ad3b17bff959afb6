"""Metrics straight from descriptors: the (Q, G) distances exist one block of query rows at a time.

Without re-ranking nothing needs the whole matrix, so :func:`evaluate_features` computes squared Euclidean
distances block by block (:class:`DistanceRows`, CLIP-ReID's float32 precision for float32 inputs) and hands each
block to the metric accumulation of :func:`reid.evaluation.metrics.evaluate_rows`. Memory is the
descriptors plus one (chunk_size, G) block; the numbers equal ``evaluate(squared_euclidean(qf, gf), ...)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from reid.evaluation import _inputs
from reid.evaluation.distance_rows import DistanceRows
from reid.evaluation.metrics import evaluate_rows


def evaluate_features(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    *,
    chunk_size: int = 256,
    rank_method: str = "auto",
) -> tuple[np.ndarray, float, float]:
    """(cmc, mAP, mINP) of the squared Euclidean distances of ``qf`` (Q, D) to ``gf`` (G, D), never holding (Q, G)."""
    rows = DistanceRows.squared_euclidean(qf, gf)
    chunk_size = _inputs.positive_int(chunk_size, "chunk_size")
    return evaluate_rows(
        rows.block, *rows.shape, q_pids, g_pids, q_camids, g_camids, max_rank,
        chunk_size=chunk_size, rank_method=rank_method,
    )
