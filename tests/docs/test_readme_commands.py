"""Every command of the README's "Everyday use" block runs as written, or is marked as needing real data.

The block is read from README.md itself, so a line edited there is the line tested. Each command runs as a
subprocess from the project root with ``python`` being this interpreter (the README activates .venv first), plus
speed-and-isolation overrides appended the way a user adds overrides: the tiny 8-identity world, the randomly
initialised ``clip_tiny``, ``debug=fast``, a temporary output folder and MLflow store. ``<run_dir>`` is the run the
demo line trained; ``img.jpg`` and ``folder/`` are a query image and the gallery folder of the tiny world.
``mlflow ui`` is started on a free port against that store and must serve the runs the other lines logged.
"""
from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.shared import TINY_WORLD

ROOT = Path(__file__).resolve().parents[2]
REAL_DATA = "(real data)"  # the README's mark for a line that needs the real datasets and CLIP weights
TIMEOUT_S = 900


def everyday_lines() -> list[tuple[str, str]]:
    """(command, comment) of each line of the first ```bash block under "## Everyday use"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Everyday use", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    lines = []
    for raw in block.strip().splitlines():
        command, _, comment = raw.partition("#")
        if command.strip():
            lines.append((command.strip(), comment.strip()))
    return lines


def test_the_block_is_there_and_marks_the_real_data_lines() -> None:
    lines = everyday_lines()
    assert lines[0][0] == "source .venv/bin/activate"
    real = [c for c, note in lines if REAL_DATA in note]
    assert "python -m reid.train" in real and "python -m reid.train -m ssl.weight=0.1,0.5" in real
    assert all(c.startswith(("python -m reid.", "mlflow ui", "source ")) for c, _ in lines)
    optuna = [c for c, _ in lines if "hparams_search=" in c]
    assert optuna and all("-m" in shlex.split(c)[3:] for c in optuna)  # without -m: one ordinary run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    base = tmp_path_factory.mktemp("readme")
    return {"base": base, "uri": f"sqlite:///{base / 'mlflow.db'}"}


def _train_overrides(box: dict, tag: str) -> list[str]:
    base = Path(box["base"])
    return [
        "debug=fast", "backbone=clip_tiny", "eval.plots=false", "method.stage2.batch_size=16", *TINY_WORLD,
        f"paths.data_dir={base / 'data'}", f"paths.model_dir={base / 'models'}", f"paths.output_root={base / 'out'}",
        f"logger.tracking_uri={box['uri']}", f"hydra.run.dir={base / tag}", f"hydra.sweep.dir={base / tag}",
    ]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{shlex.join(args)}\nexit {done.returncode}:\n{(done.stdout + done.stderr)[-5000:]}"
    return done


def test_every_everyday_line_runs(sandbox: dict) -> None:
    base = Path(sandbox["base"])
    run_dir: Path | None = None
    ran = []
    for i, (command, note) in enumerate(everyday_lines()):
        if REAL_DATA in note or command.startswith("source "):
            continue
        args = shlex.split(command)
        if args[:3] == ["python", "-m", "reid.train"]:
            extra = _train_overrides(sandbox, f"train{i}")
            if "hparams_search=" in command:
                # the preset's validation split (its objective is val/mAP), which TINY_WORLD turns off
                extra += ["hydra.sweeper.n_trials=1", "dataset.options.val_fraction=0.2"]
            done = _run([sys.executable, *args[1:], *extra])
            if "--cfg" in args:
                assert "method:" in done.stdout and "dataset:" in done.stdout
            elif run_dir is None and "-m" not in args[3:]:
                run_dir = base / f"train{i}"
                assert (run_dir / "metrics.json").is_file() and "[run] MLflow run " in done.stdout
        elif args[:3] == ["python", "-m", "reid.evaluate"]:
            assert run_dir is not None, "the block trains a run before it evaluates one"
            args = [a.replace("<run_dir>", str(run_dir)) for a in args]
            done = _run([sys.executable, *args[1:], f"logger.tracking_uri={sandbox['uri']}",
                         f"paths.output_root={base / 'out'}", f"hydra.run.dir={base / f'eval{i}'}", "num_workers=0"])
            assert re.search(r"mAP", done.stdout), done.stdout[-2000:]
        elif args[:3] == ["python", "-m", "reid.search"]:
            assert run_dir is not None
            world = next((base / "data" / "synthetic").glob("Market-1501*"))
            query = sorted((world / "query").glob("*.jpg"))[0]
            args = [a.replace("<run_dir>", str(run_dir)) for a in args]
            args = [str(query) if a == "img.jpg" else str(world / "bounding_box_test") if a == "folder/" else a
                    for a in args]
            done = _run([sys.executable, *args[1:], "--out", str(base / "ranked.png"), "--num-workers", "0"])
            assert (base / "ranked.png").is_file()
        elif args[:2] == ["mlflow", "ui"]:
            _serves_the_runs([str(Path(sys.executable).parent / "mlflow"), "ui", *args[2:]], sandbox["uri"])
        else:
            raise AssertionError(f"the test does not know how to run README line {command!r}")
        ran.append(command)
    assert len(ran) >= 8, ran


def _serves_the_runs(args: list[str], uri: str) -> None:
    """``mlflow ui`` on a free port against the store: the runs the other lines logged are listed."""
    port = _free_port()
    proc = subprocess.Popen([*args, "--backend-store-uri", uri, "--port", str(port), "--workers", "1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # the server says when it listens: a barrier it controls, not a clock
            if "Uvicorn running on" in line:  # one worker: printed once the socket listens
                break
        body = json.dumps({"experiment_ids": ["1"], "max_results": 100}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            runs = json.load(response).get("runs", [])
        assert len(runs) >= 3, runs
    finally:
        proc.terminate()
        proc.wait(timeout=60)
