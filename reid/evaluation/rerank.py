"""k-reciprocal re-ranking (Zhong et al. 2017) without the dense (Q+G)^2 matrix.

Returns what the widely copied ``re_ranking(probFea, galFea, k1, k2,
lambda_value)`` returns when every step is done in float64 and rows are sorted
stably by (distance, index): see docs/evaluation.md for the exact semantics and
why the sparse computation equals the dense one.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import torch

from reid.evaluation import _inputs
from reid.evaluation.jaccard import fill_final
from reid.evaluation.knn import resolve_backend
from reid.evaluation.kreciprocal import encode, expansion_sets, query_expansion
from reid.evaluation.neighbours import SearchSettings, exact_neighbours

log = logging.getLogger(__name__)


def re_ranking(
    qf: Any,
    gf: Any,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    backend: str = "auto",
    *,
    device: str | torch.device | None = None,
    candidate_margin: int = 8,
    far_candidates: int = 4,
    knn_query_block: int = 1024,
    knn_db_block: int = 65536,
    knn_tile: int = 4096,
    pair_block: int = 512,
    query_chunk: int = 256,
    workers: int | None = None,
    dtype: str = "float64",
) -> np.ndarray:
    """Re-ranked (Q, G) distances of query features ``qf`` to gallery features ``gf``.

    Args:
        qf, gf: (Q, D) and (G, D) float features (numpy or torch, any device).
        k1, k2, lambda_value: the k-reciprocal parameters (CLIP-ReID uses 50, 15, 0.3).
        backend: "auto" | "faiss_cpu" | "faiss_gpu" | "torch" for the float32 candidate search.
        device: torch device for the "torch" backend (default: CUDA when available).
        candidate_margin: extra float32 candidates per row beyond max(k1 + 1, k2);
            rows whose exactness check fails are searched again with more.
        far_candidates: float32 candidates for the farthest point of each row.
        knn_query_block, knn_db_block: block sizes of torch searches for a subset of rows.
        knn_tile: tile size of the symmetric all-points torch pass.
        pair_block, workers: float64 pair re-computation block size and threads.
        query_chunk: query rows per chunk of the final (Q, G) fill.
        dtype: "float64" | "float32", the precision of the returned matrix only: every step is computed in float64
            and each value is rounded once when stored. float32 halves the largest allocation (Q x G).
    """
    x64, num_q = _stacked_features(qf, gf)
    k1 = _inputs.positive_int(k1, "k1")
    k2 = _inputs.positive_int(k2, "k2")
    if isinstance(lambda_value, bool) or not isinstance(lambda_value, (int, float, np.floating)):
        raise ValueError(f"lambda_value must be a float, got {lambda_value!r}")
    lambda_value = float(lambda_value)
    if not (math.isfinite(lambda_value) and 0.0 <= lambda_value <= 1.0):
        raise ValueError(f"lambda_value must lie in [0, 1], got {lambda_value}")
    _inputs.positive_int(candidate_margin, "candidate_margin", minimum=0)
    _inputs.positive_int(far_candidates, "far_candidates")
    for value, name in ((knn_query_block, "knn_query_block"), (knn_db_block, "knn_db_block"),
                        (knn_tile, "knn_tile"), (pair_block, "pair_block"), (query_chunk, "query_chunk")):
        _inputs.positive_int(value, name)

    out_dtype = _output_dtype(dtype)
    name, dev = resolve_backend(backend, device)
    settings = SearchSettings(
        backend=name, device=dev, margin=candidate_margin, far_k=far_candidates,
        query_block=knn_query_block, db_block=knn_db_block, tile=knn_tile, pair_block=pair_block, workers=workers,
    )
    num_g = x64.shape[0] - num_q
    t0 = time.perf_counter()
    nbrs = exact_neighbours(x64, max(k1 + 1, k2), settings)
    t1 = time.perf_counter()
    structure = expansion_sets(nbrs.indices, k1)
    v = encode(structure, x64, nbrs.row_max, nbrs.pair_keys, nbrs.pair_d64, pair_block, workers)
    v = query_expansion(v, nbrs.indices, k2)
    t2 = time.perf_counter()
    out = np.empty((num_q, num_g), dtype=out_dtype)
    fill_final(out, v, x64, nbrs.row_max, lambda_value, chunk=query_chunk)
    log.debug(
        "re_ranking (%s, N=%d): neighbours %.2fs, encoding %.2fs (nnz %d), final %.2fs",
        name, x64.shape[0], t1 - t0, t2 - t1, v.nnz, time.perf_counter() - t2,
    )
    return out


def _stacked_features(qf: Any, gf: Any) -> tuple[np.ndarray, int]:
    """The float64 (Q + G, D) stack of the checked features, built in place (no second float64 copy) and Q."""
    q = _inputs.to_numpy(qf, "qf")
    g = _inputs.to_numpy(gf, "gf")
    for a, name in ((q, "qf"), (g, "gf")):
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D (num_images, dim), got shape {a.shape}")
        _inputs.check_float_dtype(a, name)
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"{name} is empty, got shape {a.shape}")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"qf and gf have different feature dims: {q.shape[1]} vs {g.shape[1]}")
    x64 = np.empty((q.shape[0] + g.shape[0], q.shape[1]), dtype=np.float64)
    x64[: q.shape[0]] = q
    x64[q.shape[0] :] = g
    _inputs.check_finite(x64[: q.shape[0]], "qf")
    _inputs.check_finite(x64[q.shape[0] :], "gf")
    return x64, q.shape[0]


OUTPUT_DTYPES = ("float64", "float32")


def _output_dtype(dtype: Any) -> type:
    """numpy type of the returned matrix from its name (a string, as the config gives it)."""
    if not isinstance(dtype, str) or dtype not in OUTPUT_DTYPES:
        raise ValueError(f"dtype must be one of {OUTPUT_DTYPES}, got {dtype!r}")
    return np.float64 if dtype == "float64" else np.float32
