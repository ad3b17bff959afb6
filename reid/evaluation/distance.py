"""Distance helpers shared by the plain evaluation path and by re-ranking.

Two different needs, two routines:

* ``squared_euclidean`` / ``squared_euclidean_block``: the dense (Q, G) matrix,
  ``|q|^2 + |g|^2 - 2 q.g`` through a chunked matrix product (fast, what
  CLIP-ReID computes), clamped at 0.
* ``pair_sq_dists``: float64 distances of an arbitrary list of (i, j) pairs,
  evaluated as ``sum((x_i - x_j)^2)``. That form gives an exact 0 for a point and
  its duplicates, is exactly symmetric, and returns bit-identical values for
  bit-identical vector pairs, so ties between duplicated features stay ties. The
  neighbour lists of re-ranking are decided on these values.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from reid.evaluation import _inputs


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """Disable TF32 matmuls for the duration (error bounds assume true float32 products)."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def l2_normalize(x: Any, eps: float = 1e-12) -> Any:
    """Row-wise L2 normalisation, same container type out as in (torch or numpy).

    Rows with norm below ``eps`` are divided by ``eps`` (they stay ~0), as
    ``torch.nn.functional.normalize`` does.
    """
    if isinstance(x, torch.Tensor):
        if x.ndim != 2 or not x.dtype.is_floating_point:
            raise ValueError(f"l2_normalize expects a 2-D float tensor, got {tuple(x.shape)} {x.dtype}")
        return torch.nn.functional.normalize(x, p=2, dim=1, eps=eps)
    a = _inputs.to_numpy(x, "x")
    if a.ndim != 2:
        raise ValueError(f"l2_normalize expects a 2-D array, got shape {a.shape}")
    _inputs.check_float_dtype(a, "x")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.maximum(norms, eps).astype(a.dtype, copy=False)


def as_float_tensor(x: Any, name: str) -> torch.Tensor:
    """A finite 2-D float tensor (kept on its device); float16/bfloat16 widened to float32."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if t.ndim != 2:
            raise ValueError(f"{name} must be 2-D (num_images, dim), got shape {tuple(t.shape)}")
        if not t.dtype.is_floating_point:
            raise ValueError(f"{name} must have a floating dtype, got {t.dtype}")
        if t.dtype not in (torch.float32, torch.float64):
            t = t.float()
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf values")
        return t
    a = _inputs.to_numpy(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_images, dim), got shape {a.shape}")
    _inputs.check_float_dtype(a, name)
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    _inputs.check_finite(a, name)
    return torch.from_numpy(np.ascontiguousarray(a))


def paired_features(qf: Any, gf: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q, g, |g|²) checked and on one device and dtype: float64 if either input is float64, else float32."""
    q = as_float_tensor(qf, "qf")
    g = as_float_tensor(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"qf and gf have different feature dims: {q.shape[1]} vs {g.shape[1]}")
    if q.device != g.device:
        g = g.to(q.device)
    dtype = torch.float64 if torch.float64 in (q.dtype, g.dtype) else torch.float32
    q, g = q.to(dtype), g.to(dtype)
    return q, g, (g * g).sum(dim=1)


# Query rows per matrix product. A BLAS may round a row differently in products of different heights, so every
# reader of the distances (the dense matrix here, reid.evaluation.distance_rows by blocks) uses the same aligned
# blocks of this many rows and sees the same bits.
ROW_BLOCK = 256


def squared_euclidean(qf: Any, gf: Any, chunk_size: int = ROW_BLOCK) -> np.ndarray:
    """Dense (Q, G) squared Euclidean distances as numpy, computed in query chunks.

    float64 if either input is float64, else float32 (CLIP-ReID's precision). The
    product runs on the inputs' device (without TF32) and each chunk is copied
    into the preallocated result, so no second (Q, G) temporary exists.
    """
    q, g, g_sq = paired_features(qf, gf)
    chunk_size = _inputs.positive_int(chunk_size, "chunk_size")
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float64 if q.dtype == torch.float64 else np.float32)
    with strict_fp32():
        for a in range(0, q.shape[0], chunk_size):
            out[a : a + chunk_size] = squared_euclidean_block(q[a : a + chunk_size], g, g_sq).cpu().numpy()
    return out


def squared_euclidean_block(q: torch.Tensor, g: torch.Tensor, g_sq: torch.Tensor | None = None) -> torch.Tensor:
    """``|q|^2 + |g|^2 - 2 q g^T`` for one block of rows, clamped at 0 (rounding can go negative)."""
    if g_sq is None:
        g_sq = (g * g).sum(dim=1)
    q_sq = (q * q).sum(dim=1, keepdim=True)
    d = torch.addmm(g_sq.unsqueeze(0), q, g.t(), beta=1.0, alpha=-2.0)  # one (rows, G) buffer, updated in place
    return d.add_(q_sq).clamp_(min=0.0)


def _pair_block(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    diff = x[cols]
    diff -= x[rows]
    np.square(diff, out=diff)
    return diff.sum(axis=1)


def pair_sq_dists(
    x: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    block: int = 512,
    workers: int | None = None,
) -> np.ndarray:
    """float64 ``sum((x[rows] - x[cols])^2)`` for each pair, in small cache-sized blocks.

    ``x`` must be float64 C-contiguous. Blocks run in a thread pool (numpy releases
    the GIL); the value of a pair does not depend on the block it lands in.
    """
    if x.dtype != np.float64 or not x.flags.c_contiguous:
        raise ValueError("pair_sq_dists expects a C-contiguous float64 matrix")
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if rows.shape != cols.shape or rows.ndim != 1:
        raise ValueError(f"rows and cols must be 1-D of equal length, got {rows.shape} and {cols.shape}")
    out = np.empty(rows.shape[0], dtype=np.float64)
    if rows.size == 0:
        return out
    block = _inputs.positive_int(block, "block")
    starts = range(0, rows.shape[0], block)

    def run(a: int) -> None:
        out[a : a + block] = _pair_block(x, rows[a : a + block], cols[a : a + block])

    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers <= 1 or len(starts) < 4:
        for a in starts:
            run(a)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, starts))
    return out
