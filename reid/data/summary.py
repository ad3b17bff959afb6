"""Per-split statistics of a loaded dataset, as a table for logs and as flat metrics.

The table mirrors torchreid's "Dataset statistics" block so numbers can be compared
by eye against published loader output (docs/method.md §6); the flat dict feeds MLflow.
"""
from __future__ import annotations

from collections.abc import Sequence

from reid.data.records import ImageRecord, ReIDDataset

SUBSETS = ("train", "query", "gallery")
_HEADER = ("subset", "# ids", "# images", "# cameras")


def _stats(records: Sequence[ImageRecord]) -> tuple[int, int, int]:
    return len({r.pid for r in records}), len(records), len({r.camid for r in records})


def summary_rows(ds: ReIDDataset) -> list[tuple[str, int, int, int]]:
    """``(subset, ids, images, cameras)`` for train, query and gallery (and the validation split), in that order."""
    subsets = SUBSETS + (("val_query", "val_gallery") if ds.has_validation else ())
    return [(subset, *_stats(getattr(ds, subset))) for subset in subsets]


def format_summary(ds: ReIDDataset) -> str:
    """An aligned text table like torchreid's dataset statistics."""
    rows = [tuple(str(v) for v in row) for row in summary_rows(ds)]
    widths = [max(len(r[i]) for r in (_HEADER, *rows)) for i in range(len(_HEADER))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:]))
        return "  " + " | ".join((first, *rest))

    rule = "  " + "-" * (sum(widths) + 3 * (len(widths) - 1))
    return "\n".join(
        [f"Dataset statistics: {ds.name}", rule, line(_HEADER), rule, *map(line, rows), rule]
    )


def summary_metrics(ds: ReIDDataset) -> dict[str, int]:
    """Flat ``data.<subset>.{ids,images,cameras}`` counts, ready for ``mlflow.log_metrics``."""
    metrics: dict[str, int] = {}
    for subset, ids, images, cams in summary_rows(ds):
        metrics[f"data.{subset}.ids"] = ids
        metrics[f"data.{subset}.images"] = images
        metrics[f"data.{subset}.cameras"] = cams
    return metrics
