"""The benchmark scripts run on the project's current code, and on a machine that has only what a lent GPU
machine has (torch, transformers, omegaconf, numpy, scipy: no hydra, mlflow, optuna or faiss).

benchmarks/ is not imported by anything else, so a refactor of reid/ can break it unseen until the one device
sitting that needed it (this happened: throughput.py still imported a module the loss-term registry replaced).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs a script as __main__ with the packages a lent GPU machine lacks made unimportable.
WITHOUT_TRACKERS = """
import runpy, sys
for name in ("hydra", "hydra_plugins", "mlflow", "optuna", "faiss", "psycopg"):
    sys.modules[name] = None
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, str(__import__("pathlib").Path(script).parent))
runpy.run_path(script, run_name="__main__")
"""


def run_script(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRACKERS, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def table_rows(text: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in row] for row in rows]


def test_throughput_runs_every_phase_without_the_trackers():
    out = run_script("benchmarks/throughput.py", "--backbone", "clip_tiny", "--device", "cpu", "--steps", "2",
                     "--warmup", "1", "--threads", "1")
    header, *rows = table_rows(out)
    assert header[:3] == ["device", "backbone", "phase"]
    assert [r[2] for r in rows] == ["train", "cache", "extract"]
    ips = header.index("img/s")
    for r in rows:
        assert r[1] == "clip_tiny"
        assert float(r[ips]) > 0
    batch = header.index("batch")
    assert [int(r[batch]) for r in rows] == [64, 64, 128]  # the defaults the docs state


def test_rerank_bench_runs_without_faiss_and_says_so():
    out = run_script("benchmarks/rerank_bench.py", "--scale", "custom", "--num-query", "60", "--num-gallery", "300",
                     "--num-ids", "20", "--dim", "64", "--noise", "0.2", "--skip-metrics")
    assert "faiss not installed" in out
    rerank = [r for r in table_rows(out) if len(r) > 3 and r[2] == "rerank"]
    assert len(rerank) == 1 and rerank[0][3] == "torch"
    # well-separated clusters: the re-ranked list is perfect, which an empty or shuffled output could not give
    assert re.search(r"rank1 100\.0 / mAP 100\.0", rerank[0][-1]), rerank[0][-1]
