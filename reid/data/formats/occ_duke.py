"""Occluded-Duke (Miao et al., ICCV 2019): ``dukemtmcreid/Occluded_Duke/`` under root.

CLIP-ReID gives every Occluded-Duke image view id 1 (a constant with no meaning);
our view ids are 0-based with 0 meaning "unknown", so the constant here is 0.
That changes nothing but the index into an SIE table of one view.
"""
from __future__ import annotations

from pathlib import Path

from reid.data.formats.market_style import load_market_style
from reid.data.records import ReIDDataset
from reid.data.registry import register_dataset

OFFICIAL_NAME = "Occluded-Duke"
PARENT_FOLDER = "dukemtmcreid"
TOP_FOLDER = "Occluded_Duke"
NUM_CAMERAS = 8
VIEW_ID = 0


@register_dataset("occ_duke")
def load_occ_duke(root: Path) -> ReIDDataset:
    """Occluded queries against the Duke gallery; Market naming and split folders."""
    return load_market_style(
        name="occ_duke",
        official_name=OFFICIAL_NAME,
        dataset_dir=root / PARENT_FOLDER / TOP_FOLDER,
        layout_top=f"{PARENT_FOLDER}/{TOP_FOLDER}",
        max_cam=NUM_CAMERAS,
        viewid=VIEW_ID,
    )
