"""Which checkpoint a run continues from: ``resume=auto | true | false | <file or run folder>``.

``auto`` looks in this run's folder first and then, since every invocation gets a fresh timestamped folder, in its
sibling run folders for the newest *unfinished* run (checkpoints, no metrics.json) whose saved config equals this
one: the same command continues an interrupted run without a fixed ``hydra.run.dir``. A newest checkpoint that cannot
be read (truncated by a crash, corrupt) is passed over, with a warning, for the one before it.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reid.engine.checkpoint import Checkpointer, list_checkpoints
from reid.engine.distributed import DistContext

FINISHED_MARKER = "metrics.json"  # written by the pipeline when a run ends
CONFIG_FILE = Path(".hydra") / "config.yaml"
_IGNORED = ("resume",)  # keys that may differ between the interrupted invocation and this one


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _IGNORED}


def unfinished_sibling(run_dir: Path, config: Mapping[str, Any]) -> Path | None:
    """The newest unfinished sibling run folder with checkpoints whose saved (unresolved) config equals ``config``."""
    candidates = []
    parent = run_dir.parent
    if not parent.is_dir():
        return None
    for folder in parent.iterdir():
        if folder == run_dir or not folder.is_dir() or (folder / FINISHED_MARKER).exists():
            continue
        found = list_checkpoints(folder / "checkpoints")
        saved = folder / CONFIG_FILE
        if not found or not saved.is_file():
            continue
        theirs = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        if _comparable(theirs) == _comparable(config):
            candidates.append((found[-1].stat().st_mtime, folder))
    return max(candidates)[1] if candidates else None


def load_newest_readable(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of ``folder`` that loads, warning about each newer one that does not."""
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, Checkpointer.load(path)
        except RuntimeError:
            print(f"WARNING: {path} cannot be read (truncated or corrupt): resuming from the checkpoint before it",
                  flush=True)
    return None


def find_resume(resume: Any, run_dir: Path, config: Mapping[str, Any]) -> tuple[Path | None, dict | None, Path]:
    """(checkpoint, its contents, the run folder to continue in) for the ``resume`` setting."""
    if resume in (False, None, "false", "never"):
        return None, None, run_dir
    if resume in (True, "auto", "true"):
        folder = run_dir
        if not list_checkpoints(run_dir / "checkpoints") and resume == "auto":
            folder = unfinished_sibling(run_dir, config) or run_dir
        found = load_newest_readable(folder / "checkpoints")
        if found is None and resume in (True, "true"):
            raise FileNotFoundError(f"resume=true but {run_dir / 'checkpoints'} holds no readable checkpoint")
        return (*found, folder) if found else (None, None, run_dir)
    path = Path(str(resume)).expanduser()
    if path.is_dir():
        found = load_newest_readable(path / "checkpoints") or load_newest_readable(path)
        if found is None:
            raise FileNotFoundError(f"resume={path}: no readable ckpt_*.pt in {path} or {path / 'checkpoints'}")
        return (*found, path if (path / "checkpoints").is_dir() else path.parent)
    if not path.is_file():
        raise FileNotFoundError(f"resume={path}: no such checkpoint file or run folder")
    return path, Checkpointer.load(path), path.parent.parent


def resolve_resume(
    resume: Any, run_dir: Path, config: Mapping[str, Any], dist: DistContext
) -> tuple[Path | None, dict | None, Path]:
    """Rank 0 resolves ``resume``; every rank gets its answer (the same file and folder, or the same error)."""
    found, error = (None, None, run_dir), None
    if dist.is_main:
        try:
            found = find_resume(resume, run_dir, config)
        except (FileNotFoundError, OSError) as err:
            error = err
    path, folder, error = dist.broadcast_object((found[0], found[2], error))
    if error is not None:
        raise error
    state = found[1] if dist.is_main else (Checkpointer.load(path) if path else None)  # every rank reads the file
    return path, state, folder
