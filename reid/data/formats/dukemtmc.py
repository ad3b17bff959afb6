"""DukeMTMC-reID (Ristani et al. 2016; Zheng et al. 2017): ``dukemtmcreid/DukeMTMC-reID/``.

The extra ``dukemtmcreid`` parent is CLIP-ReID's layout, shared with Occluded-Duke.
Unlike CLIP-ReID we never try to download: the official URL is dead.
"""
from __future__ import annotations

from pathlib import Path

from reid.data.formats.market_style import load_market_style
from reid.data.records import ReIDDataset
from reid.data.registry import register_dataset

OFFICIAL_NAME = "DukeMTMC-reID"
PARENT_FOLDER = "dukemtmcreid"
TOP_FOLDER = "DukeMTMC-reID"
NUM_CAMERAS = 8


@register_dataset("dukemtmc")
def load_dukemtmc(root: Path) -> ReIDDataset:
    """702 training ids over 8 cameras, Market naming and split folders."""
    return load_market_style(
        name="dukemtmc",
        official_name=OFFICIAL_NAME,
        dataset_dir=root / PARENT_FOLDER / TOP_FOLDER,
        layout_top=f"{PARENT_FOLDER}/{TOP_FOLDER}",
        max_cam=NUM_CAMERAS,
    )
