"""Atomic checkpoints with keep-last-N, so a killed run never loses or corrupts its progress.

A checkpoint is written to a temporary file in the same folder, fsync'ed, then
renamed over the final name (rename is atomic on POSIX), and the folder is
fsync'ed so the rename itself survives a crash. Names sort by (stage, epoch).
"""
from __future__ import annotations

import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

STAGE_ORDER = {"stage1": 1, "stage2": 2}
_NAME = re.compile(r"^ckpt_(stage\d)_e(\d{4})\.pt$")


def checkpoint_name(stage: str, epoch: int) -> str:
    return f"ckpt_{stage}_e{epoch:04d}.pt"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> Path:
    """``obj`` as JSON at ``path``, atomically (a reader never sees half a file)."""
    import json

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder`` ordered oldest to newest by (stage, epoch)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append(((STAGE_ORDER.get(m.group(1), 99), int(m.group(2))), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


class Checkpointer:
    """Saves ``state`` per (stage, epoch) and keeps the newest ``keep_last`` files of each stage."""

    def __init__(self, folder: Path, keep_last: int, enabled: bool = True):
        if keep_last < 1:
            raise ValueError(f"checkpoint.keep_last must be >= 1, got {keep_last}")
        self.folder = Path(folder)
        self.keep_last = keep_last
        self.enabled = enabled

    def save(self, state: dict[str, Any], stage: str, epoch: int) -> Path | None:
        if not self.enabled:
            return None
        path = self.folder / checkpoint_name(stage, epoch)
        atomic_save({**state, "stage": stage, "epoch": epoch, "rng": rng_state()}, path)
        same_stage = [p for p in list_checkpoints(self.folder) if p.name.startswith(f"ckpt_{stage}_")]
        for old in same_stage[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    @staticmethod
    def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        try:
            return torch.load(path, map_location=map_location, weights_only=False)
        except Exception as err:  # a truncated or foreign file must say which file it was
            raise RuntimeError(f"cannot read checkpoint {path}: {err}") from err
