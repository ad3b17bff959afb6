"""Benchmark: exact k-reciprocal re-ranking and vectorised metrics, against the hardware floor and the peers.

Random clustered, L2-normalised features at Market-1501 scale (3,368 x 15,913) or MSMT17 scale
(11,659 x 82,161). Every measurement runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own.

* ``gram``: the floor. One blocked float32 pass of all Q + G points against all of them (torch ``addmm`` +
  ``topk(k1 + 1)``), what any exact kNN re-ranking must at least do; the re-ranking rows show their time as a
  ratio of it, measured in the same run.
* ``rerank``: ``re_ranking`` with the chosen backend(s) and output dtype, stage split from its debug log.
* ``evaluate``: ``evaluate`` on the float32 squared-Euclidean matrix (not timed: building it).
* ``--peers``: CLIP-ReID's, torchreid's and fast-reid's re-ranking (benchmarks/peers/, re-written from their
  published algorithms) on the same features, each in its own process, with an exactness column against our
  float64 output; then metrics in three regimes (mAP ~ 0.15, 0.6, 0.85 on 2,000 x 10,000 matrices) for ours
  and the peers' python evaluators, beside one ``np.argsort`` of the same matrix.

    python benchmarks/rerank_bench.py --scale market                          # gram + ours (torch) + metrics
    python benchmarks/rerank_bench.py --scale market --peers                  # + the peers and the regimes
    python benchmarks/rerank_bench.py --scale msmt17 --dtype float32 --backend torch
    python benchmarks/rerank_bench.py --scale custom --num-query 500 --num-gallery 3000 --num-ids 200 --dense
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

REGIMES = {  # target mAP -> noise of make_data at 2,000 x 10,000 x 128-d, 751 ids, 6 cameras (measured mAP printed)
    "0.85": 1.1,
    "0.6": 1.3,
    "0.15": 1.8,
}
PEERS = ("clip_reid", "torchreid", "fast_reid")
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


def _gram_pass(x32: np.ndarray, k: int, block: int = 1024) -> None:
    """The floor: every point against every point, float32 addmm + topk(k) per row block (TF32 off)."""
    import torch

    from reid.evaluation.distance import strict_fp32

    x = torch.from_numpy(x32)
    sq = (x * x).sum(dim=1)
    with strict_fp32(), torch.no_grad():
        for a in range(0, x.shape[0], block):
            d = torch.addmm(sq.unsqueeze(0), x[a : a + block], x.t(), beta=1.0, alpha=-2.0)
            torch.topk(d, k, dim=1, largest=False, sorted=False)


def _top10_changed(out: np.ndarray, ref: np.ndarray) -> float:
    """Share of query rows whose first 10 gallery items (stable order) differ from the reference's."""
    changed = 0
    for a in range(0, out.shape[0], 256):
        top = np.argsort(out[a : a + 256], axis=1, kind="stable")[:, :10]
        top_ref = np.argsort(ref[a : a + 256], axis=1, kind="stable")[:, :10]
        changed += int(np.any(top != top_ref, axis=1).sum())
    return changed / out.shape[0]


def _exactness(out: np.ndarray, ref_path: str) -> dict:
    ref = np.load(ref_path, mmap_mode="r")
    diff = 0.0
    total = 0.0
    for a in range(0, out.shape[0], 256):
        block = np.abs(out[a : a + 256].astype(np.float64) - ref[a : a + 256])
        diff = max(diff, float(block.max()))
        total += float(block.sum())
    return {"max_abs_diff": diff, "mean_abs_diff": total / out.size, "top10_changed": _top10_changed(out, ref)}


def _peer_rerank(peer: str, qf: np.ndarray, gf: np.ndarray, k1: int, k2: int, lam: float) -> np.ndarray:
    import torch

    from reid.evaluation.distance import squared_euclidean

    if peer == "clip_reid":
        from peers.clip_reid import re_ranking as peer_rr

        return peer_rr(torch.from_numpy(qf), torch.from_numpy(gf), k1, k2, lam)
    if peer == "fast_reid":
        from peers.fast_reid import re_ranking as peer_rr

        return peer_rr(torch.from_numpy(qf), torch.from_numpy(gf), k1, k2, lam)
    if peer == "torchreid":
        from peers.torchreid import re_ranking as peer_rr

        # torchreid's engine hands it its (squared Euclidean) distance matrices
        return peer_rr(squared_euclidean(qf, gf), squared_euclidean(qf, qf), squared_euclidean(gf, gf), k1, k2, lam)
    raise ValueError(f"unknown peer {peer!r}")


def _regime_matrix(regime: str, seed: int):
    from reid.evaluation.distance import squared_euclidean

    qf, gf, q_pids, g_pids, q_cams, g_cams = make_data(2000, 10000, 751, 6, 128, REGIMES[regime], seed)
    return squared_euclidean(qf, gf), q_pids, g_pids, q_cams, g_cams


def _peer_metrics(peer: str, d, q_pids, g_pids, q_cams, g_cams) -> dict[str, float]:
    if peer == "ours":
        return _metrics(d, q_pids, g_pids, q_cams, g_cams)
    if peer == "clip_reid":
        from peers.clip_reid import eval_func

        cmc, mAP = eval_func(d, q_pids, g_pids, q_cams, g_cams)
        return {"rank1": float(cmc[0]), "mAP": mAP}
    from peers.torchreid import eval_market1501

    cmc, mAP, mINP = eval_market1501(d, q_pids, g_pids, q_cams, g_cams)
    return {"rank1": float(cmc[0]), "mAP": mAP, "mINP": mINP}


def run_worker(args: argparse.Namespace) -> dict:
    """Generate the data, run one measurement, return its numbers."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("reid.evaluation")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Keep())
    result: dict = {"task": args.worker, "backend": args.backend, "load_before": os.getloadavg()[0]}
    if args.worker.startswith("metrics:"):
        _, regime, who = args.worker.split(":")
        d, q_pids, g_pids, q_cams, g_cams = _regime_matrix(regime, args.seed)
        with Timer() as timer:
            np.argsort(d, axis=1)
        result["argsort_seconds"] = timer.wall
        rss0 = _rss_bytes()
        with Timer() as timer:
            result["metrics"] = _peer_metrics(who, d, q_pids, g_pids, q_cams, g_cams)
        result.update(seconds=timer.wall, cpu_seconds=timer.cpu, peak=_peak_bytes(), rss_before=rss0)
        result["log"] = records
        return result

    num_q, num_g, num_ids, num_cams = scale_sizes(args)
    qf, gf, q_pids, g_pids, q_cams, g_cams = make_data(num_q, num_g, num_ids, num_cams, args.dim, args.noise, args.seed)
    if args.worker == "gram":
        x32 = np.ascontiguousarray(np.vstack([qf, gf]))
        rss0 = _rss_bytes()
        with Timer() as timer:
            _gram_pass(x32, args.k1 + 1)
        result.update(seconds=timer.wall, cpu_seconds=timer.cpu, peak=_peak_bytes(), rss_before=rss0)
    elif args.worker == "rerank":
        from reid.evaluation import re_ranking

        rss0 = _rss_bytes()
        with Timer() as timer:
            out = re_ranking(qf, gf, k1=args.k1, k2=args.k2, lambda_value=args.lambda_value, backend=args.backend,
                             dtype=args.dtype)
        result.update(seconds=timer.wall, cpu_seconds=timer.cpu, peak=_peak_bytes(), rss_before=rss0)
        result["dtype"] = args.dtype
        with Timer() as timer:
            result["metrics"] = _metrics(out, q_pids, g_pids, q_cams, g_cams)
        result["evaluate_seconds_on_output"] = timer.wall
        if args.save_output:
            np.save(args.save_output, out)
    elif args.worker.startswith("peer:"):
        peer = args.worker.split(":", 1)[1]
        rss0 = _rss_bytes()
        with Timer() as timer:
            out = _peer_rerank(peer, qf, gf, args.k1, args.k2, args.lambda_value)
        result.update(seconds=timer.wall, cpu_seconds=timer.cpu, peak=_peak_bytes(), rss_before=rss0)
        result["dtype"] = str(out.dtype)
        result["metrics"] = _metrics(out.astype(np.float64), q_pids, g_pids, q_cams, g_cams)
        if args.compare_with:
            result.update(_exactness(out, args.compare_with))
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
            result.update(_exactness(ref, args.compare_with))
    else:
        raise ValueError(f"unknown worker task {args.worker!r}")
    result["log"] = records
    return result


def scale_sizes(args: argparse.Namespace) -> tuple[int, int, int, int]:
    if args.scale == "custom":
        return args.num_query, args.num_gallery, args.num_ids, args.num_cams
    return SCALES[args.scale]


# --- driver ---------------------------------------------------------------------------------


def spawn(args: argparse.Namespace, task: str, backend: str = "-", extra: list[str] | None = None) -> dict:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", task, "--backend", backend,
        "--scale", args.scale, "--dim", str(args.dim), "--seed", str(args.seed), "--noise", str(args.noise),
        "--k1", str(args.k1), "--k2", str(args.k2), "--lambda-value", str(args.lambda_value),
        "--num-query", str(args.num_query), "--num-gallery", str(args.num_gallery),
        "--num-ids", str(args.num_ids), "--num-cams", str(args.num_cams), "--dtype", args.dtype,
    ] + (extra or [])
    print(f"# running: {task} ({backend}) ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"task": task, "backend": backend, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_after"] = os.getloadavg()[0]
    return result


def machine_line() -> str:
    model = cpu_model()
    return f"{model}, {os.cpu_count()} logical CPUs"


def versions_line() -> str:
    import scipy
    import torch

    try:
        import faiss

        faiss_version = faiss.__version__
    except ImportError:  # the torch backend needs no faiss; the row says so rather than the run failing
        faiss_version = "not installed"
    cuda = f", CUDA {torch.version.cuda} on {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads{cuda}), faiss {faiss_version}")


def _metric_note(r: dict) -> str:
    m = r.get("metrics", {})
    return " / ".join(f"{k} {100 * m[k]:.1f}" for k in ("rank1", "mAP", "mINP") if k in m)


def fmt_row(scale: str, shape: str, r: dict, gram: dict | None) -> str:
    if "error" in r:
        return f"| {scale} | {shape} | {r['task']} | {r['backend']} | failed: {' '.join(r['error'])} | | | | | | |"
    ratio = ""
    if gram and r["task"] != "gram" and not r["task"].startswith("metrics"):
        ratio = f"{r['seconds'] / gram['seconds']:.2f} / {r['cpu_seconds'] / gram['cpu_seconds']:.2f}"
    notes = _metric_note(r)
    if "dtype" in r:
        notes += f"; output {r['dtype']}"
    if "evaluate_seconds_on_output" in r:
        notes += f"; evaluate on its output {r['evaluate_seconds_on_output']:.1f} s"
    if "max_abs_diff" in r:
        notes += (f"; vs float64 reference: max abs diff {r['max_abs_diff']:.1e}, mean {r['mean_abs_diff']:.1e}, "
                  f"top-10 changed in {100 * r['top10_changed']:.1f} % of queries")
    for line in r.get("log", []):
        notes += f"; {line}"
    load = f"{r.get('load_before', float('nan')):.1f} -> {r.get('load_after', float('nan')):.1f}"
    return (f"| {scale} | {shape} | {r['task']} | {r['backend']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
            f"{r['peak'] / GIB:.2f} | {(r['peak'] - r['rss_before']) / GIB:.2f} | {ratio} | {load} | {notes} |")


def fmt_metric_row(r: dict) -> str:
    _, regime, who = r["task"].split(":")
    if "error" in r:
        return f"| {regime} | {who} | failed: {' '.join(r['error'])} | | | | |"
    return (f"| {regime} | {who} | {r['seconds']:.2f} | {r['argsort_seconds']:.2f} | "
            f"{r['seconds'] / r['argsort_seconds']:.1f}x | {r['peak'] / GIB:.2f} | {_metric_note(r)} |")


PEER_LABELS = {
    "ours": "ours (`evaluate`)",
    "clip_reid": "CLIP-ReID `eval_func`",
    "torchreid": "torchreid / fast-reid python `eval_market1501`",
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=["market", "msmt17", "custom"], default="market")
    p.add_argument("--backend", default="torch", help="faiss_cpu | faiss_gpu | torch | auto | both (faiss_cpu, torch)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="re_ranking output dtype")
    p.add_argument("--dim", type=int, default=1280)
    p.add_argument("--dense", action="store_true", help="also run the dense float64 reference (10 GiB at Market)")
    p.add_argument("--peers", action="store_true", help="also run the peers' re-ranking and the metric regimes")
    p.add_argument("--skip-rerank", action="store_true")
    p.add_argument("--skip-gram", action="store_true")
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
    metric_rows: list[dict] = []
    saved = ROOT / ".cache" / f"rerank_bench_{os.getpid()}.npy"
    saved.parent.mkdir(parents=True, exist_ok=True)
    want_reference = args.peers or args.dense
    try:
        if not args.skip_gram:
            rows.append(spawn(args, "gram", "torch"))
        if not args.skip_rerank or want_reference:
            for i, backend in enumerate(backends):
                keep = i == 0 and want_reference
                extra = ["--save-output", str(saved)] if keep else None
                if keep and args.dtype != "float64":
                    raise SystemExit("--peers/--dense compare against the float64 output: use --dtype float64")
                rows.append(spawn(args, "rerank", backend, extra))
        compare = ["--compare-with", str(saved)] if saved.exists() else None
        if args.dense:
            rows.append(spawn(args, "dense", "numpy+torch", compare))
        if args.peers:
            for peer in PEERS:
                rows.append(spawn(args, f"peer:{peer}", "-", compare))
        if not args.skip_metrics:
            rows.append(spawn(args, "evaluate", "-"))
        if args.peers:
            for regime in REGIMES:
                for who in PEER_LABELS:
                    metric_rows.append(spawn(args, f"metrics:{regime}:{who}", "-"))
    finally:
        saved.unlink(missing_ok=True)

    gram = next((r for r in rows if r.get("task") == "gram" and "seconds" in r), None)
    print(f"Machine: {machine_line()}; {versions_line()}")
    print(
        f"Data: {shape}, k1={args.k1} k2={args.k2} lambda={args.lambda_value}, noise={args.noise}, seed={args.seed}\n"
    )
    print(
        "| scale | Q x G x dim | measurement | backend | wall (s) | CPU (s) | peak RSS (GiB) | RSS growth in call "
        "(GiB) | time / Gram pass (wall / CPU) | 1-min load before -> after | notes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(fmt_row(args.scale, shape, r, gram))
    if metric_rows:
        print("\nMetrics by regime (2,000 x 10,000 float32 squared distances, 128-d features; "
              "python evaluators, Cython not built):\n")
        print("| target mAP | evaluator | wall (s) | one np.argsort of the matrix (s) | ratio | peak RSS (GiB) | "
              "measured R1 / mAP / mINP |")
        print("|---|---|---|---|---|---|---|")
        for r in metric_rows:
            r = dict(r, task=r["task"])
            _, regime, who = r["task"].split(":")
            print(fmt_metric_row(dict(r, task=f"metrics:{regime}:{PEER_LABELS[who]}")))
    if not args.dense:
        parts = dense_memory_bytes(num_q, num_g)
        print(f"\nDense float64 reference at this scale (not run): N = {num_q + num_g}")
        for name, value in parts.items():
            print(f"- {name}: {value / GIB:.1f} GiB")


if __name__ == "__main__":
    main()
