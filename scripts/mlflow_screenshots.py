"""Screenshots of the MLflow UI for docs/: the runs table, one run's page and the Compare page of two runs.

    python scripts/mlflow_screenshots.py --store sqlite:///mlflow.db --experiment reid --out docs/img/mlflow

Starts ``mlflow ui`` on a free port against the store, opens the pages in headless Chromium
(``apt-get install chromium``) and writes PNG files. It is a documentation tool: nothing in the package uses it.
"""
from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shoot(chromium: str, url: str, out: Path, size: str, wait_ms: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--run-all-compositor-stages-before-draw", f"--window-size={size}", f"--virtual-time-budget={wait_ms}",
             f"--screenshot={out}", url],
            check=True, capture_output=True, timeout=180,
        )
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="MLflow backend store URI")
    parser.add_argument("--experiment", default="reid")
    parser.add_argument("--out", type=Path, default=Path("docs/img/mlflow"))
    parser.add_argument("--size", default="1600,1000")
    parser.add_argument("--wait-ms", type=int, default=60000, help="virtual time for the page to render")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: chromium not found (apt-get install chromium)", file=sys.stderr)
        return 2
    client = MlflowClient(args.store)
    exp = client.get_experiment_by_name(args.experiment)
    if exp is None:
        print(f"error: no experiment {args.experiment!r} in {args.store}", file=sys.stderr)
        return 2
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=50)
    finished = [r for r in runs if r.info.status == "FINISHED" and "train_time_s" in r.data.metrics]  # training runs
    if len(finished) < 2:
        print(f"error: need two finished training runs in {args.experiment!r}, found {len(finished)}", file=sys.stderr)
        return 2
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", args.store, "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in server.stdout:  # wait until it listens
            if "Uvicorn running on" in line:  # one worker: printed once the socket listens
                break
        base, e = f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}", exp.experiment_id
        args.out.mkdir(parents=True, exist_ok=True)
        # the longest training run first (the demo, with its validation curves), then the newest other one
        ranked = sorted(finished, key=lambda r: -r.data.metrics["train_time_s"])
        first, second = ranked[0].info.run_id, ranked[1].info.run_id
        _shoot(chromium, f"{base}/runs?workflowType=machine_learning", args.out / "runs_table.png", args.size,
               args.wait_ms)
        tall = f"{args.size.split(',')[0]},2200"  # the val/* and test sections below stage1/stage2
        _shoot(chromium, f"{base}/runs/{first}/model-metrics?workflowType=machine_learning",
               args.out / "run_metrics.png", tall, args.wait_ms)
        _shoot(chromium, f"{base}/runs/{first}?workflowType=machine_learning", args.out / "run_overview.png",
               args.size, args.wait_ms)
        compare = (f"http://127.0.0.1:{port}/#/compare-runs?runs=[%22{first}%22,%22{second}%22]"
                   f"&experiments=[%22{e}%22]")
        _shoot(chromium, compare, args.out / "compare.png", args.size, args.wait_ms)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
