"""Benchmark: sparse k-reciprocal re-ranking and vectorised metrics vs the dense reference.

Random clustered, L2-normalised features at Market-1501 scale (3,368 x 15,913) or
MSMT17 scale (11,659 x 82,161). Every measurement runs in a fresh subprocess so
that its peak RSS (``ru_maxrss``) is its own; the table shows the peak and how
much the RSS grew during the timed call (inputs already in memory excluded).

    python benchmarks/rerank_bench.py --scale market              # ours (both backends) + dense + metrics
    python benchmarks/rerank_bench.py --scale msmt17 --skip-dense # dense cannot fit: only its size is printed
    python benchmarks/rerank_bench.py --scale custom --num-query 500 --num-gallery 3000 --num-ids 200
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import cpu_model  # noqa: E402  (benchmarks/machine.py, beside this script)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCALES = {  # (queries, gallery, identities, cameras), docs/method.md §6
    "market": (3368, 15913, 751, 6),
    "msmt17": (11659, 82161, 3060, 15),
}
GIB = 1024.0**3


# --- data -------------------------------------------------------------------------------


def make_data(num_q: int, num_g: int, num_ids: int, num_cams: int, dim: int, noise: float, seed: int):
    """Identity centres + isotropic noise + a per-camera offset, L2-normalised float32."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((num_ids, dim), dtype=np.float32)
    cam_offsets = 0.5 * rng.standard_normal((num_cams, dim), dtype=np.float32)
    q_pids = rng.permutation(np.resize(np.arange(num_ids), num_q))
    g_pids = rng.permutation(np.resize(np.arange(num_ids), num_g))
    q_cams = rng.integers(0, num_cams, num_q)
    g_cams = rng.integers(0, num_cams, num_g)

    def feats(pids, cams):
        out = np.empty((pids.size, dim), dtype=np.float32)
        for a in range(0, pids.size, 8192):
            p, c = pids[a : a + 8192], cams[a : a + 8192]
            x = centers[p] + cam_offsets[c] + noise * rng.standard_normal((p.size, dim), dtype=np.float32)
            out[a : a + 8192] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return feats(q_pids, q_cams), feats(g_pids, g_cams), q_pids, g_pids, q_cams, g_cams


# --- the dense public-style reference (float64, stable sort) ------------------------------


def torch_sq_dists(feat: np.ndarray) -> np.ndarray:
    """(N, N) float64 squared distances with one addmm, as the public code computes them."""
    import torch

    x = torch.from_numpy(feat)
    sq = torch.pow(x, 2).sum(dim=1, keepdim=True)
    n = x.shape[0]
    distmat = sq.expand(n, n) + sq.expand(n, n).t()
    distmat.addmm_(x, x.t(), beta=1, alpha=-2)
    return distmat.numpy()


def dense_public_float64(qf: np.ndarray, gf: np.ndarray, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    """The widely copied re_ranking loop (reid.evaluation.rerank_reference), float64, stable argsort."""
    from reid.evaluation.rerank_reference import dense_re_ranking

    return dense_re_ranking(qf, gf, k1, k2, lambda_value, torch_sq_dists)


def dense_memory_bytes(num_q: int, num_g: int) -> dict[str, float]:
    """Lower bound of what the dense float64 reference holds at once (arrays of its loop)."""
    n = num_q + num_g
    parts = {
        "original_dist (N^2 float64)": 8.0 * n * n,
        "V (N^2 float64)": 8.0 * n * n,
        "V_qe (N^2 float64)": 8.0 * n * n,
        "initial_rank (N^2 int32)": 4.0 * n * n,
    }
    parts["total (lower bound)"] = sum(parts.values())
    return parts


# --- one measurement per process ------------------------------------------------------------


def _rss_bytes() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # KiB on Linux


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (robust to other jobs on shared cores)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Timer:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = _cpu_seconds() - self.cpu0


def _metrics(distmat, q_pids, g_pids, q_cams, g_cams) -> dict[str, float]:
    from reid.evaluation import evaluate

    cmc, mAP, mINP = evaluate(distmat, q_pids, g_pids, q_cams, g_cams)
    return {"rank1": float(cmc[0]), "mAP": float(mAP), "mINP": float(mINP)}


def run_worker(args: argparse.Namespace) -> dict:
    """Generate the data, run one measurement, return its numbers."""
    num_q, num_g, num_ids, num_cams = scale_sizes(args)
    qf, gf, q_pids, g_pids, q_cams, g_cams = make_data(num_q, num_g, num_ids, num_cams, args.dim, args.noise, args.seed)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("reid.evaluation")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    result: dict = {"task": args.worker, "backend": args.backend}

    if args.worker == "rerank":
        from reid.evaluation import re_ranking

        rss0 = _rss_bytes()
        with Timer() as timer:
            out = re_ranking(qf, gf, k1=args.k1, k2=args.k2, lambda_value=args.lambda_value, backend=args.backend)
        result.update(seconds=timer.wall, cpu_seconds=timer.cpu, peak=_peak_bytes(), rss_before=rss0)
        with Timer() as timer:
            result["metrics"] = _metrics(out, q_pids, g_pids, q_cams, g_cams)
        result["evaluate_seconds_on_output"] = timer.wall
        if args.save_output:
            np.save(args.save_output, out)
    elif args.worker == "evaluate":
        from reid.evaluation import evaluate
        from reid.evaluation.distance import squared_euclidean

        distmat = squared_euclidean(qf, gf)
        rss0 = _rss_bytes()
        with Timer() as timer:
            cmc, mAP, mINP = evaluate(distmat, q_pids, g_pids, q_cams, g_cams)
        result.update(seconds=timer.wall, cpu_seconds=timer.cpu, peak=_peak_bytes(), rss_before=rss0)
        result["metrics"] = {"rank1": float(cmc[0]), "mAP": float(mAP), "mINP": float(mINP)}
    elif args.worker == "dense":
        rss0 = _rss_bytes()
        with Timer() as timer:
            ref = dense_public_float64(qf, gf, args.k1, args.k2, args.lambda_value)
        result.update(seconds=timer.wall, cpu_seconds=timer.cpu, peak=_peak_bytes(), rss_before=rss0)
        result["metrics"] = _metrics(ref, q_pids, g_pids, q_cams, g_cams)
        if args.compare_with:
            ours = np.load(args.compare_with)
            result["max_abs_diff_vs_ours"] = float(np.abs(ours - ref).max())
    else:
        raise ValueError(f"unknown worker task {args.worker!r}")
    result["log"] = records
    return result


def scale_sizes(args: argparse.Namespace) -> tuple[int, int, int, int]:
    if args.scale == "custom":
        return args.num_query, args.num_gallery, args.num_ids, args.num_cams
    return SCALES[args.scale]


# --- driver ---------------------------------------------------------------------------------


def spawn(args: argparse.Namespace, task: str, backend: str, extra: list[str] | None = None) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", task, "--backend", backend,
        "--scale", args.scale, "--dim", str(args.dim), "--seed", str(args.seed), "--noise", str(args.noise),
        "--k1", str(args.k1), "--k2", str(args.k2), "--lambda-value", str(args.lambda_value),
        "--num-query", str(args.num_query), "--num-gallery", str(args.num_gallery),
        "--num-ids", str(args.num_ids), "--num-cams", str(args.num_cams),
    ] + (extra or [])
    print(f"# running: {task} ({backend}) ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"task": task, "backend": backend, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine_line() -> str:
    model = cpu_model()
    return f"{model}, {os.cpu_count()} logical CPUs"


def versions_line() -> str:
    import faiss
    import scipy
    import torch

    return (f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), faiss {faiss.__version__}")


def fmt_row(scale: str, shape: str, r: dict, dense: dict | None) -> str:
    if "error" in r:
        return f"| {scale} | {shape} | {r['task']} | {r['backend']} | failed: {' '.join(r['error'])} | | | | | |"
    speed = ""
    if dense and r["task"] == "rerank":
        speed = f"{dense['seconds'] / r['seconds']:.1f}x / {dense['cpu_seconds'] / r['cpu_seconds']:.1f}x"
    m = r.get("metrics", {})
    r1, ap, inp = (100 * m.get(k, float("nan")) for k in ("rank1", "mAP", "mINP"))
    notes = f"R1 {r1:.1f} / mAP {ap:.1f} / mINP {inp:.1f}"
    if "evaluate_seconds_on_output" in r:
        notes += f"; evaluate on its output {r['evaluate_seconds_on_output']:.1f} s"
    if "max_abs_diff_vs_ours" in r:
        notes += f"; max abs diff vs ours {r['max_abs_diff_vs_ours']:.1e}"
    for line in r.get("log", []):
        notes += f"; {line}"
    return (f"| {scale} | {shape} | {r['task']} | {r['backend']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{r['peak'] / GIB:.2f} | {(r['peak'] - r['rss_before']) / GIB:.2f} | {speed} | {notes} |")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=["market", "msmt17", "custom"], default="market")
    p.add_argument(
        "--backend", default="both", help="faiss_cpu | faiss_gpu | torch | auto | both (faiss_cpu and torch)"
    )
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--skip-dense", action="store_true", help="do not run the dense reference")
    p.add_argument("--skip-rerank", action="store_true")
    p.add_argument("--skip-metrics", action="store_true")
    p.add_argument("--k1", type=int, default=20)
    p.add_argument("--k2", type=int, default=6)
    p.add_argument("--lambda-value", type=float, default=0.3)
    p.add_argument("--noise", type=float, default=2.4, help="per-dimension noise around the identity centres")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-query", type=int, default=500)
    p.add_argument("--num-gallery", type=int, default=3000)
    p.add_argument("--num-ids", type=int, default=200)
    p.add_argument("--num-cams", type=int, default=6)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--save-output", help=argparse.SUPPRESS)
    p.add_argument("--compare-with", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(run_worker(args)))
        return

    num_q, num_g, _, _ = scale_sizes(args)
    shape = f"{num_q} x {num_g} x {args.dim}"
    backends = ["faiss_cpu", "torch"] if args.backend == "both" else [args.backend]
    rows: list[dict] = []
    saved = ROOT / ".cache" / f"rerank_bench_{os.getpid()}.npy"
    saved.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_rerank:
            for i, backend in enumerate(backends):
                extra = ["--save-output", str(saved)] if (i == 0 and not args.skip_dense) else None
                rows.append(spawn(args, "rerank", backend, extra))
        if not args.skip_dense:
            extra = ["--compare-with", str(saved)] if saved.exists() else None
            rows.append(spawn(args, "dense", "numpy+torch", extra))
        if not args.skip_metrics:
            rows.append(spawn(args, "evaluate", "-"))
    finally:
        saved.unlink(missing_ok=True)

    dense = next((r for r in rows if r.get("task") == "dense" and "seconds" in r), None)
    print(f"Machine: {machine_line()}; {versions_line()}")
    print(
        f"Data: {shape}, k1={args.k1} k2={args.k2} lambda={args.lambda_value}, noise={args.noise}, seed={args.seed}\n"
    )
    print(
        "| scale | Q x G x dim | measurement | backend | wall (s) | CPU (s) | peak RSS (GiB) | RSS growth in call "
        "(GiB) "
        "| speed-up vs dense (wall / CPU) | notes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(fmt_row(args.scale, shape, r, dense))
    if args.skip_dense:
        parts = dense_memory_bytes(num_q, num_g)
        print(f"\nDense float64 reference at this scale (not run): N = {num_q + num_g}")
        for name, value in parts.items():
            print(f"- {name}: {value / GIB:.1f} GiB")


if __name__ == "__main__":
    main()
