"""Which checkpoint a run continues from (reid.engine.resume): the newest readable one, in this run's folder or in
the newest unfinished sibling run of the same config, since every invocation gets a fresh timestamped folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

from reid.engine.checkpoint import Checkpointer
from reid.engine.distributed import DistContext
from reid.engine.resume import FINISHED_MARKER, find_resume, resolve_resume

CONFIG = {"seed": 7, "method": {"name": "clipreid"}, "resume": "auto", "paths": {"output_dir": "${hydra:runtime}"}}


def _run_folder(parent: Path, name: str, config: dict, epochs: int, mtime: float, finished: bool = False) -> Path:
    """A run folder as the pipeline leaves it: .hydra/config.yaml, checkpoints (newest last), maybe metrics.json."""
    folder = parent / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    ck = Checkpointer(folder / "checkpoints", keep_last=5)
    for epoch in range(1, epochs + 1):
        path = ck.save({"epoch_marker": torch.tensor(epoch), "folder": name}, "stage2", epoch)
        os.utime(path, (mtime + epoch, mtime + epoch))
    if finished:
        (folder / FINISHED_MARKER).write_text("{}")
    return folder


def test_auto_continues_the_newest_unfinished_sibling_with_the_same_config(tmp_path: Path) -> None:
    _run_folder(tmp_path, "2026-12-01_10-00-00", CONFIG, epochs=2, mtime=1000)           # older, unfinished
    newest = _run_folder(tmp_path, "2026-12-01_11-00-00", CONFIG, epochs=3, mtime=2000)  # newest unfinished
    _run_folder(tmp_path, "2026-12-01_12-00-00", CONFIG, epochs=4, mtime=3000, finished=True)  # done: not resumed
    _run_folder(tmp_path, "2026-12-01_13-00-00", {**CONFIG, "seed": 8}, epochs=4, mtime=4000)  # another config
    this_run = tmp_path / "2026-12-01_14-00-00"
    this_run.mkdir()
    # "resume" itself may differ between the interrupted invocation and this one
    path, state, folder = find_resume("auto", this_run, {**CONFIG, "resume": "auto"})
    assert folder == newest and path == newest / "checkpoints" / "ckpt_stage2_e0003.pt"
    assert state["folder"] == "2026-12-01_11-00-00" and int(state["epoch_marker"]) == 3


def test_auto_starts_afresh_when_no_sibling_matches(tmp_path: Path) -> None:
    _run_folder(tmp_path, "old", {**CONFIG, "seed": 1}, epochs=2, mtime=1000)
    this_run = tmp_path / "new"
    this_run.mkdir()
    assert find_resume("auto", this_run, CONFIG) == (None, None, this_run)
    assert find_resume(False, this_run, CONFIG) == (None, None, this_run)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run_folder(tmp_path, "run", CONFIG, epochs=3, mtime=1000)
    newest = run / "checkpoints" / "ckpt_stage2_e0003.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a crash mid-write of a copied file
    path, state, folder = find_resume("auto", run, CONFIG)
    assert path == run / "checkpoints" / "ckpt_stage2_e0002.pt" and int(state["epoch_marker"]) == 2 and folder == run
    out = capsys.readouterr().out
    assert f"WARNING: {newest} cannot be read (truncated or corrupt): resuming from the checkpoint before it" in out
    # the same through an explicit run folder
    path, _, folder = find_resume(str(run), tmp_path / "elsewhere", CONFIG)
    assert path.name == "ckpt_stage2_e0002.pt" and folder == run


def test_bad_resume_paths_name_what_was_looked_for(tmp_path: Path) -> None:
    dist = DistContext()
    with pytest.raises(FileNotFoundError, match=f"resume={tmp_path / 'nope'}: no such checkpoint file or run folder"):
        resolve_resume(str(tmp_path / "nope"), tmp_path / "run", CONFIG, dist)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no readable ckpt_"):
        resolve_resume(str(tmp_path / "empty"), tmp_path / "run", CONFIG, dist)
    with pytest.raises(FileNotFoundError, match="resume=true but .* holds no readable checkpoint"):
        resolve_resume(True, tmp_path / "run", CONFIG, dist)
