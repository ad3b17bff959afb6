"""The one error type of the reporting library: bad input, said in one line."""
from __future__ import annotations


class ReportError(ValueError):
    """A report cannot be made as asked (nothing selected, unknown arm or metric, ...); the message says what was
    looked for and where. ``python -m reid.report`` prints it as ``error: <message>`` and exits 2."""
