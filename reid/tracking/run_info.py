"""Small, torch-free helpers shared by everything that records or reads runs."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

_GIT_TIMEOUT_S = 5


def git_commit(root: str) -> str:
    """The checkout's commit, or REID_GIT_COMMIT (set in images built without .git), else "unknown"."""
    if os.environ.get("REID_GIT_COMMIT"):
        return os.environ["REID_GIT_COMMIT"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):  # not a git checkout (e.g. an installed wheel): record that
        return "unknown"


def search_all_runs(client: Any, experiment_id: str, query: str) -> Iterator[Any]:
    """Every run matching ``query`` (MLflow pages its results)."""
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, page_token=token)
        yield from page
        token = page.token
        if not token:
            return
