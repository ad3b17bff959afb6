"""The embedded synthetic ReID world, read through the real Market-1501 parser.

``reid.data.synthetic.ensure_world`` renders (or reuses) a world and returns a
folder holding ``Market-1501-v15.09.15/``; parsing it here exercises the same
code path as the real dataset. It is imported lazily so that listing or loading
other datasets never pulls in the generator.
"""
from __future__ import annotations

import re
from pathlib import Path

from reid.data.formats.market1501 import TOP_FOLDER
from reid.data.formats.market_style import load_market_style
from reid.data.records import ReIDDataset
from reid.data.registry import register_dataset

OFFICIAL_NAME = "synthetic ReID world (Market-1501 layout)"
# Market naming, but the camera number may have several digits (c12s1...), so a
# world with ten or more cameras is never misread as camera 1.
SYNTHETIC_PATTERN = re.compile(r"([-\d]+)_c(\d+)")


@register_dataset("synthetic")
def load_synthetic(root: Path, **world_options: object) -> ReIDDataset:
    """Ensure the world exists under ``root`` (options go to the generator), then parse it."""
    from reid.data.synthetic import ensure_world

    world_dir = Path(ensure_world(root, **world_options))
    dataset = load_market_style(
        name="synthetic",
        official_name=OFFICIAL_NAME,
        dataset_dir=world_dir / TOP_FOLDER,
        layout_top=TOP_FOLDER,
        pattern=SYNTHETIC_PATTERN,
    )
    dataset.meta["world_dir"] = str(world_dir)
    return dataset
