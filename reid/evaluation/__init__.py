"""Evaluation: Market-1501 metrics (CMC, mAP, mINP) and k-reciprocal re-ranking.

Importing this package is cheap; torch, faiss and scipy load on first use of
``evaluate`` / ``re_ranking``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["evaluate", "evaluate_features", "re_ranking"]

if TYPE_CHECKING:  # pragma: no cover
    from reid.evaluation.metrics import evaluate
    from reid.evaluation.rerank import re_ranking
    from reid.evaluation.streaming import evaluate_features

_LAZY = {
    "evaluate": "reid.evaluation.metrics",
    "evaluate_features": "reid.evaluation.streaming",
    "re_ranking": "reid.evaluation.rerank",
}


def __getattr__(name: str) -> Any:
    """Import the heavy implementation modules only when their function is asked for."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'reid.evaluation' has no attribute {name!r}")
