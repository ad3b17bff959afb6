"""The epoch loop every stage runs: schedule, steps, fault checks, logging, checkpoints, evaluation.

A stage supplies a ``step`` callable (batch -> dict of loss terms with "loss") and
the objects it trains; everything else (progress bars, per-epoch summaries,
non-finite policy, mixed precision, SIGTERM, checkpoint cadence) lives here once.
"""
from __future__ import annotations

import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from reid.engine.checkpoint import Checkpointer
from reid.engine.faults import NonFinitePolicy, Preempted, SigtermFlag, first_nonfinite, hold_point, inject_nonfinite
from reid.engine.precision import Precision
from reid.tracking.base import Tracker


@dataclass
class StageLoop:
    name: str
    epochs: int
    model: nn.Module
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    batches: Callable[[int, int], Any]  # (epoch, start_batch) -> iterable of batches
    steps_per_epoch: int
    step: Callable[[Any], dict[str, torch.Tensor]]
    precision: Precision
    tracker: Tracker
    checkpointer: Checkpointer
    nonfinite: NonFinitePolicy
    state: Callable[[], dict[str, Any]]  # extra state to checkpoint (sampler, ...), merged with the loop's own
    checkpoint_period: int = 1
    eval_fn: Callable[[int], dict[str, float]] | None = None
    eval_period: int = 0
    grad_clip: float = 0.0
    max_steps_per_epoch: int = 0  # debug: 0 = whole epoch
    progress: bool = True
    # DDP: a DistContext when every rank runs this loop in lockstep (gradients all-reduced). Ranks then agree, once
    # per step, on skipping a non-finite step and on stopping for SIGTERM (a rank that skipped the backward while
    # another ran it would hang DDP's all-reduce), and the logged epoch means are over all ranks' steps.
    dist: Any = None
    verbose: bool = True  # print the per-epoch summary line (off on ranks > 0)
    history: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def checkpoint_state(self, epoch: int, batch: int, complete: bool) -> dict[str, Any]:
        return {
            "system": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.precision.scaler.state_dict(),
            "batch": batch,
            "complete": complete,
            "nonfinite_skipped": self.nonfinite.skipped,
            **self.state(),
        }

    def run(self, start_epoch: int = 0, start_batch: int = 0) -> dict[str, float]:
        """Train epochs start_epoch+1..epochs (resuming mid-epoch at start_batch if > 0); returns last eval metrics."""
        last_metrics: dict[str, float] = {}
        with SigtermFlag() as sigterm:
            for epoch in range(start_epoch + 1, self.epochs + 1):
                if start_batch == 0 or epoch > start_epoch + 1:
                    with warnings.catch_warnings():  # stepping before the epoch's optimiser steps is intended here
                        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
                        self.scheduler.step()  # once per epoch, at its start (CLIP-ReID)
                    begin = 0
                else:
                    begin = start_batch
                last_metrics = self._epoch(epoch, begin, sigterm) or last_metrics
        return last_metrics

    def _epoch(self, epoch: int, begin: int, sigterm: SigtermFlag) -> dict[str, float]:
        self.model.train()
        sums: dict[str, float] = defaultdict(float)
        count = 0
        total = (
            self.steps_per_epoch
            if not self.max_steps_per_epoch
            else min(self.steps_per_epoch, self.max_steps_per_epoch)
        )
        started = time.perf_counter()
        bar = tqdm(
            total=total,
            initial=begin,
            desc=f"{self.name} {epoch}/{self.epochs}",
            leave=False,
            disable=not self.progress,
        )
        for i, batch in enumerate(self.batches(epoch, begin), start=begin):
            if i >= total:
                break
            hold_point(
                self.name, epoch, i + 1, stop=lambda: sigterm.raised
            )  # test barrier, a no-op unless REID_HOLD_AT is set
            with self.precision.autocast():
                terms = self.step(batch)
            terms = inject_nonfinite(
                terms, self.name, epoch, i + 1
            )  # test hook, a no-op unless REID_INJECT_NONFINITE is set
            values = {k: float(v.detach()) for k, v in terms.items()}
            bad = first_nonfinite(values)
            stop = False  # DDP: decided here, by all ranks together; single process: read after the step, below
            if self.dist is not None:
                elsewhere, stop = self.dist.any_flags(bad is not None, sigterm.raised)
                if elsewhere and bad is None:
                    bad = "another rank"
            if bad is None:
                self.optimizer.zero_grad(set_to_none=True)
                self.precision.scaler.scale(terms["loss"]).backward()
                self.precision.scaler.unscale_(self.optimizer)
                norm = torch.nn.utils.clip_grad_norm_(
                    self.params, self.grad_clip if self.grad_clip > 0 else float("inf")
                )
                if self.precision.mode != "fp16" and not torch.isfinite(norm):
                    bad = "gradient"
            if bad is not None:
                self.optimizer.zero_grad(set_to_none=True)
                where = f"at {self.name} epoch {epoch} step {i + 1}"
                if bad == "gradient":
                    message = f"non-finite gradient {where}"
                elif bad == "another rank":
                    message = f"non-finite loss on another rank {where}"
                else:
                    message = f"non-finite loss term {bad!r} {where} (value {values.get(bad)})"
                self.nonfinite.handle(message)
            else:
                self.precision.scaler.step(self.optimizer)
                self.precision.scaler.update()
                for k, v in values.items():
                    sums[k] += v
                count += 1
            bar.update(1)
            if count:
                bar.set_postfix(loss=f"{sums['loss'] / count:.3f}")
            if stop or (self.dist is None and sigterm.raised):
                bar.close()
                path = self.checkpointer.save(self.checkpoint_state(epoch, i + 1, complete=False), self.name, epoch)
                saved = (
                    f"checkpoint written to {path}"
                    if path is not None
                    else "this process writes no checkpoints (under DDP rank 0 does)"
                )
                raise Preempted(f"SIGTERM at {self.name} epoch {epoch} step {i + 1}; {saved}")
        bar.close()
        if self.dist is not None:
            sums, count = self.dist.sum_stats(sums, count)
        lr = self.optimizer.param_groups[0]["lr"]
        means = {f"{self.name}/{k}": v / max(count, 1) for k, v in sums.items()}
        means[f"{self.name}/lr"] = lr
        means[f"{self.name}/epoch_time_s"] = time.perf_counter() - started
        if self.nonfinite.action == "skip":
            means[f"{self.name}/nonfinite_skipped"] = float(self.nonfinite.skipped)  # cumulative over the stage
        for k, v in means.items():
            self.history[k].append(v)
        self.tracker.log_metrics(means, step=epoch)
        summary = "  ".join(f"{k.split('/', 1)[1]}={v:.4g}" for k, v in means.items())
        if self.verbose:
            print(f"[{self.name}] epoch {epoch}/{self.epochs}  {summary}", flush=True)
        metrics: dict[str, float] = {}
        if self.eval_fn is not None and self.eval_period and (epoch % self.eval_period == 0 or epoch == self.epochs):
            metrics = self.eval_fn(epoch)
        if epoch % self.checkpoint_period == 0 or epoch == self.epochs:
            self.checkpointer.save(self.checkpoint_state(epoch, 0, complete=True), self.name, epoch)
        return metrics
