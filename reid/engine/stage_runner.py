"""One generic runner for every stage of every method: resume into it, run its epochs, finish it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from reid.engine.checkpoint import Checkpointer, set_rng_state
from reid.engine.faults import NonFinitePolicy
from reid.engine.loop import StageLoop
from reid.engine.precision import Precision
from reid.methods.base import Stage
from reid.tracking.base import Tracker


@dataclass
class RunSettings:
    """What every stage of a run shares: the system, where it logs and checkpoints, and the fault policy."""

    system: nn.Module
    device: torch.device
    tracker: Tracker
    checkpointer: Checkpointer
    checkpoint_period: int
    precision: str
    nonfinite_action: str
    nonfinite_max_skips: int
    grad_clip: float = 0.0
    max_steps_per_epoch: int = 0
    progress: bool = True
    verbose: bool = True
    dist: Any = None                               # a DistContext when every rank runs the loop in lockstep
    state: Callable[[], dict[str, Any]] = dict     # what every checkpoint carries (MLflow run id, model spec)


def run_stage(
    stage: Stage, run: RunSettings, resume: dict[str, Any] | None = None,
    eval_fn: Callable[[int], dict[str, float]] | None = None, eval_period: int | None = None,
) -> dict[str, float]:
    """Run ``stage`` (continuing from ``resume``, a checkpoint of this stage, if given); returns the last metrics.

    ``eval_period`` overrides the stage's own (the pipeline's validation period)."""
    precision = Precision(run.precision, run.device)
    nonfinite = NonFinitePolicy(run.nonfinite_action, run.nonfinite_max_skips)
    start_epoch, start_batch = 0, 0
    if resume is not None:
        stage.optimizer.load_state_dict(resume["optimizer"])
        stage.scheduler.load_state_dict(resume["scheduler"])
        precision.scaler.load_state_dict(resume["scaler"])
        nonfinite.skipped = int(resume.get("nonfinite_skipped", 0))
        set_rng_state(resume["rng"])
        if resume["complete"]:
            start_epoch = int(resume["epoch"])
        else:
            start_epoch, start_batch = int(resume["epoch"]) - 1, int(resume["batch"])
        if stage.restore is not None:
            stage.restore(resume, start_epoch, start_batch)
    elif stage.fresh is not None:
        stage.fresh()
    loop = StageLoop(
        name=stage.name, epochs=stage.epochs, model=run.system,
        params=[p for _, p in stage.trainable if p.requires_grad], optimizer=stage.optimizer,
        scheduler=stage.scheduler, batches=stage.batches, steps_per_epoch=stage.steps_per_epoch, step=stage.step,
        precision=precision, tracker=run.tracker, checkpointer=run.checkpointer, nonfinite=nonfinite,
        state=lambda: {**run.state(), **stage.state()}, checkpoint_period=run.checkpoint_period, eval_fn=eval_fn,
        eval_period=stage.eval_period if eval_period is None else eval_period, grad_clip=run.grad_clip,
        max_steps_per_epoch=run.max_steps_per_epoch,
        progress=run.progress, dist=run.dist, verbose=run.verbose,
    )
    metrics = loop.run(start_epoch, start_batch)
    if stage.finish is not None:
        stage.finish()
    return metrics
