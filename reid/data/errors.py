"""The single error type for bad dataset input.

Parsers raise only this, so callers (the CLI, the trainer) can catch one class
and show its message, which always names the offending path and what was
expected there.
"""
from __future__ import annotations


class DatasetError(Exception):
    """A dataset folder, list file or image is missing, malformed or corrupt."""
