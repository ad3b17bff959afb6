"""Learning-rate schedules: the per-epoch ones of CLIP-ReID (docs/method.md §3.4, §4.3) and one per-step curve.

The per-epoch ones are stepped once at the *start* of each epoch with the 1-based epoch index,
so ``factor(e)`` is the multiplier of the base lr used throughout epoch e. ``warmup_cosine_step_factor`` is
stepped per optimiser step (the tiny CLIP's caption pretraining).
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import torch


def warmup_multistep_factor(
    epoch: int, warmup_epochs: int, warmup_factor: float, milestones: Sequence[int], gamma: float
) -> float:
    """(warmup_factor·(1 − e/W) + e/W if e < W else 1) · gamma^(#milestones ≤ e)."""
    warm = 1.0
    if epoch < warmup_epochs:
        alpha = epoch / warmup_epochs
        warm = warmup_factor * (1 - alpha) + alpha
    return warm * gamma ** sum(1 for m in milestones if m <= epoch)


def cosine_warmup_lr(
    epoch: int, base_lr: float, epochs: int, warmup_epochs: int, warmup_lr_init: float, lr_min: float
) -> float:
    """timm CosineLRScheduler with warmup_prefix=False and cycle_limit=1, evaluated at epoch e."""
    if epoch < warmup_epochs:
        return warmup_lr_init + epoch * (base_lr - warmup_lr_init) / warmup_epochs
    return lr_min + 0.5 * (base_lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs))


def warmup_cosine_step_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Per-*step* multiplier of the base lr: linear warmup to 1 over ``warmup_steps``, then a cosine to 0 at
    ``total_steps``; ``step`` is 0-based, the value LambdaLR passes before its first ``step()``.

    The tiny CLIP's caption pretraining (reid.engine.caption_pretraining) steps it once per optimiser step. It is not
    a ``scheduler.name`` choice: ReID stages schedule per epoch (above).
    """
    if step < warmup_steps:
        return (step + 1) / max(warmup_steps, 1)
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(total_steps - warmup_steps, 1)))


def schedule_parameters(name: str) -> tuple[str, ...]:
    """The config keys a schedule takes (its factor function's parameters after the epoch / lr arguments)."""
    fn, skip = SCHEDULES[name]
    return tuple(inspect.signature(fn).parameters)[skip:]


def build_scheduler(
    optimizer: torch.optim.Optimizer, name: str, epochs: int, **params
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR whose ``last_epoch`` is the 1-based epoch after the first ``step()``."""
    if name == "warmup_multistep":
        fn: Callable[[int], float] = lambda e: warmup_multistep_factor(e, **params)  # noqa: E731
        return torch.optim.lr_scheduler.LambdaLR(optimizer, [fn] * len(optimizer.param_groups))
    if name == "cosine":
        fns = []
        for group in optimizer.param_groups:
            base = group["lr"]
            fns.append(lambda e, b=base: cosine_warmup_lr(e, b, epochs, **params) / b)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, fns)
    raise ValueError(f"unknown scheduler {name!r} (known: {', '.join(SCHEDULES)})")


# name -> (its per-epoch function, how many leading arguments are not config values): the scheduler.name choices.
SCHEDULES = {"warmup_multistep": (warmup_multistep_factor, 1), "cosine": (cosine_warmup_lr, 3)}
