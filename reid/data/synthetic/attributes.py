"""What a synthetic person is: the attribute vocabulary and the sampling of identities in families.

An identity is one value per attribute group (clothing colours and patterns, shoes, hair, skin, bags, hats, build).
Families of identities share body and skin and differ in only one or two groups, so siblings are hard negatives.
The colour names are what the captions say; their RGB values are what ``figure`` draws.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

# Named colours: the names are what the captions say, the RGB what is drawn.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "orange": (235, 120, 25),
    "yellow": (235, 205, 40),
    "green": (40, 140, 60),
    "olive": (110, 115, 45),
    "light blue": (120, 175, 230),
    "blue": (35, 75, 190),
    "denim": (60, 90, 140),
    "navy": (25, 35, 85),
    "purple": (120, 50, 150),
    "pink": (235, 130, 175),
    "white": (235, 235, 232),
    "grey": (128, 128, 128),
    "black": (28, 28, 30),
    "brown": (110, 70, 35),
    "beige": (210, 190, 150),
}
UPPER_COLOURS = (
    "red", "orange", "yellow", "green", "light blue", "blue", "navy",
    "purple", "pink", "white", "grey", "black", "brown", "beige",
)
LOWER_COLOURS = ("black", "navy", "denim", "grey", "beige", "brown", "white", "olive", "red")
PATTERN_COLOURS = ("white", "black", "red", "yellow", "blue", "grey")
SHOE_COLOURS = ("white", "black", "brown", "red", "blue", "grey")
BAG_COLOURS = ("black", "brown", "grey", "red", "blue", "green", "beige")
HAT_COLOURS = ("black", "red", "blue", "white", "grey", "green", "yellow")
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (22, 20, 20),
    "dark brown": (60, 40, 25),
    "brown": (115, 78, 42),
    "blonde": (222, 192, 112),
    "grey": (165, 165, 165),
    "ginger": (185, 85, 30),
}
SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "pale": (245, 215, 195),
    "light": (228, 185, 150),
    "medium": (195, 145, 105),
    "tan": (160, 110, 70),
    "dark": (100, 65, 40),
}
BUILD_WIDTH = {"slim": 0.85, "average": 1.0, "broad": 1.18}
HEIGHT_FILL = {"short": 0.86, "average": 0.91, "tall": 0.96}

# Attribute groups: an identity is one value per group; family members differ
# from their family's base identity in whole groups.
ATTRIBUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "body": ("build", "height"),
    "skin": ("skin",),
    "hair": ("hair_colour", "hair_style"),
    "hat": ("hat", "hat_colour"),
    "upper": ("upper_colour",),
    "sleeves": ("sleeves",),
    "pattern": ("pattern", "pattern_colour"),
    "lower": ("lower_type", "lower_colour"),
    "shoes": ("shoes_colour",),
    "bag": ("bag", "bag_colour"),
}
# Groups a family member may change; body and skin stay shared within a family.
MUTABLE_GROUPS = ("hair", "hat", "upper", "sleeves", "pattern", "lower", "shoes", "bag")

Attributes = dict[str, Any]
RGB = tuple[int, int, int]


# --------------------------------------------------------------------------- sampling


def _pick(rng: np.random.Generator, options: tuple[str, ...], p: tuple[float, ...] | None = None,
          exclude: str | None = None) -> str:
    """One option by name (optionally never ``exclude``), with Generator state only."""
    opts = [o for o in options if o != exclude]
    probs = None
    if p is not None:
        kept = np.array([pi for o, pi in zip(options, p) if o != exclude], dtype=float)
        probs = kept / kept.sum()
    return opts[int(rng.choice(len(opts), p=probs))]


def _sample_body(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    return {"build": _pick(rng, ("slim", "average", "broad"), (0.3, 0.45, 0.25)),
            "height": _pick(rng, ("short", "average", "tall"), (0.3, 0.4, 0.3))}


def _sample_skin(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    return {"skin": _pick(rng, tuple(SKIN_TONES))}


def _sample_hair(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    return {"hair_colour": _pick(rng, tuple(HAIR_COLOURS)),
            "hair_style": _pick(rng, ("short", "long"), (0.6, 0.4))}


def _sample_hat(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    hat = _pick(rng, ("none", "cap", "beanie"), (0.65, 0.2, 0.15))
    return {"hat": hat, "hat_colour": None if hat == "none" else _pick(rng, HAT_COLOURS)}


def _sample_upper(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    # Never the pattern colour, or the pattern would vanish.
    return {"upper_colour": _pick(rng, UPPER_COLOURS, exclude=ctx.get("pattern_colour"))}


def _sample_sleeves(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    return {"sleeves": _pick(rng, ("short", "long"))}


def _sample_pattern(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    pattern = _pick(rng, ("plain", "striped", "checked", "logo"), (0.45, 0.2, 0.15, 0.2))
    colour = None
    if pattern != "plain":
        colour = _pick(rng, PATTERN_COLOURS, exclude=ctx.get("upper_colour"))
    return {"pattern": pattern, "pattern_colour": colour}


def _sample_lower(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    return {"lower_type": _pick(rng, ("trousers", "shorts", "skirt"), (0.65, 0.2, 0.15)),
            "lower_colour": _pick(rng, LOWER_COLOURS)}


def _sample_shoes(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    return {"shoes_colour": _pick(rng, SHOE_COLOURS)}


def _sample_bag(rng: np.random.Generator, ctx: Attributes) -> Attributes:
    bag = _pick(rng, ("none", "backpack", "shoulder bag", "handbag"), (0.4, 0.25, 0.2, 0.15))
    return {"bag": bag, "bag_colour": None if bag == "none" else _pick(rng, BAG_COLOURS)}


# Sampling order matters: pattern sees the upper colour it must contrast with.
_GROUP_SAMPLERS: dict[str, Callable[[np.random.Generator, Attributes], Attributes]] = {
    "body": _sample_body,
    "skin": _sample_skin,
    "hair": _sample_hair,
    "hat": _sample_hat,
    "upper": _sample_upper,
    "sleeves": _sample_sleeves,
    "pattern": _sample_pattern,
    "lower": _sample_lower,
    "shoes": _sample_shoes,
    "bag": _sample_bag,
}


def sample_attributes(rng: np.random.Generator) -> Attributes:
    """A random identity: one value for every attribute in :data:`ATTRIBUTE_GROUPS`."""
    attrs: Attributes = {}
    for sampler in _GROUP_SAMPLERS.values():
        attrs.update(sampler(rng, attrs))
    return attrs


def _mutate(attrs: Attributes, group: str, rng: np.random.Generator) -> Attributes:
    """Copy of ``attrs`` with ``group`` resampled to a different value."""
    keys = ATTRIBUTE_GROUPS[group]
    for _ in range(100):
        new = _GROUP_SAMPLERS[group](rng, attrs)
        if any(new[k] != attrs[k] for k in keys):
            return {**attrs, **new}
    raise RuntimeError(f"could not change attribute group {group!r}")  # pragma: no cover


def signature(attrs: Attributes) -> str:
    """A canonical string of an identity, to keep identities (and distractors) unique."""
    return json.dumps(attrs, sort_keys=True)


def sample_families(rng: np.random.Generator, num_ids: int, family_size: int, family_differences: int,
                    taken: set[str]) -> list[tuple[int, int, Attributes]]:
    """``(family, rank, attributes)`` for ``num_ids`` unique identities, in families.

    Rank 0 is the family's base; every other member differs from the base in
    exactly ``family_differences`` attribute groups, which makes siblings
    hard negatives for each other. ``taken`` (signatures) is updated in place.
    """
    out: list[tuple[int, int, Attributes]] = []
    family = 0
    while len(out) < num_ids:
        base = sample_attributes(rng)
        while signature(base) in taken:
            base = sample_attributes(rng)
        taken.add(signature(base))
        out.append((family, 0, base))
        for rank in range(1, min(family_size, num_ids - len(out) + 1)):
            for _ in range(1000):
                groups = rng.choice(len(MUTABLE_GROUPS), size=family_differences, replace=False)
                member = base
                for g in sorted(int(i) for i in groups):
                    member = _mutate(member, MUTABLE_GROUPS[g], rng)
                if signature(member) not in taken:
                    break
            else:  # pragma: no cover - needs a pathological spec
                raise RuntimeError("could not find a unique family member; lower family_size")
            taken.add(signature(member))
            out.append((family, rank, member))
        family += 1
    return out
