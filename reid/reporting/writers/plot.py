"""The report as a bar plot: one panel per metric, one horizontal bar per arm (mean, sample-std error bar), each
seed a dot. Horizontal, so that long arm labels (``method.name=clipreid ssl.name=simclr ...``) stay readable."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

from reid.reporting.summary import Report
from reid.reporting.writers import formatting as fmt

LABEL_WIDTH = 34  # characters per line of an arm's label (wrapped between words)
DPI = 120


def save_plot(report: Report, path: str | Path) -> Path:
    # A bare Figure renders with Agg and leaves pyplot's global state (and the caller's backend) alone.
    import matplotlib
    from matplotlib.figure import Figure

    path = Path(path)
    n_arms, n_metrics = len(report.arms), len(report.metrics)
    labels = [textwrap.fill(a.label, LABEL_WIDTH, break_long_words=False) for a in report.arms]
    label_lines = max(label.count("\n") + 1 for label in labels)
    fig = Figure(figsize=(2.6 + 3.2 * n_metrics, 1.3 + n_arms * max(0.45, 0.2 * label_lines)))
    axes = fig.subplots(1, n_metrics, squeeze=False, sharey=True)[0]
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes, report.metrics):
        scale = 100.0 if fmt.is_fraction(metric) else 1.0
        for i, a in enumerate(report.arms):
            s = a.metrics[metric]
            if s.n == 0:
                continue
            err = None if math.isnan(s.std) else scale * s.std
            ax.barh(i, scale * s.mean, xerr=err, capsize=3, color=colours[i % len(colours)], alpha=0.75,
                    hatch="//" if a.label == report.baseline else None, edgecolor="black", linewidth=0.6)
            offsets = [0.0] if s.n == 1 else [-0.25 + 0.5 * k / (s.n - 1) for k in range(s.n)]
            ax.scatter([scale * v for v in s.values], [i + o for o in offsets], color="black", s=10, zorder=3)
        ax.set_title(fmt.metric_title(metric) + (" (%)" if scale == 100.0 else ""), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0].set_yticks(range(n_arms), labels, fontsize=8)
    axes[0].invert_yaxis()  # the table's first arm on top
    fig.suptitle("mean ± sample std over seeds (dots: seeds)" + ("; hatched: baseline" if report.baseline else ""),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path
