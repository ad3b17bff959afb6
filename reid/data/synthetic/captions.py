"""Captions of identities: the text side of the world, for pretraining a tiny CLIP on it (``reid.pretrain``)."""
from __future__ import annotations

import json
from pathlib import Path

from reid.data.synthetic.attributes import Attributes
from reid.data.synthetic.layout import CAPTIONS_JSON


def _a(phrase: str) -> str:
    """``phrase`` with its indefinite article ("an orange shirt", "a red cap")."""
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def describe(attrs: Attributes) -> str:
    """The caption of an identity, e.g. for pretraining a tiny CLIP on the world."""
    size = [w for w in (attrs["height"], attrs["build"]) if w != "average"]
    who = _a(f"{', '.join(size)} person") if size else "a person"
    hair = f"{attrs['hair_style']} {attrs['hair_colour']} hair"
    if attrs["hat"] == "none":
        head = f"{attrs['skin']} skin and {hair}"
    else:
        head = f"{attrs['skin']} skin, {hair} and {_a(attrs['hat_colour'] + ' ' + attrs['hat'])}"
    sleeves = f"{attrs['sleeves']}-sleeved shirt"
    upper, pattern, pcol = attrs["upper_colour"], attrs["pattern"], attrs["pattern_colour"]
    if pattern == "plain":
        shirt = _a(f"{upper} {sleeves}")
    elif pattern == "logo":
        shirt = f"{_a(f'{upper} {sleeves}')} with {_a(f'{pcol} logo')}"
    else:
        shirt = _a(f"{upper} and {pcol} {pattern} {sleeves}")
    lower = f"{attrs['lower_colour']} {attrs['lower_type']}"
    if attrs["lower_type"] == "skirt":
        lower = _a(lower)
    bag = "with no bag" if attrs["bag"] == "none" else f"carrying {_a(attrs['bag_colour'] + ' ' + attrs['bag'])}"
    return f"{who} with {head}, wearing {shirt}, {lower} and {attrs['shoes_colour']} shoes, {bag}"


def load_captions(world_dir: Path) -> dict[int, str]:
    """Original pid → attribute caption, for every train and test identity."""
    raw = json.loads((Path(world_dir) / CAPTIONS_JSON).read_text(encoding="utf-8"))
    return {int(pid): caption for pid, caption in raw.items()}
