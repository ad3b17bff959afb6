"""Dataset loading: parsers per on-disk format behind one ``load_dataset`` call.

Light on purpose (no torch): listing, parsing and summarising datasets must work
in tools and tests that never build a model.
"""
from __future__ import annotations

from reid.data.errors import DatasetError
from reid.data.records import ImageRecord, ReIDDataset
from reid.data.registry import load_dataset, register_dataset, registered_datasets
from reid.data.summary import format_summary, summary_metrics, summary_rows

__all__ = [
    "DatasetError",
    "ImageRecord",
    "ReIDDataset",
    "format_summary",
    "load_dataset",
    "register_dataset",
    "registered_datasets",
    "summary_metrics",
    "summary_rows",
]
