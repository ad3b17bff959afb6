"""Market-1501 (Zheng et al., ICCV 2015): ``Market-1501-v15.09.15/`` under root."""
from __future__ import annotations

from pathlib import Path

from reid.data.formats.market_style import load_market_style
from reid.data.records import ReIDDataset
from reid.data.registry import register_dataset

OFFICIAL_NAME = "Market-1501"
TOP_FOLDER = "Market-1501-v15.09.15"
NUM_CAMERAS = 6


@register_dataset("market1501")
def load_market1501(root: Path) -> ReIDDataset:
    """751 training ids over 6 cameras; junk (pid -1) dropped, distractors (pid 0) kept."""
    return load_market_style(
        name="market1501",
        official_name=OFFICIAL_NAME,
        dataset_dir=root / TOP_FOLDER,
        layout_top=TOP_FOLDER,
        max_cam=NUM_CAMERAS,
    )
