"""Evaluation glue: features -> (re-ranked) distances -> CMC / mAP / mINP, with the names MLflow logs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reid.evaluation import evaluate, re_ranking
from reid.evaluation.distance import l2_normalize, squared_euclidean


@dataclass
class EvalResult:
    metrics: dict[str, float]  # mAP, rank1, rank5, rank10, mINP (percent-free fractions in [0, 1])
    cmc: np.ndarray
    distmat: np.ndarray


def score(
    qf: torch.Tensor,
    gf: torch.Tensor,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    normalize: bool,
    rerank: bool,
    k1: int,
    k2: int,
    lambda_value: float,
    backend: str,
    max_rank: int,
) -> EvalResult:
    """Squared Euclidean on (L2-normalised) descriptors, optional k-reciprocal re-ranking, then the metrics."""
    if normalize:
        qf, gf = l2_normalize(qf), l2_normalize(gf)
    if rerank:
        distmat = re_ranking(qf, gf, k1=k1, k2=k2, lambda_value=lambda_value, backend=backend)
    else:
        distmat = squared_euclidean(qf, gf)
    distmat = np.asarray(distmat.cpu().numpy() if isinstance(distmat, torch.Tensor) else distmat)
    max_rank = min(max_rank, distmat.shape[1])
    cmc, mAP, mINP = evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
    metrics = {"mAP": float(mAP), "mINP": float(mINP)}
    for r in (1, 5, 10):
        if r <= len(cmc):
            metrics[f"rank{r}"] = float(cmc[r - 1])
    return EvalResult(metrics=metrics, cmc=np.asarray(cmc), distmat=distmat)
