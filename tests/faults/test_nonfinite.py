"""A NaN injected into one loss term at a chosen step (REID_INJECT_NONFINITE=<stage>:<epoch>:<step>[:<term>]):
action=stop fails naming stage, step and term and keeps the last good checkpoint; action=skip drops the step, counts it
and finishes."""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from reid.engine.checkpoint import Checkpointer, latest_checkpoint
from reid.engine.faults import NonFiniteLossError, NonFinitePolicy

if TYPE_CHECKING:
    from conftest import FaultEnv

INJECT_NONFINITE_ENV = "REID_INJECT_NONFINITE"  # reid.engine.faults' test hook


def test_stop_names_stage_step_and_term_and_keeps_the_last_good_checkpoint(
    in_process: Callable[..., float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(INJECT_NONFINITE_ENV, "stage2:2:3:triplet")
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as failure:
        in_process(run_dir, "nonfinite.action=stop")
    assert str(failure.value) == (
        "non-finite loss term 'triplet' at stage2 epoch 2 step 3 (value nan); "
        "training stopped, the last good checkpoint is kept"
    )
    last = latest_checkpoint(run_dir / "checkpoints")
    assert last is not None and last.name == "ckpt_stage2_e0001.pt"
    state = Checkpointer.load(last)
    assert state["stage"] == "stage2" and state["epoch"] == 1 and state["complete"] is True
    weights = state["system"]
    assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())
    assert {k.split(".", 1)[0] for k in weights} == {"image", "prompt", "text"}
    # Loadable means usable: the same job, without the fault, resumes from it and finishes.
    monkeypatch.delenv(INJECT_NONFINITE_ENV)
    capsys.readouterr()
    assert 0.0 <= in_process(run_dir, "nonfinite.action=stop") <= 1.0
    assert f"[resume] from {last} (stage stage2, epoch 1)" in capsys.readouterr().out


def test_skip_drops_the_step_counts_it_and_finishes(
    in_process: Callable[..., float], fault_env: FaultEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(INJECT_NONFINITE_ENV, "stage2:2:1")
    mAP = in_process(tmp_path / "run", "nonfinite.action=skip", "nonfinite.max_skips=3", experiment="nonfinite-skip")
    assert 0.0 <= mAP <= 1.0
    out = capsys.readouterr().out
    assert "[nonfinite] non-finite loss term 'loss' at stage2 epoch 2 step 1 (value nan): step skipped (1/3)" in out
    assert "[stage2] epoch 3/3" in out and "nonfinite_skipped=1" in out
    run = fault_env.only_run("nonfinite-skip")
    assert run.info.status == "FINISHED" and run.data.metrics["stage2/nonfinite_skipped"] == 1.0
    assert math.isfinite(run.data.metrics["mAP"])


def test_skip_beyond_max_skips_stops() -> None:
    policy = NonFinitePolicy("skip", max_skips=1)
    policy.handle("non-finite loss term 'id' at stage2 epoch 1 step 1 (value nan)")
    with pytest.raises(NonFiniteLossError, match=r"step 2 .* after 1 skipped steps \(limit 1\); training stopped"):
        policy.handle("non-finite loss term 'id' at stage2 epoch 1 step 2 (value nan)")


def test_injection_hook_targets_one_step_and_term(monkeypatch: pytest.MonkeyPatch) -> None:
    from reid.engine.faults import INJECT_NONFINITE_ENV as name
    from reid.engine.faults import inject_nonfinite

    assert name == INJECT_NONFINITE_ENV
    terms = {"id": torch.tensor(1.0), "triplet": torch.tensor(2.0), "loss": torch.tensor(3.0)}
    assert inject_nonfinite(terms, "stage2", 1, 1) is terms  # unset: a no-op
    monkeypatch.setenv(INJECT_NONFINITE_ENV, "stage2:1:2:id")
    assert inject_nonfinite(terms, "stage2", 1, 1) is terms
    assert inject_nonfinite(terms, "stage1", 1, 2) is terms
    hit = inject_nonfinite(terms, "stage2", 1, 2)
    assert list(hit) == ["id", "triplet", "loss"]  # order kept: the first non-finite term is the injected one
    assert math.isnan(hit["id"]) and math.isnan(hit["loss"]) and hit["triplet"] == 2.0
    monkeypatch.setenv(INJECT_NONFINITE_ENV, "stage2:1:2:nope")
    with pytest.raises(ValueError, match="stage2 has no loss term 'nope' \\(it has id, triplet, loss\\)"):
        inject_nonfinite(terms, "stage2", 1, 2)
    monkeypatch.setenv(INJECT_NONFINITE_ENV, "stage2-1-2")
    with pytest.raises(ValueError, match="expected <stage>:<epoch>:<step>"):
        inject_nonfinite(terms, "stage2", 1, 2)
