"""The shape every method has: a system of modules, and stages that train parts of it in order.

A method (CLIP-ReID, the baseline, SVLL-ReID = CLIP-ReID plus SSL terms) is a small class registered with
:func:`register_method`. reid.build makes a :class:`Toolkit` from the config (the system, loaders, objectives,
optimisers: every config value translated into plain values and factories); the method turns it into
:class:`StagePlan` s, and the generic runner (reid.engine.stage_runner) runs each :class:`Stage` a plan builds,
with checkpoints, resume, non-finite checks and logging. Methods read no config.
"""
from __future__ import annotations

import abc
import importlib
import pkgutil
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from reid.data.records import ImageRecord
from reid.losses.terms import Objective


@dataclass(frozen=True)
class StageSettings:
    """One stage's plain settings (``method.<stage>`` in the config, with the debug limits applied)."""

    epochs: int
    batch_size: int
    num_instances: int = 0        # image stages: K images per identity of the P×K batch
    feature_batch_size: int = 0   # prompt stages: batch of the frozen image-feature cache
    eval_period: int = 0          # image stages: evaluate every N epochs (and after the last)


@dataclass
class Toolkit:
    """What a method's stages are made of, built from the config by reid.build.

    The factories take plain values: ``objective(kind, provided)`` -> the stage kind's active loss terms given the
    step outputs the stage provides; ``optimizer(stage, named_params, epochs)`` -> (optimiser, scheduler) from
    ``method.<stage>``; ``train_loader(batch_size, num_instances)`` -> the P×K loader (sharded under DDP);
    ``feature_loader(records, batch_size)`` -> an ordered loader with no augmentation. Evaluation is the pipeline's:
    a stage only says how often (``Stage.eval_period``).
    """

    system: nn.ModuleDict
    train: Sequence[ImageRecord]
    device: torch.device
    dist: Any                                    # reid.engine.distributed.DistContext
    seed: int
    settings: Mapping[str, StageSettings]
    objective: Callable[[str, Collection[str]], Objective]
    optimizer: Callable[[str, list[tuple[str, nn.Parameter]], int], tuple[Any, Any]]
    train_loader: Callable[[int, int], Any]
    feature_loader: Callable[[Sequence[ImageRecord], int], Any]
    test_transform: nn.Module
    augment: nn.Module
    ssl_augment: nn.Module | None
    extract_autocast: Callable[[], Any]          # the autocast context of feature extraction
    progress: bool = True
    fused_optimizer: bool | None = None
    ssl_detach: bool = False                     # the vision SSL loss on detached features (a control experiment)


@dataclass
class Stage:
    """One stage, ready to run: what trains, on which batches, with which step, optimiser and schedule."""

    name: str                                                 # checkpoints ckpt_<name>_eNNNN.pt, logs <name>/<term>
    epochs: int
    trainable: list[tuple[str, nn.Parameter]]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    batches: Callable[[int, int], Iterable[Any]]              # (epoch, first batch) -> batches of that epoch
    steps_per_epoch: int
    step: Callable[[Any], dict[str, torch.Tensor]]            # batch -> loss terms with "loss"
    state: Callable[[], dict[str, Any]] = dict                # extra checkpoint state
    eval_period: int = 0
    restore: Callable[[dict[str, Any], int, int], None] | None = None   # (checkpoint, epoch, batch) on resume
    fresh: Callable[[], None] | None = None                   # when not resuming
    finish: Callable[[], None] | None = None                  # after the stage (resumed past it or not)


@dataclass
class StagePlan:
    """A stage by name; ``build`` makes it only when it has to run (a resumed run skips finished stages)."""

    name: str
    build: Callable[[], Stage]
    skipped: Callable[[], None] | None = None                 # the stage finished earlier (resume): restore its effect


class Method(abc.ABC):
    """A training method. Subclasses set the class attributes and implement :meth:`plans`."""

    name: ClassVar[str]
    uses_text: ClassVar[bool] = False             # needs CLIP's text side (prompt learner + text encoder)
    stages: ClassVar[Mapping[str, str]] = {}      # stage name (config section method.<name>) -> kind (prompt | image)

    @abc.abstractmethod
    def plans(self, kit: Toolkit, stages: Sequence[str]) -> list[StagePlan]:
        """The plans of ``stages`` (a subset of :attr:`stages`, in order) for this toolkit."""


_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``method=<cls.name>`` select this method."""
    existing = _METHODS.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"method {cls.name!r} is already registered to {existing.__module__}.{existing.__qualname__}")
    _METHODS[cls.name] = cls
    return cls


def registered_methods() -> tuple[str, ...]:
    """Sorted method names; imports every module of reid.methods first, so a new module registers itself."""
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):  # this package's modules, without importing it
        importlib.import_module(f"{__name__.rpartition('.')[0]}.{module.name}")
    return tuple(sorted(_METHODS))


def method_class(name: str) -> type[Method]:
    known = registered_methods()
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(known)}")
    return _METHODS[name]


def default_stages(method: type[Method]) -> list[str]:
    return list(method.stages)

