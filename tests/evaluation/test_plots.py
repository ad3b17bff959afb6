"""CMC plot and ranked-list grid: file produced, layout and frame colours as hand-worked."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reid.evaluation.plots import (
    BACKGROUND,
    CAPTION_HEIGHT,
    FALSE_COLOR,
    LEGEND_HEIGHT,
    QUERY_COLOR,
    TRUE_COLOR,
    gallery_caption,
    plot_cmc,
    query_caption,
    ranked_list_figure,
)


def _solid(path, color):
    Image.new("RGB", (30, 60), color).save(path)
    return str(path)


def test_plot_cmc_writes_png(tmp_path):
    out = plot_cmc(np.array([0.5, 0.7, 0.9, 1.0]), tmp_path / "sub" / "cmc.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (600, 420)


def test_plot_cmc_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="NaN or inf"):
        plot_cmc(np.array([0.5, np.nan]), tmp_path / "cmc.png")
    with pytest.raises(ValueError, match="1-D"):
        plot_cmc(np.zeros((2, 2)), tmp_path / "cmc.png")


def test_ranked_list_layout_and_colours(tmp_path):
    # Query 0: pid 1 cam 0. Gallery: g0 pid1 cam0 (removed), g1 pid2, g2 pid1 cam1 (true), g3 pid3.
    # Distances put g0 first, then g2, g3, g1 -> shown: g2 (green), g3 (red), g1 (red).
    q_paths = [_solid(tmp_path / "q0.png", (0, 0, 255))]
    colors = [(10, 10, 10), (20, 20, 20), (30, 30, 30), (40, 40, 40)]
    g_paths = [_solid(tmp_path / f"g{i}.png", c) for i, c in enumerate(colors)]
    dist = np.array([[0.0, 0.9, 0.1, 0.5]])
    out = ranked_list_figure(
        q_paths, g_paths, dist, [1], [1, 2, 1, 3], [0], [0, 0, 1, 0], tmp_path / "ranked.png",
        topk=3, cell_size=(40, 80), border=4,
    )
    with Image.open(out) as img:
        img = img.convert("RGB")
        gap, top = 40 // 4, LEGEND_HEIGHT
        assert img.size == (40 * 4 + gap, LEGEND_HEIGHT + 80 + CAPTION_HEIGHT)
        assert img.getpixel((1, top + 1)) == QUERY_COLOR
        assert img.getpixel((20, top + 40)) == (0, 0, 255)  # query image inside its frame
        expected = [(TRUE_COLOR, colors[2]), (FALSE_COLOR, colors[3]), (FALSE_COLOR, colors[1])]
        for col, (frame, inner) in enumerate(expected):
            x0 = 40 + gap + col * 40
            assert img.getpixel((x0 + 1, top + 1)) == frame
            assert img.getpixel((x0 + 20, top + 40)) == inner
            caption = img.crop((x0, top + 80, x0 + 40, top + 80 + CAPTION_HEIGHT))
            assert caption.getcolors(4096) != [(40 * CAPTION_HEIGHT, BACKGROUND)]  # text drawn under the cell
        legend = img.crop((0, 0, img.width, LEGEND_HEIGHT))
        legend_colours = {c for _, c in legend.getcolors(100000)}
        assert {QUERY_COLOR, TRUE_COLOR, FALSE_COLOR} <= legend_colours  # the legend's three swatches


def test_captions_name_rank_identity_camera_and_distance():
    assert query_caption(12, 2) == ("query", "id 12 c3")
    assert gallery_caption(1, 7, 0, 0.41249) == ("#1 id 7", "c1 d=0.412")


def test_ranked_list_rejects_mismatched_paths(tmp_path):
    with pytest.raises(ValueError, match="paths for a distmat"):
        ranked_list_figure(["a"], ["b"], np.zeros((1, 2)), [0], [0, 1], [0], [1, 1], tmp_path / "x.png")
