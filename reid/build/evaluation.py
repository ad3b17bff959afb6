"""Config -> evaluation: the :class:`EvalProtocol` of an ``eval`` section and the evaluator of a run."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from omegaconf import DictConfig

from reid.build import data
from reid.build.common import to_plain
from reid.data.records import ImageRecord
from reid.engine.evaluator import Evaluator
from reid.engine.precision import Precision
from reid.evaluation.protocol import EvalProtocol


def eval_protocol(node: DictConfig | dict) -> EvalProtocol:
    return EvalProtocol.from_mapping(to_plain(node))


def build_evaluator(
    cfg: DictConfig, model: torch.nn.Module, query: Sequence[ImageRecord], gallery: Sequence[ImageRecord],
    device: torch.device, dist: Any = None,
) -> Evaluator:
    """Scores ``model`` on query/gallery with the run's protocol, loaders and extraction precision."""
    pin = data.pin_memory(cfg, device)
    return Evaluator(
        model, query, gallery, eval_protocol(cfg.eval), data.test_loader_factory(cfg, pin),
        data.test_transform(cfg, device), device, dist, progress=bool(cfg.progress),
        autocast=Precision(cfg.speed.extract_precision, device).autocast,
    )
