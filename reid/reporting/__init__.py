"""Tables of results from MLflow runs: arms (every setting but the seed), mean ± std, paired differences.

The pieces, each taking plain values: :mod:`~reid.reporting.selection` (which runs, from MLflow),
:mod:`~reid.reporting.grouping` (runs -> arms), :mod:`~reid.reporting.statistics`, :mod:`~reid.reporting.summary`
(the report's content), :mod:`~reid.reporting.writers` (Markdown, CSV, LaTeX, plot). ``python -m reid.report`` is
the command line (docs/report.md).
"""
from reid.reporting.errors import ReportError

__all__ = ["ReportError"]
