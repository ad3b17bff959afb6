"""The evaluation protocol as one frozen value: what turns descriptors into the numbers a run reports.

The config's ``eval`` group becomes an :class:`EvalProtocol` in reid.build; training's evaluation,
``python -m reid.evaluate`` and ``python -m reid.search`` all take it, so the three cannot drift apart.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class EvalProtocol:
    normalize: bool = True        # L2-normalise descriptors before distances (docs/method.md §5)
    rerank: bool = False          # k-reciprocal re-ranking (Zhong et al. 2017)
    k1: int = 50
    k2: int = 15
    lambda_value: float = 0.3
    backend: str = "auto"         # kNN backend of the re-ranking: auto | faiss_cpu | faiss_gpu | torch
    rerank_dtype: str = "float64"  # precision of the stored re-ranked matrix; the arithmetic is float64 either way
    flip: bool = False            # average each descriptor with its mirror image's
    max_rank: int = 50            # CMC length

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EvalProtocol:
        """The protocol fields of a mapping (an ``eval`` section); other keys (batch size, plots) are not protocol."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def with_changes(self, **changes: Any) -> EvalProtocol:
        return replace(self, **changes)

    def describe(self) -> str:
        if not self.rerank:
            return "squared Euclidean" + (" on L2-normalised descriptors" if self.normalize else "")
        return f"k-reciprocal re-ranking (k1={self.k1}, k2={self.k2}, lambda={self.lambda_value})"


PROTOCOL_KEYS = tuple(f.name for f in fields(EvalProtocol))
