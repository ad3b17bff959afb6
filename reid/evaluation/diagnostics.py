"""Two measurements of how much a descriptor encodes the camera rather than the identity (docs/results.md).

``same_camera_false_matches``: of each query's top-k gallery images that are *other* identities, the share taken
under the query's own camera (the Market-1501 protocol's removal of same-identity same-camera images applied
first). A descriptor that ranks by camera style fills its false matches from its own camera.
``camera_probe_accuracy``: how well a linear classifier reads the camera off the L2-normalised descriptor, trained on
the images of half the identities and tested on the other half (identities never shared between the two halves).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from reid.evaluation.distance_rows import DistanceRows


def same_camera_false_matches(
    distances: DistanceRows | Any, q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray, g_cams: np.ndarray,
    k: int = 10,
) -> float:
    """Mean over queries of the share of own-camera images among the top-k false matches (a (Q, G) matrix or its
    :class:`DistanceRows`, read a block of rows at a time)."""
    rows = distances if isinstance(distances, DistanceRows) else DistanceRows.from_matrix(distances)
    shares = []
    for a, block in rows.blocks(256):
        for i in range(a, a + block.shape[0]):
            keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))  # the protocol's junk: same identity, same camera
            order = np.argsort(block[i - a][keep], kind="stable")[:k]
            pids, cams = g_pids[keep][order], g_cams[keep][order]
            false = pids != q_pids[i]
            if false.any():
                shares.append(float((cams[false] == q_cams[i]).mean()))
    return float(np.mean(shares)) if shares else 0.0


def camera_probe_accuracy(feats: torch.Tensor, pids: np.ndarray, cams: np.ndarray, seed: int = 0,
                          ridge: float = 1e-3) -> tuple[float, float]:
    """(accuracy, majority-class accuracy) of a ridge-regularised least-squares one-vs-rest camera classifier."""
    x = torch.nn.functional.normalize(torch.as_tensor(feats, dtype=torch.float64), dim=1)
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    ids = np.unique(pids)
    rng = np.random.default_rng(seed)
    train_ids = set(rng.choice(ids, size=max(1, len(ids) // 2), replace=False).tolist())
    train = np.array([p in train_ids for p in pids])
    classes = np.unique(cams)
    y = torch.as_tensor((cams[:, None] == classes[None, :]).astype(np.float64))
    a, b = x[torch.as_tensor(train)], y[torch.as_tensor(train)]
    w = torch.linalg.solve(a.t() @ a + ridge * torch.eye(a.shape[1], dtype=a.dtype), a.t() @ b)
    test = ~train
    predicted = classes[(x[torch.as_tensor(test)] @ w).argmax(dim=1).numpy()]
    majority = float(max((cams[test] == c).mean() for c in classes))
    return float((predicted == cams[test]).mean()), majority
