"""Evaluation: descriptors of a query and a gallery set -> (re-ranked) distances -> CMC / mAP / mINP.

:func:`score` applies an :class:`EvalProtocol` to descriptors; :class:`Evaluator` extracts them first (sharded and
gathered under DDP). Both take plain values; reid.build.evaluation makes them from the config.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from reid.data.records import ImageRecord
from reid.engine.distributed import DistContext, broadcast_module_state, gather_features, shard
from reid.engine.features import extract_features
from reid.evaluation import re_ranking
from reid.evaluation.distance import l2_normalize
from reid.evaluation.distance_rows import DistanceRows
from reid.evaluation.metrics import evaluate_rows
from reid.evaluation.protocol import EvalProtocol


@dataclass
class EvalResult:
    metrics: dict[str, float]  # mAP, rank1, rank5, rank10, mINP (percent-free fractions in [0, 1])
    cmc: np.ndarray
    # the (Q, G) distances by blocks of rows: computed from the descriptors when read, unless re-ranked
    distances: DistanceRows | None
    # (qf, gf, q_pids, g_pids, q_cams, g_cams) of an Evaluator's result, on the rank that scored them
    features: tuple | None = None


def distances(qf: torch.Tensor, gf: torch.Tensor, protocol: EvalProtocol) -> DistanceRows:
    """(Q, G) distances under the protocol: squared Euclidean on (L2-normalised) descriptors, or re-ranked.

    Without re-ranking no (Q, G) matrix is built: each block of rows is computed when it is read.
    """
    p = protocol
    if p.normalize:
        qf, gf = l2_normalize(qf), l2_normalize(gf)
    if p.rerank:
        return DistanceRows.from_matrix(
            re_ranking(qf, gf, k1=p.k1, k2=p.k2, lambda_value=p.lambda_value, backend=p.backend, dtype=p.rerank_dtype)
        )
    return DistanceRows.squared_euclidean(qf, gf)


def score(
    qf: torch.Tensor, gf: torch.Tensor, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
    g_camids: np.ndarray, protocol: EvalProtocol,
) -> EvalResult:
    """The protocol's distances, then CMC / mAP / mINP under the Market-1501 protocol."""
    dist = distances(qf, gf, protocol)
    max_rank = min(protocol.max_rank, dist.shape[1])
    cmc, mAP, mINP = evaluate_rows(dist.block, *dist.shape, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    metrics = {"mAP": float(mAP), "mINP": float(mINP)}
    for r in (1, 5, 10):
        if r <= len(cmc):
            metrics[f"rank{r}"] = float(cmc[r - 1])
    return EvalResult(metrics=metrics, cmc=np.asarray(cmc), distances=dist)


class Evaluator:
    """Extracts query/gallery descriptors of ``model`` and scores them with ``protocol``.

    ``loader(records)`` builds an ordered test loader; ``transform`` normalises a decoded batch. Under DDP (``dist``
    with world size R > 1) rank r extracts ``query[r::R]`` and ``gallery[r::R]`` after taking rank 0's weights and
    buffers (BatchNorm running statistics differ per rank after training steps), the shards are all-gathered back
    into the full, ordered arrays, rank 0 scores them and every rank returns rank 0's metrics (and CMC;
    ``distances`` is rank 0's only, None elsewhere).
    """

    def __init__(
        self, model: nn.Module, query: Sequence[ImageRecord], gallery: Sequence[ImageRecord], protocol: EvalProtocol,
        loader: Callable[[Sequence[ImageRecord]], torch.utils.data.DataLoader], transform: nn.Module,
        device: torch.device, dist: DistContext | None = None, progress: bool = True,
        autocast: Callable[[], AbstractContextManager] = nullcontext,
    ):
        self.model, self.protocol, self.device = model, protocol, device
        self.dist = dist if dist is not None else DistContext(device=device)
        self.query, self.gallery = query, gallery
        q_local, self.q_index = shard(query, self.dist)
        g_local, self.g_index = shard(gallery, self.dist)
        # A rank whose shard is empty (fewer images than ranks) extracts nothing but still joins the gather.
        self.q_loader = loader(q_local) if q_local else None
        self.g_loader = loader(g_local) if g_local else None
        self.transform = transform
        self.progress = progress and self.dist.is_main
        self.autocast = autocast

    def _extract(self, loader, index: np.ndarray, desc: str) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        if loader is None:
            empty = np.zeros(0, dtype=np.int64)
            feats, pids, cams = torch.zeros(0, int(self.model.descriptor_dim)), empty, empty
        else:
            with self.autocast():
                feats, pids, cams = extract_features(
                    self.model, loader, transform=self.transform, device=self.device, flip=self.protocol.flip,
                    use_side_info=any(self.model.side_info), desc=desc, progress=self.progress,
                )
        if not self.dist.distributed:
            return feats, pids, cams
        return gather_features(feats, pids, cams, index)

    def __call__(self) -> EvalResult:
        if self.dist.distributed:
            broadcast_module_state(self.model)
        qf, q_pids, q_cams = self._extract(self.q_loader, self.q_index, "query")
        gf, g_pids, g_cams = self._extract(self.g_loader, self.g_index, "gallery")
        result = None
        if self.dist.is_main:
            result = score(qf, gf, q_pids, g_pids, q_cams, g_cams, self.protocol)
            result.features = (qf, gf, q_pids, g_pids, q_cams, g_cams)
        if not self.dist.distributed:
            return result
        metrics, cmc = self.dist.broadcast_object((result.metrics, result.cmc) if result is not None else None)
        return (
            result if result is not None else EvalResult(metrics=metrics, cmc=cmc, distances=None)
        )
