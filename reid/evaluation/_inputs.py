"""Input checks shared by the metrics and re-ranking code.

Every public entry point converts its arguments here so that a wrong shape, a
wrong dtype or a NaN/inf value stops with a ``ValueError`` naming the argument,
instead of silently producing a wrong metric.
"""
from __future__ import annotations

from typing import Any

import numpy as np

_FLOAT_KINDS = ("f",)


def _is_torch_tensor(x: Any) -> bool:
    """True for ``torch.Tensor`` without importing torch when it is not loaded."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any, name: str) -> np.ndarray:
    """A numpy view/copy of a numpy array, torch tensor (any device) or sequence."""
    if _is_torch_tensor(x):
        t = x.detach()
        if t.dtype.is_floating_point and t.element_size() < 4:
            t = t.float()  # float16 / bfloat16: widen exactly (numpy has no bfloat16)
        return t.cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: cannot convert {type(x).__name__} to an array ({exc})") from exc


def labels(x: Any, name: str, length: int | None = None) -> np.ndarray:
    """A 1-D int64 label array (pids or camids); rejects floats, bools and wrong lengths."""
    a = to_numpy(x, name)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype.kind not in ("i", "u"):
        raise ValueError(f"{name} must have an integer dtype, got {a.dtype}")
    if length is not None and a.shape[0] != length:
        raise ValueError(f"{name} has {a.shape[0]} entries, expected {length}")
    return a.astype(np.int64, copy=False)


def check_float_dtype(a: np.ndarray, name: str) -> None:
    """Distances and features must be real floating point values."""
    if a.dtype.kind not in _FLOAT_KINDS:
        raise ValueError(f"{name} must have a floating dtype (float16/32/64), got {a.dtype}")


def check_finite(a: np.ndarray, name: str) -> None:
    """Raise if ``a`` holds NaN or +-inf (min/max propagate NaN, so two cheap reductions suffice)."""
    if a.size == 0:
        return
    lo, hi = np.min(a), np.max(a)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf values")


def features(x: Any, name: str) -> np.ndarray:
    """A finite 2-D float64 feature matrix (N, D) with N >= 1 and D >= 1."""
    a = to_numpy(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_images, dim), got shape {a.shape}")
    check_float_dtype(a, name)
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} is empty, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    check_finite(a, name)
    return a


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """An int >= ``minimum`` (bools and floats are rejected: they hide config typos)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
