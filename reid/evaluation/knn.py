"""Approximate-precision (float32) exhaustive neighbour search backends.

Re-ranking needs, for every point of the query+gallery set, its nearest
neighbours and its farthest point. These backends return float32 candidates;
``reid.evaluation.neighbours`` turns them into exact float64 answers using the
error bound of ``float32_error_coeff``.

Backends:

* ``faiss_cpu``: ``faiss.knn`` (exhaustive L2) for the nearest points; the
  farthest points from the symmetric torch tile pass on the CPU (below).
* ``faiss_gpu``: ``faiss.knn_gpu`` for the nearest points and a
  max-inner-product search on augmented vectors ``[-2x, 1] . [y, |y|^2]``
  (= ``|x - y|^2 - |x|^2``) for the farthest (needs a faiss build with GPU
  support and a CUDA device).
* ``torch``: chunked ``addmm`` + ``topk`` on any torch device (TF32 off). It is
  the GPU path where faiss-gpu is missing, and it runs on the CPU as well.
  When all points are queried (the first search of re-ranking), it walks the
  upper-triangular tiles of the symmetric distance matrix: each tile's product
  serves its rows and, transposed, its columns, so every pair is multiplied
  once and nearest and farthest come out of the same pass. Searches for a
  subset of rows (re-searches) use query blocks against all points.
* ``auto``: faiss_gpu > torch on CUDA; torch on the CPU, where its single
  symmetric pass measured faster than faiss_cpu's two passes
  (docs/evaluation.md, "Backend choice"). The CUDA order is not measured yet.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from reid.evaluation.distance import strict_fp32

BACKENDS = ("auto", "faiss_cpu", "faiss_gpu", "torch")
# faiss's loader logs at INFO which SIMD build it tried (with a traceback line when AVX2 is missing): noise in
# every run log under Hydra's INFO logging, not a problem.
logging.getLogger("faiss.loader").setLevel(logging.WARNING)
_UNIT_ROUNDOFF_FP32 = 2.0**-24
_UNIT_ROUNDOFF_TF32 = 2.0**-11  # FAISS GPU may round GEMM inputs to TF32


@dataclass
class Candidates:
    """Float32 search results for a set of query rows (database = all points).

    ``near_*``: ascending approximate squared distances; ``far_*``: descending.
    A width-0 array means that side was not requested.
    """

    near_idx: np.ndarray
    near_d32: np.ndarray
    far_idx: np.ndarray
    far_d32: np.ndarray


def faiss_gpu_available() -> bool:
    """True when faiss was built with GPU support and sees a GPU, and torch sees CUDA."""
    try:
        import faiss
    except ImportError:
        return False
    has_gpu_build = hasattr(faiss, "StandardGpuResources") and hasattr(faiss, "get_num_gpus")
    return bool(has_gpu_build and faiss.get_num_gpus() > 0 and torch.cuda.is_available())


def resolve_backend(backend: str, device: str | torch.device | None = None) -> tuple[str, torch.device]:
    """Concrete backend name and the torch device it runs on; raises for unusable choices."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        if faiss_gpu_available():
            return "faiss_gpu", torch.device("cuda")
        if torch.cuda.is_available():
            return "torch", torch.device(device) if device is not None else torch.device("cuda")
        return "torch", torch.device("cpu")
    if backend == "faiss_gpu":
        if not faiss_gpu_available():
            raise ValueError(
                "backend='faiss_gpu' needs faiss with GPU support and a CUDA device; use 'torch' or 'faiss_cpu'"
            )
        return backend, torch.device("cuda")
    if backend == "torch":
        dev = (
            torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={dev} requested but CUDA is not available")
        return backend, dev
    return backend, torch.device("cpu")


def float32_error_coeff(dim: int, backend: str) -> float:
    """c such that |d32(i, j) - d64(i, j)| <= c * (|x_i| + |x_j|)^2 for this backend.

    Worst-case (not statistical) bound: rounding the inputs to float32 (or TF32 on
    faiss_gpu), forming |x|^2, |y|^2 and x.y with any summation order
    (gamma_n = n u / (1 - n u), n = dim + 8), and the final additions; doubled
    for safety. Distances are at most (|x_i| + |x_j|)^2, which dominates every term.
    """
    u = _UNIT_ROUNDOFF_FP32
    u_in = _UNIT_ROUNDOFF_TF32 if backend == "faiss_gpu" else u
    n = dim + 8
    gamma = n * u / (1.0 - n * u)
    return 2.0 * (gamma + 4.0 * u_in + 4.0 * u)


def search(
    x32: np.ndarray,
    rows: np.ndarray,
    k_near: int,
    k_far: int,
    backend: str,
    device: torch.device,
    query_block: int = 1024,
    db_block: int = 65536,
    tile: int = 4096,
) -> Candidates:
    """float32 k-nearest and k-farthest of ``x32[rows]`` among all rows of ``x32``.

    ``backend`` must already be resolved (see ``resolve_backend``); k_near/k_far
    must not exceed the number of points. When ``rows`` is every point, the
    torch work uses the symmetric tile pass (each pair's product computed once).
    """
    n = x32.shape[0]
    if not (0 <= k_near <= n and 0 <= k_far <= n):
        raise ValueError(f"k_near={k_near}, k_far={k_far} must lie in [0, {n}]")
    rows = np.asarray(rows, dtype=np.int64)
    all_rows = rows.shape[0] == n and bool(np.array_equal(rows, np.arange(n)))

    def torch_pass(kn: int, kf: int, dev: torch.device) -> Candidates:
        if all_rows:
            return _search_torch_symmetric(x32, kn, kf, dev, tile)
        return _search_torch(x32, rows, kn, kf, dev, query_block, db_block)

    if backend == "torch":
        return torch_pass(k_near, k_far, device)
    if backend == "faiss_cpu":
        # FAISS for the neighbour lists; farthest points from a chunked torch pass on
        # the CPU (half the products of FAISS's max-inner-product search when all rows).
        near = _search_faiss(x32, rows, k_near, 0, gpu=False)
        if k_far == 0:
            return near
        far = torch_pass(0, k_far, torch.device("cpu"))
        return Candidates(near.near_idx, near.near_d32, far.far_idx, far.far_d32)
    if backend == "faiss_gpu":
        return _search_faiss(x32, rows, k_near, k_far, gpu=True)
    raise ValueError(f"unresolved backend {backend!r}")


def _empty(m: int, dtype: type) -> np.ndarray:
    return np.empty((m, 0), dtype=dtype)


_GPU_RESOURCES = None


def _faiss_knn(xq: np.ndarray, xb: np.ndarray, k: int, metric: int, gpu: bool) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    if gpu:
        global _GPU_RESOURCES
        if _GPU_RESOURCES is None:
            _GPU_RESOURCES = faiss.StandardGpuResources()
        return faiss.knn_gpu(_GPU_RESOURCES, xq, xb, k, metric=metric)
    return faiss.knn(xq, xb, k, metric=metric)


def _search_faiss(x32: np.ndarray, rows: np.ndarray, k_near: int, k_far: int, gpu: bool) -> Candidates:
    import faiss

    xq = np.ascontiguousarray(x32[rows])
    m = xq.shape[0]
    near_idx, near_d = _empty(m, np.int64), _empty(m, np.float32)
    far_idx, far_d = _empty(m, np.int64), _empty(m, np.float32)
    if k_near > 0 and m > 0:
        near_d, near_idx = _faiss_knn(xq, x32, k_near, faiss.METRIC_L2, gpu)
    if k_far > 0 and m > 0:
        sq = np.einsum("ij,ij->i", x32, x32)
        db = np.ascontiguousarray(np.hstack([x32, sq[:, None]]))
        q_aug = np.ascontiguousarray(np.hstack([-2.0 * xq, np.ones((m, 1), np.float32)]))
        score, far_idx = _faiss_knn(q_aug, db, k_far, faiss.METRIC_INNER_PRODUCT, gpu)
        far_d = score + sq[rows][:, None]
    return Candidates(
        near_idx=np.asarray(near_idx, dtype=np.int64),
        near_d32=np.asarray(near_d, dtype=np.float32),
        far_idx=np.asarray(far_idx, dtype=np.int64),
        far_d32=np.asarray(far_d, dtype=np.float32),
    )


def _merge(
    vals: torch.Tensor | None, idx: torch.Tensor | None, new_v: torch.Tensor, new_i: torch.Tensor, k: int, largest: bool
):
    """Keep the best k of the running (vals, idx) and a new block's candidates."""
    if vals is not None:
        new_v = torch.cat([vals, new_v], dim=1)
        new_i = torch.cat([idx, new_i], dim=1)
    kk = min(k, new_v.shape[1])
    v, pos = torch.topk(new_v, kk, dim=1, largest=largest, sorted=True)
    return v, torch.gather(new_i, 1, pos)


@torch.no_grad()
def _search_torch(
    x32: np.ndarray,
    rows: np.ndarray,
    k_near: int,
    k_far: int,
    device: torch.device,
    query_block: int,
    db_block: int,
) -> Candidates:
    x = torch.from_numpy(np.ascontiguousarray(x32)).to(device)
    sq = (x * x).sum(dim=1)
    n, m = x.shape[0], rows.shape[0]
    near_idx = np.empty((m, k_near), np.int64)
    near_d = np.empty((m, k_near), np.float32)
    far_idx = np.empty((m, k_far), np.int64)
    far_d = np.empty((m, k_far), np.float32)
    rows_t = torch.from_numpy(rows).to(device)
    with strict_fp32():
        for a in range(0, m, query_block):
            q_rows = rows_t[a : a + query_block]
            q = x[q_rows]
            nv = ni = fv = fi = None
            for b in range(0, n, db_block):
                # |q|^2 is constant per row, so rank on |y|^2 - 2 q.y and add it to the winners only.
                part = torch.addmm(sq[b : b + db_block].unsqueeze(0), q, x[b : b + db_block].t(), beta=1.0, alpha=-2.0)
                if k_near > 0:
                    v, i = torch.topk(part, min(k_near, part.shape[1]), dim=1, largest=False, sorted=False)
                    nv, ni = _merge(nv, ni, v, i + b, k_near, largest=False)
                if k_far > 0:
                    v, i = torch.topk(part, min(k_far, part.shape[1]), dim=1, largest=True, sorted=False)
                    fv, fi = _merge(fv, fi, v, i + b, k_far, largest=True)
            q_sq = sq[q_rows].unsqueeze(1)
            if k_near > 0:
                near_d[a : a + query_block] = (nv + q_sq).clamp_(min=0.0).cpu().numpy()
                near_idx[a : a + query_block] = ni.cpu().numpy()
            if k_far > 0:
                far_d[a : a + query_block] = (fv + q_sq).clamp_(min=0.0).cpu().numpy()
                far_idx[a : a + query_block] = fi.cpu().numpy()
    return Candidates(near_idx=near_idx, near_d32=near_d, far_idx=far_idx, far_d32=far_d)


class _Running:
    """Per-point running best-k (values, indices) fed with tiles of distances."""

    def __init__(self, n: int, k: int, largest: bool, device: torch.device) -> None:
        self.k, self.largest = k, largest
        self.v = torch.full((n, k), -math.inf if largest else math.inf, device=device)
        self.i = torch.full((n, k), -1, dtype=torch.long, device=device)

    def update(self, tile: torch.Tensor, row0: int, col0: int) -> None:
        """Feed ``tile`` (contiguous; rows row0.., columns col0..) to its rows' points."""
        rows = tile.shape[0]
        v, i = torch.topk(tile, min(self.k, tile.shape[1]), dim=1, largest=self.largest, sorted=False)
        cat_v = torch.cat([self.v[row0 : row0 + rows], v], dim=1)
        cat_i = torch.cat([self.i[row0 : row0 + rows], i + col0], dim=1)
        best, pos = torch.topk(cat_v, self.k, dim=1, largest=self.largest, sorted=True)
        self.v[row0 : row0 + rows] = best
        self.i[row0 : row0 + rows] = torch.gather(cat_i, 1, pos)


@torch.no_grad()
def _search_torch_symmetric(x32: np.ndarray, k_near: int, k_far: int, device: torch.device, tile: int) -> Candidates:
    """All-points search over upper-triangular tiles: a tile (A, B) serves rows of A and, transposed, rows of B."""
    x = torch.from_numpy(np.ascontiguousarray(x32)).to(device)
    sq = (x * x).sum(dim=1)
    n = x.shape[0]
    runs = [r for r in (_Running(n, k_near, False, device) if k_near else None,
                        _Running(n, k_far, True, device) if k_far else None) if r is not None]
    with strict_fp32():
        for a in range(0, n, tile):
            xa, sqa = x[a : a + tile], sq[a : a + tile].unsqueeze(1)
            for b in range(a, n, tile):
                d = torch.addmm(sq[b : b + tile].unsqueeze(0), xa, x[b : b + tile].t(), beta=1.0, alpha=-2.0)
                d.add_(sqa)
                for run in runs:
                    run.update(d, a, b)
                if b != a:
                    # topk along rows of a transposed view is 2-4x slower than on a contiguous copy.
                    d = d.t().contiguous()
                    for run in runs:
                        run.update(d, b, a)
    near_v, near_i = (runs[0].v, runs[0].i) if k_near else (torch.empty(n, 0), torch.empty(n, 0, dtype=torch.long))
    far_v, far_i = (runs[-1].v, runs[-1].i) if k_far else (torch.empty(n, 0), torch.empty(n, 0, dtype=torch.long))
    return Candidates(
        near_idx=near_i.cpu().numpy(), near_d32=near_v.cpu().numpy(),
        far_idx=far_i.cpu().numpy(), far_d32=far_v.cpu().numpy(),
    )
