"""Helpers shared by the command-line tests: run a ``python -m reid.*`` command as a user would, read its output."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")
TIMEOUT_S = 900  # a subprocess on a loaded 2-core machine
RESULT_LINE = re.compile(r"^\s*(\d+)\s+(\d+\.\d+)\s+(?:(yes|no)\s+)?(\S.*)$")


def _clean_env() -> dict[str, str]:
    """This process's environment without a sweep context (parent run, per-job tags) that would leak into runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REID_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{cmd[2]} exited {done.returncode}:\n{(done.stdout + done.stderr)[-6000:]}"
    return done


def _parse_results(stdout: str) -> list[tuple[int, float, str | None, Path]]:
    body = stdout.split("path\n", 1)[1].splitlines()
    rows = [RESULT_LINE.match(line) for line in body if not line.startswith("wrote ")]
    assert all(rows), stdout
    return [(int(m[1]), float(m[2]), m[3], Path(m[4])) for m in rows if m]
