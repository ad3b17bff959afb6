"""Config -> what a method's stages are made of: objectives from the loss-term registry, optimisers and schedules,
stage settings, and the :class:`reid.methods.Toolkit` that carries them (with the loaders and augmentations)."""
from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from reid.build import data
from reid.build.common import to_plain, value
from reid.data.records import ImageRecord
from reid.engine.optim import build_optimizer
from reid.engine.precision import Precision
from reid.engine.schedules import build_scheduler
from reid.engine.speed import fused_optimizer_flag
from reid.losses.terms import Objective, TermFn, make_objective, registered_terms
from reid.methods.base import StageSettings, Toolkit


def objective_factory(cfg: DictConfig) -> Callable[..., Objective]:
    """(stage kind, provided outputs[, monitors]) -> the objective whose weights and options the config gives."""

    def make(kind: str, provided: Collection[str], monitors: Mapping[str, TermFn] | None = None) -> Objective:
        specs = registered_terms(kind)
        weights = {s.name: float(value(cfg, s.weight)) for s in specs}
        # an option key the config does not give leaves the term's own default (the key can be added with +loss.x=)
        options = {
            s.name: {k: value(cfg, key) for k, key in s.options.items() if OmegaConf.select(cfg, key) is not None}
            for s in specs if weights[s.name]
        }
        return make_objective(kind, weights, options, set(provided), monitors)

    return make


def optimizer_factory(cfg: DictConfig, fused: bool | None) -> Callable[[str, list, int], tuple[Any, Any]]:
    """(stage, named parameters, epochs) -> the optimiser and schedule of ``method.<stage>``."""

    def make(stage: str, named: list, epochs: int):
        s = cfg.method[stage]
        o = s.optimizer
        optimizer = build_optimizer(
            named, o.name, o.lr, o.weight_decay, o.bias_lr_factor, o.weight_decay_bias, tuple(o.betas), fused=fused
        )
        params = {k: v for k, v in to_plain(s.scheduler).items() if k != "name"}
        return optimizer, build_scheduler(optimizer, s.scheduler.name, epochs, **params)

    return make


def stage_settings(cfg: DictConfig, stages: Sequence[str]) -> dict[str, StageSettings]:
    """``method.<stage>`` of each stage as plain values, ``limits.epochs`` (debug runs) applied."""
    out = {}
    for name in stages:
        s = cfg.method[name]
        epochs = int(cfg.limits.epochs) if cfg.limits.epochs else int(s.epochs)
        out[name] = StageSettings(
            epochs=epochs, batch_size=int(s.batch_size), num_instances=int(s.get("num_instances") or 0),
            feature_batch_size=int(s.get("feature_batch_size") or 0), eval_period=int(s.get("eval_period") or 0),
        )
    return out


def build_toolkit(
    cfg: DictConfig, system: torch.nn.ModuleDict, train: Sequence[ImageRecord], device: torch.device, dist: Any,
    stages: Sequence[str],
) -> Toolkit:
    pin = data.pin_memory(cfg, device)
    fused = fused_optimizer_flag(cfg.speed.fused_optimizer, device)
    features = data.test_loader_factory(cfg, pin)
    return Toolkit(
        system=system, train=train, device=device, dist=dist, seed=int(cfg.seed),
        settings=stage_settings(cfg, stages), objective=objective_factory(cfg), optimizer=optimizer_factory(cfg, fused),
        train_loader=data.train_loader_factory(cfg, train, pin, dist), feature_loader=lambda r, b: features(r, b),
        test_transform=data.test_transform(cfg, device), augment=data.train_augment(cfg, device),
        ssl_augment=data.ssl_view_augment(cfg, device),
        extract_autocast=Precision(cfg.speed.extract_precision, device).autocast,
        progress=bool(cfg.progress), fused_optimizer=fused, ssl_detach=bool(cfg.ssl.get("detach", False)),
    )


def check_batches_fit(cfg: DictConfig, stages: Sequence[str], kinds: Mapping[str, str], num_ids: int) -> None:
    """Every image stage's P×K batch needs P = batch_size / K distinct training identities: checked once the dataset
    is loaded, before anything trains (a validation split leaves fewer)."""
    from reid.config import ConfigError

    for name in (s for s in stages if kinds.get(s) == "image"):
        s = cfg.method[name]
        p = int(s.batch_size) // int(s.num_instances)
        if p > num_ids:
            k = int(s.num_instances)
            raise ConfigError(
                f"method.{name}.batch_size={s.batch_size} with num_instances={k} needs {p} distinct identities per "
                f"batch, but the training split has {num_ids}: set method.{name}.batch_size={num_ids * k} or less "
                f"(a multiple of {k}), or train on more identities"
            )
