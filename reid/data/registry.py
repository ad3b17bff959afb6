"""Name → loader registry and the one entry point, :func:`load_dataset`.

A dict filled by a decorator (rather than an if/elif chain) so that new formats,
such as a generic folder format, register themselves without touching this
file. Options that apply to every format (image verification) are handled here
once, after the format's own loader has returned.
"""
from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Callable
from pathlib import Path

from reid.data.errors import DatasetError
from reid.data.formats import BUILTIN_FORMAT_MODULES
from reid.data.image_check import verify_dataset_images
from reid.data.records import ReIDDataset
from reid.data.summary import format_summary
from reid.data.validation import hold_out

logger = logging.getLogger(__name__)

# A loader takes the absolute dataset root and its format's own options.
DatasetLoader = Callable[..., ReIDDataset]
# Options every format takes (load_dataset applies them after the format's own loader).
COMMON_OPTIONS = ("verify_images", "skip_corrupt", "val_fraction", "val_seed")

_REGISTRY: dict[str, DatasetLoader] = {}



def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Decorator: make ``loader(root: Path, **options)`` loadable as ``name``."""

    def decorate(loader: DatasetLoader) -> DatasetLoader:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not loader:
            raise ValueError(
                f"dataset name {name!r} is already registered to "
                f"{existing.__module__}.{existing.__qualname__}"
            )
        _REGISTRY[name] = loader
        return loader

    return decorate


def registered_datasets() -> tuple[str, ...]:
    """Sorted names :func:`load_dataset` accepts (built-in formats are imported here)."""
    for module in BUILTIN_FORMAT_MODULES:
        importlib.import_module(module)
    return tuple(sorted(_REGISTRY))


def format_constant(name: str, constant: str, default: object = None) -> object:
    """A fact a registered format states as a module constant (``NUM_CAMERAS``, ``NUM_VIEWS``), read without any data.

    For what a checkpoint cannot say about its training set (how many cameras and views an SIE table indexes).
    """
    registered_datasets()
    loader = _REGISTRY.get(name)
    if loader is None:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(registered_datasets())}")
    return getattr(importlib.import_module(loader.__module__), constant, default)


def check_options(name: str, options: dict) -> None:
    """A DatasetError listing the options the format takes when ``options`` holds one it does not (no data read).

    ``verify_images`` / ``skip_corrupt`` apply to every format and are not the format's own.
    """
    loader = _REGISTRY.get(name)
    if loader is None:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(registered_datasets())}")
    own = {k: v for k, v in options.items() if k not in COMMON_OPTIONS}
    _check_options(name, loader, Path("."), own)


def _check_options(name: str, loader: DatasetLoader, root: Path, options: dict) -> None:
    """Turn a config typo into a DatasetError listing the options the format takes."""
    signature = inspect.signature(loader)
    try:
        signature.bind(root, **options)
    except TypeError as exc:
        accepted = list(signature.parameters)[1:]
        raise DatasetError(
            f"dataset {name!r}: bad options {sorted(options)} ({exc}); "
            f"this format accepts {accepted} plus {', '.join(COMMON_OPTIONS)}"
        ) from None


def load_dataset(
    name: str,
    root: str | os.PathLike[str],
    *,
    verify_images: bool = False,
    skip_corrupt: bool = False,
    val_fraction: float = 0.0,
    val_seed: int = 0,
    **options: object,
) -> ReIDDataset:
    """Load dataset ``name`` from ``root``, the folder that holds its top folder.

    ``verify_images`` opens and decodes every image and raises a DatasetError
    naming the corrupt files; ``skip_corrupt`` (which implies verification) drops
    them instead, warns once and records the count in ``meta["skipped_corrupt"]``
    (always present, 0 when nothing was skipped or nothing was checked). ``val_fraction`` > 0 holds that fraction of
    the training identities out as a validation query / gallery (seeded by ``val_seed``; reid.data.validation).
    """
    known = registered_datasets()
    loader = _REGISTRY.get(name)
    if loader is None:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(known)}")
    root_path = Path(root).expanduser().absolute()
    _check_options(name, loader, root_path, options)
    if "skip_corrupt" in inspect.signature(loader).parameters:
        # The format drops corrupt images itself, before it assigns its labels.
        options, skip_corrupt = {**options, "skip_corrupt": skip_corrupt}, False
    dataset = loader(root_path, **options)
    dataset.meta.setdefault("root", str(root_path))
    skipped = 0
    if verify_images or skip_corrupt:
        dataset, skipped = verify_dataset_images(dataset, skip_corrupt=skip_corrupt)
    dataset.meta["skipped_corrupt"] = dataset.meta.get("skipped_corrupt", 0) + skipped
    if val_fraction:
        dataset = hold_out(dataset, float(val_fraction), int(val_seed))
    logger.info("=> %s loaded\n%s", name, format_summary(dataset))
    return dataset
