"""Training input throughput: decode + resize (workers) + batched augmentation (main process), on the CPU.

Writes ``--images`` Market-1501-sized (128×64) JPEGs into a temporary folder,
then for each worker count runs ``build_train_loader`` + ``TrainAugment`` over
PK batches and reports augmented images per second, plus a profile of the
per-image decode/resize cost and of the batched augmentation alone.

    .venv/bin/python benchmarks/data_loading.py --images 4096 --workers 0 1 2 3 4 --batch 64 --size 256 128
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.data.image_dataset import decode_image  # noqa: E402
from reid.data.loader import build_train_loader  # noqa: E402
from reid.data.records import ImageRecord  # noqa: E402
from reid.data.transforms import TrainAugment  # noqa: E402


def cpu_model() -> str:
    """``lscpu`` model name, else the platform's processor string."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def write_images(root: Path, n: int, num_ids: int, noise: bool, seed: int) -> list[ImageRecord]:
    """Random 128×64 JPEGs in Market naming; smooth random colour fields with mild noise unless ``noise``.

    Pure noise compresses badly and decodes slower than real pedestrian crops,
    so by default the content is low-frequency random colour plus noise, which
    gives file sizes near Market-1501's (a few KB).
    """
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        pid, cam = i % num_ids, int(rng.integers(0, 6))
        if noise:
            arr = rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)
        else:
            low = Image.fromarray(rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)).resize((64, 128), Image.BICUBIC)
            arr = np.clip(np.asarray(low, dtype=np.int16) + rng.integers(-12, 13, (128, 64, 3)), 0, 255)
            arr = arr.astype(np.uint8)
        path = root / f"{pid:04d}_c{cam + 1}s1_{i:06d}_00.jpg"
        Image.fromarray(arr).save(path, quality=90)
        records.append(ImageRecord(str(path), pid, cam))
    return records


def profile_decode(records: list[ImageRecord], size: tuple[int, int], n: int = 500) -> dict[str, float]:
    """Per-image milliseconds in this process: decode only, decode + torch resize, decode + PIL resize."""
    sample = records[:n]
    out = {}
    t0 = time.perf_counter()
    for r in sample:
        with Image.open(r.path) as img:
            np.array(img.convert("RGB"))
    out["decode_ms"] = (time.perf_counter() - t0) / len(sample) * 1e3
    for backend in ("torch", "pil"):
        t0 = time.perf_counter()
        for r in sample:
            decode_image(r.path, size, "bicubic", backend)
        out[f"{backend}_ms"] = (time.perf_counter() - t0) / len(sample) * 1e3
    return out


def profile_augment(augment: TrainAugment, batch: int, size: tuple[int, int], reps: int = 20) -> float:
    """Augmented images per second of ``TrainAugment`` alone on a uint8 batch."""
    x = torch.randint(0, 256, (batch, 3, *size), dtype=torch.uint8)
    augment(x)
    t0 = time.perf_counter()
    for _ in range(reps):
        augment(x)
    return batch * reps / (time.perf_counter() - t0)


def _cpu_seconds(pids: list[int]) -> float:
    """user + system CPU seconds of processes (Linux /proc); this process via ``time.process_time``."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def measure(
    records: list[ImageRecord], size: tuple[int, int], batch: int, workers: int, augment: TrainAugment,
    warmup: int, epochs: int, seed: int, backend: str,
) -> dict[str, float]:
    """Images/s (wall) and CPU ms per image through loader + augmentation, after ``warmup`` batches.

    CPU time is summed over the main process and the workers, so
    ``usable cores / cpu_ms`` estimates the throughput the pipeline would reach on
    otherwise idle cores even when the benchmark shares the machine (an upper
    bound: it assumes perfect overlap of workers and main process).
    """
    loader = build_train_loader(
        records, size, batch, 4, num_workers=workers, seed=seed, pin_memory=False, resize_backend=backend
    )
    images, seen = 0, 0
    started = cpu_start = 0.0
    worker_pids: list[int] = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        iterator = iter(loader)
        if workers > 0:
            worker_pids = [w.pid for w in iterator._workers]  # persistent: the same processes every epoch
        for data in iterator:
            augment(data["image"])
            seen += 1
            if seen == warmup:
                started, cpu_start = time.perf_counter(), _cpu_seconds(worker_pids)
            elif seen > warmup:
                images += data["image"].shape[0]
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds(worker_pids) - cpu_start
    del loader, iterator  # stops persistent workers
    return {"ips": images / elapsed, "cpu_ms": cpu / images * 1e3, "images": images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4096, help="JPEGs to write")
    parser.add_argument("--ids", type=int, default=0, help="identities (default: images // 16)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, nargs=2, default=[256, 128], metavar=("H", "W"))
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per worker count")
    parser.add_argument("--warmup", type=int, default=3, help="batches excluded from timing")
    parser.add_argument("--threads", type=int, default=0, help="torch threads in the main process (0: default)")
    parser.add_argument("--noise", action="store_true", help="pure-noise images (slow-decoding worst case)")
    parser.add_argument("--resize-backend", choices=("torch", "pil"), default="torch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # torch warns when workers exceed the core count; exceeding it is part of what is measured.
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    if args.threads:
        torch.set_num_threads(args.threads)
    size = (args.size[0], args.size[1])
    num_ids = args.ids or max(args.images // 16, args.batch // 4)
    augment = TrainAugment((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), flip_p=0.5, pad=10, erase_p=0.5)

    with tempfile.TemporaryDirectory() as tmp:
        records = write_images(Path(tmp), args.images, num_ids, args.noise, args.seed)
        mean_kb = np.mean([os.path.getsize(r.path) for r in records]) / 1024
        prof = profile_decode(records, size)
        aug_ips = profile_augment(augment, args.batch, size)
        print(f"CPU: {cpu_model()}; {os.cpu_count()} logical cores; torch {torch.__version__}, "
              f"{torch.get_num_threads()} intra-op threads")
        print(f"{args.images} JPEGs 128x64 ({mean_kb:.1f} KB mean, {'noise' if args.noise else 'smooth'}), "
              f"{num_ids} ids, batch {args.batch} (K=4), output {size[0]}x{size[1]}")
        print(f"profile (1 process, per image): decode {prof['decode_ms']:.3f} ms; decode + bicubic resize: "
              f"torch {prof['torch_ms']:.3f} ms, PIL {prof['pil_ms']:.3f} ms; "
              f"TrainAugment alone {aug_ips:,.0f} img/s ({1e3 / aug_ips:.3f} ms/img)")
        print(f"resize backend: {args.resize_backend}\n")
        load_before = os.getloadavg()[0]
        rows = []
        for w in args.workers:
            rows.append((w, measure(
                records, size, args.batch, w, augment, args.warmup, args.epochs, args.seed, args.resize_backend
            )))
        load_after = os.getloadavg()[0]
        cores = os.cpu_count() or 1
        print("| workers | images/s (decode + resize + augment) | CPU ms / image | idle-core estimate, images/s "
              "| images timed |")
        print("|---:|---:|---:|---:|---:|")
        for w, r in rows:
            # Without workers, decoding is serial in the main process: one core. With workers: all cores.
            idle = (cores if w > 0 else 1) * 1e3 / r["cpu_ms"]
            print(f"| {w} | {r['ips']:,.0f} | {r['cpu_ms']:.3f} | {idle:,.0f} | {r['images']:.0f} |")
        best = max(rows, key=lambda r: r[1]["ips"])
        print(f"\nbest: {best[0]} workers, {best[1]['ips']:,.0f} images/s; "
              f"1-min load average {load_before:.2f} before, {load_after:.2f} after")


if __name__ == "__main__":
    main()
