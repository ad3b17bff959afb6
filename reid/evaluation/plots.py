"""Artifacts for the tracker: a CMC curve and a ranked-list picture.

Both write PNG files and use no global GUI state (matplotlib's Agg canvas on a
bare ``Figure``, PIL for the image grid), so they are safe in workers and tests.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reid.evaluation import _inputs
from reid.evaluation.distance_rows import DistanceRows

TRUE_COLOR = (0, 170, 0)
FALSE_COLOR = (220, 0, 0)
QUERY_COLOR = (40, 40, 40)
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)
LEGEND_HEIGHT = 16  # band above the grid: what the frame colours mean
CAPTION_HEIGHT = 24  # band under each row: two short lines per cell


def plot_cmc(cmc: Any, path: str | Path, title: str | None = None) -> Path:
    """Save the CMC curve (rank on x, matching rate in % on y) as a PNG; returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(_inputs.to_numpy(cmc, "cmc"), dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"cmc must be a non-empty 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("cmc contains NaN or inf values")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(5, 3.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ranks = np.arange(1, values.size + 1)
    ax.plot(ranks, 100.0 * values, marker="o" if values.size <= 20 else None, markersize=3)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(1, max(2, values.size))
    ax.set_ylim(min(100.0 * values.min(), 100.0) - 2, 101)
    ax.grid(True, alpha=0.3)
    ax.set_title(title or f"CMC (rank-1 {100 * values[0]:.1f}%)")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _ranked_gallery(
    row: np.ndarray, q_pid: int, q_cam: int, g_pids: np.ndarray, g_camids: np.ndarray, topk: int
) -> np.ndarray:
    """Top-k gallery indices of one query: stable (distance, index) order, same pid+camera removed."""
    order = np.argsort(row, kind="stable")
    keep = ~((g_pids[order] == q_pid) & (g_camids[order] == q_cam))
    return order[keep][:topk]


def _cell(path: str | Path, size: tuple[int, int], color: tuple[int, int, int], border: int):
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        inner = ImageOps.fit(img.convert("RGB"), (size[0] - 2 * border, size[1] - 2 * border))
    framed = Image.new("RGB", size, color)
    framed.paste(inner, (border, border))
    return framed


def query_caption(pid: int, cam: int) -> tuple[str, str]:
    """The two caption lines under a query image (cameras print 1-based, as in the file names)."""
    return "query", f"id {pid} c{cam + 1}"


def gallery_caption(rank: int, pid: int, cam: int, distance: float) -> tuple[str, str]:
    """The two caption lines under a ranked gallery image: rank and identity, then camera and distance."""
    return f"#{rank} id {pid}", f"c{cam + 1} d={distance:.3f}"


def _draw_caption(draw: Any, font: Any, lines: tuple[str, str], x: int, y: int) -> None:
    for i, line in enumerate(lines):
        draw.text((x + 2, y + 1 + i * (CAPTION_HEIGHT // 2)), line, fill=TEXT_COLOR, font=font)


def _draw_legend(draw: Any, font: Any, width: int) -> None:
    x = 2
    for color, text in ((QUERY_COLOR, "query"), (TRUE_COLOR, "true match"), (FALSE_COLOR, "false match")):
        draw.rectangle((x, 3, x + 9, 12), fill=color)
        draw.text((x + 13, 2), text, fill=TEXT_COLOR, font=font)
        x += 13 + int(draw.textlength(text, font=font)) + 10
    note = "same id + camera left out; d = distance"
    if x + draw.textlength(note, font=font) < width:
        draw.text((x, 2), note, fill=TEXT_COLOR, font=font)


def ranked_list_figure(
    query_paths: Sequence[str | Path],
    gallery_paths: Sequence[str | Path],
    distmat: Any,  # (Q, G) array or DistanceRows
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    out_path: str | Path,
    topk: int = 10,
    num_queries: int = 8,
    query_indices: Sequence[int] | None = None,
    cell_size: tuple[int, int] = (64, 128),
    border: int = 4,
) -> Path:
    """Grid PNG: one row per query, the query image then its top-k gallery images.

    Same-pid-same-camera gallery items are left out as in the evaluation protocol;
    true matches are framed green, false ones red, as a legend above the grid says.
    Under each image: its rank and identity, then its camera and distance to the query.
    Queries are ``query_indices`` or ``num_queries`` evenly spaced ones.
    """
    from PIL import Image, ImageDraw, ImageFont

    d = distmat if isinstance(distmat, DistanceRows) else DistanceRows.from_matrix(distmat)
    num_q, num_g = d.shape
    if len(query_paths) != num_q or len(gallery_paths) != num_g:
        raise ValueError(
            f"{len(query_paths)} query / {len(gallery_paths)} gallery paths for a distmat of shape {d.shape}"
        )
    q_pids = _inputs.labels(q_pids, "q_pids", num_q)
    g_pids = _inputs.labels(g_pids, "g_pids", num_g)
    q_camids = _inputs.labels(q_camids, "q_camids", num_q)
    g_camids = _inputs.labels(g_camids, "g_camids", num_g)
    topk = _inputs.positive_int(topk, "topk")
    if query_indices is None:
        count = min(_inputs.positive_int(num_queries, "num_queries"), num_q)
        query_indices = np.unique(np.linspace(0, num_q - 1, count).round().astype(np.int64))
    chosen = np.asarray(query_indices, dtype=np.int64)
    if chosen.ndim != 1 or chosen.size == 0 or chosen.min() < 0 or chosen.max() >= num_q:
        raise ValueError(f"query_indices must be non-empty indices into {num_q} queries")

    width, height = cell_size
    gap = width // 4  # blank column between the query and its ranked list
    row_height = height + CAPTION_HEIGHT
    total_width = width * (topk + 1) + gap
    canvas = Image.new("RGB", (total_width, LEGEND_HEIGHT + row_height * chosen.size), BACKGROUND)
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    _draw_legend(draw, font, total_width)
    chosen_rows = d.take(chosen)  # only these rows of the (Q, G) distances are ever computed
    for row_idx, qi in enumerate(chosen):
        row = chosen_rows[row_idx]
        _inputs.check_finite(row, "distmat")
        top = _ranked_gallery(row, q_pids[qi], q_camids[qi], g_pids, g_camids, topk)
        y = LEGEND_HEIGHT + row_idx * row_height
        canvas.paste(_cell(query_paths[qi], cell_size, QUERY_COLOR, border), (0, y))
        _draw_caption(draw, font, query_caption(int(q_pids[qi]), int(q_camids[qi])), 0, y + height)
        for col, gi in enumerate(top):
            color = TRUE_COLOR if g_pids[gi] == q_pids[qi] else FALSE_COLOR
            x = width + gap + col * width
            canvas.paste(_cell(gallery_paths[gi], cell_size, color, border), (x, y))
            caption = gallery_caption(col + 1, int(g_pids[gi]), int(g_camids[gi]), float(row[gi]))
            _draw_caption(draw, font, caption, x, y + height)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_path, format="PNG")
    return out_path
