"""The report as CSV: one row per (arm, metric), raw values as logged (fractions, not %), per-seed values included.

Columns: arm, settings, metric, n, mean, std, seeds, values, run_ids (the three lists ``;``-separated, in the same
seed order), then against the baseline: baseline, pairs, paired_seeds, diff_mean, t_low, t_high, bootstrap_low,
bootstrap_high (empty on the baseline's own rows, when there is no baseline, or where there is nothing to compute).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from reid.reporting.summary import Report

COLUMNS = (
    "arm", "settings", "metric", "n", "mean", "std", "seeds", "values", "run_ids",
    "baseline", "pairs", "paired_seeds", "diff_mean", "t_low", "t_high", "bootstrap_low", "bootstrap_high",
)


def _num(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else repr(float(value))


def rows(report: Report) -> list[dict[str, str]]:
    compared = {(c.arm, c.metric): c.difference for c in report.comparisons}
    out = []
    for a in report.arms:
        for m in report.metrics:
            s = a.metrics[m]
            row = {
                "arm": a.label, "settings": a.arm.settings_label, "metric": m, "n": str(s.n),
                "mean": _num(s.mean), "std": _num(s.std), "seeds": ";".join(s.seeds),
                "values": ";".join(repr(v) for v in s.values), "run_ids": ";".join(s.run_ids),
            }
            d = compared.get((a.label, m))
            if d is not None:
                row.update({
                    "baseline": report.baseline or "", "pairs": str(d.n), "paired_seeds": ";".join(d.seeds),
                    "diff_mean": _num(d.mean),
                    "t_low": _num(d.t.low if d.t else None), "t_high": _num(d.t.high if d.t else None),
                    "bootstrap_low": _num(d.bootstrap.low if d.bootstrap else None),
                    "bootstrap_high": _num(d.bootstrap.high if d.bootstrap else None),
                })
            out.append({c: row.get(c, "") for c in COLUMNS})
    return out


def write_csv(report: Report, path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(report))
    return path
