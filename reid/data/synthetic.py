"""A deterministic synthetic person-ReID world written in Market-1501 layout.

Real datasets cannot be downloaded everywhere, so the embedded default renders
a small but honest ReID problem: little people with fixed attributes (clothing
colours and patterns, shoes, hair, skin, bags, hats, build), grouped in
*families* whose members differ in only one or two attributes, seen by cameras
that each have their own viewpoint mix, light, colour cast, blur, noise, scale
and background. The world is written exactly as Market-1501 is
(``Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}`` with
names like ``0002_c1s1_000451_03.jpg``, distractors pid 0 and junk pid -1), so
the real Market parser reads it and training takes the same code path as on a
real dataset. Per-identity captions (``captions.json``) let a small CLIP be
pretrained on the same world.

Everything is drawn from ``numpy.random.Generator`` streams keyed by the seed,
so the same :class:`WorldSpec` gives byte-identical files.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

try:  # POSIX only; elsewhere concurrent first runs are simply not serialised.
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]

# Bump when the rendering or the layout changes, so stale worlds are regenerated.
FORMAT_VERSION = 1

WORLD_DIRNAME = "synthetic"
MARKET_DIRNAME = "Market-1501-v15.09.15"
TRAIN_DIRNAME = "bounding_box_train"
QUERY_DIRNAME = "query"
GALLERY_DIRNAME = "bounding_box_test"
SPLIT_DIRNAMES = (TRAIN_DIRNAME, QUERY_DIRNAME, GALLERY_DIRNAME)
WORLD_JSON = "world.json"
CAPTIONS_JSON = "captions.json"
ATTRIBUTES_JSON = "attributes.json"
_PARTIAL_DIRNAME = ".synthetic.partial"
_LOCK_NAME = ".synthetic.lock"
_OWN_ENTRIES = frozenset({MARKET_DIRNAME, WORLD_JSON, CAPTIONS_JSON, ATTRIBUTES_JSON})

JUNK_PID = -1
DISTRACTOR_PID = 0
MAX_PID = 9999  # Market names carry the pid in four digits.
MAX_CAMERAS = 9  # ... and the camera in one digit (regex ``([-\d]+)_c(\d)``).
NUM_SEQUENCES = 6  # Market-1501 uses sequences s1..s6 per camera.
MAX_BOX = 8  # detection index within a frame, written as two digits

VIEWS = ("front", "back", "left", "right")

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
_EYE_COLOUR = (40, 30, 30)

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


@dataclass(frozen=True)
class WorldSpec:
    """Everything that determines a synthetic world; equal specs give identical files.

    Defaults are sized for the demo: ~2,000 images of 128 identities, seconds to render.
    """

    seed: int = 0
    num_train_ids: int = 64
    num_test_ids: int = 64  # query + gallery identities, disjoint from train
    num_cameras: int = 6
    min_cameras_per_id: int = 2
    max_cameras_per_id: int = 6
    min_images_per_camera: int = 2  # >= 2: a test identity keeps a gallery image per camera
    max_images_per_camera: int = 5
    num_distractors: int = 128  # pid 0 gallery images: unknown people or background crops
    num_junk: int = 64  # pid -1 gallery images: badly cropped fragments
    family_size: int = 4  # identities per family (share body, skin and most clothing)
    family_differences: int = 1  # attribute groups in which a member differs from the base
    height: int = 128
    width: int = 64
    jpeg_quality: int = 90
    supersample: int = 2  # draw at this multiple of the size, then downsample (anti-aliasing)
    light_min: float = 0.7  # camera light level range (multiplier)
    light_max: float = 1.25
    light_jitter: float = 0.08  # per-image relative light change
    colour_cast: float = 0.15  # max per-channel gain deviation of a camera
    blur_max: float = 1.0  # max camera Gaussian blur radius, output pixels
    noise_min: float = 2.0  # camera sensor noise std range, 0..255 scale
    noise_max: float = 8.0
    scale_min: float = 0.8  # camera person-scale range is [scale_min, 1]
    position_jitter: float = 0.08  # max horizontal offset of the person, fraction of width
    view_concentration: float = 0.8  # Dirichlet concentration of each camera's view mix
    distractor_person_prob: float = 0.5  # distractor is a person (else background only)
    clutter_prob: float = 0.15  # a part of another person appears at the crop's edge
    occlusion_prob: float = 0.08  # an object hides part of the person

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"WorldSpec.{f.name} must be a number, got {value!r}")
            if f.type == "int":
                if float(value) != int(value):
                    raise TypeError(f"WorldSpec.{f.name} must be an integer, got {value!r}")
                object.__setattr__(self, f.name, int(value))
            else:
                object.__setattr__(self, f.name, float(value))
        self._validate()

    def _validate(self) -> None:
        """Reject specs that could not give a valid Market-style world."""
        checks = [
            (self.seed >= 0, "seed must be >= 0"),
            (self.num_train_ids >= 1 and self.num_test_ids >= 1, "need >= 1 train and test id"),
            (self.num_train_ids + self.num_test_ids <= MAX_PID, f"at most {MAX_PID} identities"),
            (2 <= self.num_cameras <= MAX_CAMERAS, f"num_cameras must be in 2..{MAX_CAMERAS}"),
            (
                2 <= self.min_cameras_per_id <= self.max_cameras_per_id <= self.num_cameras,
                "need 2 <= min_cameras_per_id <= max_cameras_per_id <= num_cameras",
            ),
            (
                2 <= self.min_images_per_camera <= self.max_images_per_camera,
                "need 2 <= min_images_per_camera <= max_images_per_camera",
            ),
            (self.num_distractors >= 0 and self.num_junk >= 0, "counts must be >= 0"),
            (self.family_size >= 1, "family_size must be >= 1"),
            (
                0 <= self.family_differences <= len(MUTABLE_GROUPS),
                f"family_differences must be in 0..{len(MUTABLE_GROUPS)}",
            ),
            (
                self.family_size == 1 or self.family_differences >= 1,
                "family members need family_differences >= 1 to be distinct identities",
            ),
            (self.height >= 16 and self.width >= 8, "image is too small"),
            (1 <= self.jpeg_quality <= 100, "jpeg_quality must be in 1..100"),
            (1 <= self.supersample <= 4, "supersample must be in 1..4"),
            (0 < self.light_min <= self.light_max, "need 0 < light_min <= light_max"),
            (0 <= self.light_jitter < 1 and 0 <= self.colour_cast < 1, "jitter/cast must be in [0, 1)"),
            (self.blur_max >= 0, "blur_max must be >= 0"),
            (0 <= self.noise_min <= self.noise_max, "need 0 <= noise_min <= noise_max"),
            (0 < self.scale_min <= 1, "scale_min must be in (0, 1]"),
            (0 <= self.position_jitter <= 0.5, "position_jitter must be in [0, 0.5]"),
            (self.view_concentration > 0, "view_concentration must be > 0"),
        ]
        for prob in ("distractor_person_prob", "clutter_prob", "occlusion_prob"):
            checks.append((0 <= getattr(self, prob) <= 1, f"{prob} must be in [0, 1]"))
        for ok, message in checks:
            if not ok:
                raise ValueError(f"invalid WorldSpec: {message} ({self})")

    def to_dict(self) -> dict[str, int | float]:
        """Plain dict, as stored in world.json."""
        return asdict(self)


# --------------------------------------------------------------------------- attributes


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


def _signature(attrs: Attributes) -> str:
    return json.dumps(attrs, sort_keys=True)


def _sample_families(rng: np.random.Generator, num_ids: int, spec: WorldSpec,
                     taken: set[str]) -> list[tuple[int, int, Attributes]]:
    """``(family, rank, attributes)`` for ``num_ids`` unique identities, in families.

    Rank 0 is the family's base; every other member differs from the base in
    exactly ``spec.family_differences`` attribute groups, which makes siblings
    hard negatives for each other. ``taken`` (signatures) is updated in place.
    """
    out: list[tuple[int, int, Attributes]] = []
    family = 0
    while len(out) < num_ids:
        base = sample_attributes(rng)
        while _signature(base) in taken:
            base = sample_attributes(rng)
        taken.add(_signature(base))
        out.append((family, 0, base))
        for rank in range(1, min(spec.family_size, num_ids - len(out) + 1)):
            for _ in range(1000):
                groups = rng.choice(len(MUTABLE_GROUPS), size=spec.family_differences, replace=False)
                member = base
                for g in sorted(int(i) for i in groups):
                    member = _mutate(member, MUTABLE_GROUPS[g], rng)
                if _signature(member) not in taken:
                    break
            else:  # pragma: no cover - needs a pathological spec
                raise RuntimeError("could not find a unique family member; lower family_size")
            taken.add(_signature(member))
            out.append((family, rank, member))
        family += 1
    return out


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


# --------------------------------------------------------------------------- cameras


def _muted_colour(rng: np.random.Generator, lo: int = 50, hi: int = 200) -> np.ndarray:
    """A background-ish colour: mid grey plus a moderate random tint."""
    grey = rng.uniform(lo, hi)
    return np.clip(grey + rng.uniform(-35, 35, 3), 0, 255)


def _make_camera(rng: np.random.Generator, spec: WorldSpec) -> dict[str, Any]:
    """One camera's fixed look: view mix, light, cast, blur, noise, scale, background."""
    return {
        "view_mix": [float(x) for x in rng.dirichlet(np.full(len(VIEWS), spec.view_concentration))],
        "light": float(rng.uniform(spec.light_min, spec.light_max)),
        "cast": [float(x) for x in 1.0 + rng.uniform(-spec.colour_cast, spec.colour_cast, 3)],
        "blur": float(rng.uniform(0.0, spec.blur_max)),
        "noise": float(rng.uniform(spec.noise_min, spec.noise_max)),
        "scale": float(rng.uniform(spec.scale_min, 1.0)),
        "wall": [float(x) for x in _muted_colour(rng)],
        "floor": [float(x) for x in _muted_colour(rng, 40, 170)],
        "horizon": float(rng.uniform(0.45, 0.8)),
        "texture": ("plain", "tiles", "bricks", "panels", "blotches")[int(rng.integers(5))],
    }


def _background_plate(cam: dict[str, Any], spec: WorldSpec, rng: np.random.Generator) -> np.ndarray:
    """A camera's static scene, three crops wide; images take random windows of it."""
    ss = spec.supersample
    h, w = spec.height * ss, spec.width * ss * 3
    plate = np.empty((h, w, 3), dtype=np.float32)
    horizon = int(cam["horizon"] * h)
    ramp = np.linspace(1.08, 0.92, h, dtype=np.float32)[:, None, None]
    plate[:horizon] = np.asarray(cam["wall"], np.float32)
    plate[horizon:] = np.asarray(cam["floor"], np.float32)
    plate *= ramp
    texture, step = cam["texture"], max(4, int(rng.integers(10, 22)) * ss)
    if texture == "tiles":
        plate[horizon::step] *= 0.75
        plate[horizon:, ::step] *= 0.75
    elif texture == "bricks":
        row = max(3, step // 2)
        for i, y in enumerate(range(0, horizon, row)):
            plate[y] *= 1.2
            plate[y:y + row, (i % 2) * step // 2::step] *= 1.2
    elif texture == "panels":
        other = _muted_colour(rng).astype(np.float32)
        for x in range(0, w, 2 * step):
            plate[:horizon, x:x + step] = 0.5 * plate[:horizon, x:x + step] + 0.5 * other
    elif texture == "blotches":
        small = rng.uniform(-30, 30, (max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
        layers = [np.asarray(Image.fromarray(small[..., c]).resize((w, h), Image.Resampling.BILINEAR))
                  for c in range(3)]
        plate += np.stack(layers, axis=-1)
    for _ in range(int(rng.integers(2, 6))):  # props standing on the floor: bins, pillars, boxes
        pw, ph = int(rng.uniform(0.1, 0.35) * spec.width * ss), int(rng.uniform(0.1, 0.6) * h)
        x0 = int(rng.integers(0, w - pw))
        y1 = int(rng.uniform(horizon, h))
        plate[max(0, y1 - ph):y1, x0:x0 + pw] = _muted_colour(rng, 30, 220)
    plate += rng.normal(0.0, 4.0, plate.shape).astype(np.float32)  # static grain
    return np.clip(plate, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- drawing


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(min(255, max(0, c * factor))) for c in colour)  # type: ignore[return-value]


class _Figure:
    """Draws one person in a given view; geometry is in fractions of the person height ``u``."""

    def __init__(self, draw: ImageDraw.ImageDraw, attrs: Attributes, view: str,
                 cx: float, top: float, u: float, stride: float, swing: float) -> None:
        self.d, self.a, self.view = draw, attrs, view
        self.cx, self.top, self.u = cx, top, u
        self.stride, self.swing = stride, swing
        self.side = view in ("left", "right")
        # In a side view the person walks toward +x when we see their right side.
        self.facing = 1 if view == "right" else -1
        b = BUILD_WIDTH[attrs["build"]]
        self.b = b
        if self.side:
            self.shw, self.whw = 0.08 * b * u, 0.07 * b * u
        else:
            self.shw, self.whw = 0.13 * b * u, 0.11 * b * u
        self.aw = 0.048 * b * u
        self.lw = 0.05 * b * u
        self.skin = SKIN_TONES[attrs["skin"]]
        self.hair = HAIR_COLOURS[attrs["hair_colour"]]
        self.upper = COLOURS[attrs["upper_colour"]]
        self.lower = COLOURS[attrs["lower_colour"]]
        self.shoes = COLOURS[attrs["shoes_colour"]]
        self.bag = COLOURS[attrs["bag_colour"]] if attrs["bag"] != "none" else None
        self.rx = (0.056 if self.side else 0.052) * u
        hx = cx + (self.facing * 0.008 * u if self.side else 0.0)
        self.head = (hx - self.rx, self.y(0.01), hx + self.rx, self.y(0.145))

    def y(self, frac: float) -> float:
        return self.top + frac * self.u

    # -- parts ------------------------------------------------------------------

    def draw(self) -> None:
        """Back-to-front: hair behind, back-side bags, arms, legs, torso, head, front items."""
        a = self.a
        if self.view == "front" and a["hair_style"] == "long":
            self._long_hair_behind()
        if self.side and a["bag"] == "backpack":
            self._backpack()
        if not self.side:
            self._arms_both()
        self._legs()
        self._torso()
        self._neck()
        self._head()
        if a["hat"] != "none":
            self._hat()
        if a["bag"] == "backpack" and not self.side:
            self._backpack()
        elif a["bag"] == "shoulder bag":
            self._shoulder_bag()
        if self.side:
            self._arm_side()
        if a["bag"] == "handbag":
            self._handbag()

    def _long_hair_behind(self) -> None:
        x0, y0, x1, _ = self.head
        pad = 0.15 * self.rx
        self.d.rounded_rectangle((x0 - pad, y0 + 0.02 * self.u, x1 + pad, self.y(0.26)),
                                 radius=self.rx, fill=self.hair)

    def _arm_poly(self, x_top: float, x_hand: float, y0: float, y1: float) -> list[tuple[float, float]]:
        """Arm segment between heights ``y0``..``y1`` of the arm from shoulder to hand."""
        ys, yh = self.y(0.165), self.y(0.49)

        def x_at(yy: float) -> float:
            return x_top + (x_hand - x_top) * (yy - ys) / (yh - ys)

        h = self.aw / 2
        return [(x_at(y0) - h, y0), (x_at(y0) + h, y0), (x_at(y1) + h, y1), (x_at(y1) - h, y1)]

    def _arm(self, x_top: float, x_hand: float) -> None:
        ys, yh = self.y(0.165), self.y(0.49)
        cuff = yh if self.a["sleeves"] == "long" else self.y(0.27)
        self.d.polygon(self._arm_poly(x_top, x_hand, ys, yh), fill=self.skin)
        self.d.polygon(self._arm_poly(x_top, x_hand, ys, cuff), fill=self.upper)
        r = 0.55 * self.aw
        self.d.ellipse((x_hand - r, yh - r * 0.6, x_hand + r, yh + r * 1.4), fill=self.skin)

    def _arms_both(self) -> None:
        for sgn in (-1, 1):
            x_top = self.cx + sgn * (self.shw - 0.2 * self.aw)
            self._arm(x_top, x_top + sgn * 0.012 * self.u + self.swing * 0.2)

    def _arm_side(self) -> None:
        self._arm(self.cx, self.cx + self.swing)

    def _hand_position(self) -> tuple[float, float]:
        """Where the person's right hand is drawn (for the handbag)."""
        if self.side:
            return self.cx + self.swing, self.y(0.5)
        sgn = -1 if self.view == "front" else 1  # their right is image-left when facing us
        x_top = self.cx + sgn * (self.shw - 0.2 * self.aw)
        return x_top + sgn * 0.012 * self.u + self.swing * 0.2, self.y(0.5)

    def _leg(self, hip_x: float, foot_x: float, y0: float, y1: float, colour: RGB) -> None:
        yw, ya = self.y(0.49), self.y(0.93)

        def x_at(yy: float) -> float:
            return hip_x + (foot_x - hip_x) * (yy - yw) / (ya - yw)

        w0, w1 = self.lw, self.lw * 0.8
        f0, f1 = (y0 - yw) / (ya - yw), (y1 - yw) / (ya - yw)
        h0, h1 = w0 + (w1 - w0) * f0, w0 + (w1 - w0) * f1
        self.d.polygon([(x_at(y0) - h0, y0), (x_at(y0) + h0, y0),
                        (x_at(y1) + h1, y1), (x_at(y1) - h1, y1)], fill=colour)

    def _legs(self) -> None:
        a, cx, u = self.a, self.cx, self.u
        yw, ya = self.y(0.49), self.y(0.93)
        if self.side:
            legs = [(cx, cx - self.facing * self.stride), (cx, cx + self.facing * self.stride)]
        else:
            lo = 0.055 * self.b * u
            legs = [(cx + s * lo, cx + s * (lo + 0.25 * self.stride)) for s in (-1, 1)]
        short_end = {"trousers": ya, "shorts": self.y(0.67), "skirt": yw}[a["lower_type"]]
        for hip_x, foot_x in legs:
            self._leg(hip_x, foot_x, yw, ya, self.skin)
            if short_end > yw:
                self._leg(hip_x, foot_x, yw, short_end, self.lower)
            self._shoe(foot_x)
        if a["lower_type"] == "skirt":
            flare = 1.6 if self.side else 1.45
            self.d.polygon([(cx - self.whw, yw), (cx + self.whw, yw),
                            (cx + self.whw * flare, self.y(0.7)), (cx - self.whw * flare, self.y(0.7))],
                           fill=self.lower)
        else:
            self.d.rectangle((cx - self.whw, yw - 0.01 * u, cx + self.whw, self.y(0.57)), fill=self.lower)

    def _shoe(self, foot_x: float) -> None:
        u = self.u
        if self.side:
            x0 = foot_x - 0.04 * u + self.facing * 0.025 * u
            box = (x0, self.y(0.915), x0 + 0.08 * u, self.y(0.995))
        else:
            hw = self.lw * 1.05
            box = (foot_x - hw, self.y(0.915), foot_x + hw, self.y(0.995))
        self.d.ellipse(box, fill=self.shoes)

    def _torso(self) -> None:
        cx, u = self.cx, self.u
        ys, yw = self.y(0.155), self.y(0.5)
        self.d.ellipse((cx - self.shw, ys - 0.015 * u, cx + self.shw, ys + 0.07 * u), fill=self.upper)
        self.d.polygon([(cx - self.shw, ys + 0.02 * u), (cx + self.shw, ys + 0.02 * u),
                        (cx + self.whw, yw), (cx - self.whw, yw)], fill=self.upper)
        self._pattern(ys + 0.02 * u, yw)

    def _pattern(self, y0: float, y1: float) -> None:
        a, cx, u = self.a, self.cx, self.u
        if a["pattern"] == "plain":
            return
        pcol = COLOURS[a["pattern_colour"]]

        def hw(yy: float) -> float:
            return self.shw + (self.whw - self.shw) * (yy - y0) / (y1 - y0)

        if a["pattern"] == "striped":
            period, band = 0.05 * u, 0.022 * u
            yy = y0 + 0.015 * u
            while yy + band <= y1:
                w = hw(yy + band)
                self.d.rectangle((cx - w, yy, cx + w, yy + band), fill=pcol)
                yy += period
        elif a["pattern"] == "checked":
            cell = 0.045 * u
            rows = int((y1 - y0) / cell)
            for i in range(rows):
                ya, yb = y0 + i * cell, y0 + (i + 1) * cell
                w = hw(yb)
                xs = np.arange(cx - w, cx + w, cell)
                for j, xa in enumerate(xs):
                    if (i + j) % 2 == 0:
                        self.d.rectangle((xa, ya, min(xa + cell, cx + w), yb), fill=pcol)
        elif a["pattern"] == "logo" and self.view == "front":  # printed on the chest only
            r = 0.036 * u
            self.d.ellipse((cx - r, self.y(0.23) - r, cx + r, self.y(0.23) + r), fill=pcol)

    def _neck(self) -> None:
        w = 0.024 * self.u
        colour = self.hair if (self.view == "back" and self.a["hair_style"] == "long") else self.skin
        self.d.rectangle((self.cx - w, self.y(0.12), self.cx + w, self.y(0.17)), fill=colour)

    def _head(self) -> None:
        a, d, box, u = self.a, self.d, self.head, self.u
        hx = (box[0] + box[2]) / 2
        if self.view == "back":
            d.ellipse(box, fill=self.hair)
            if a["hair_style"] == "long":
                d.rounded_rectangle((box[0] - 0.1 * self.rx, self.y(0.06), box[2] + 0.1 * self.rx,
                                     self.y(0.27)), radius=0.5 * self.rx, fill=self.hair)
            return
        d.ellipse(box, fill=self.skin)
        if self.view == "front":
            d.chord(box, 180 if a["hair_style"] == "long" else 192,
                    360 if a["hair_style"] == "long" else 348, fill=self.hair)
            r = 0.0065 * u
            for sgn in (-1, 1):
                ex = hx + sgn * 0.02 * u
                d.ellipse((ex - r, self.y(0.085) - r, ex + r, self.y(0.085) + r), fill=_EYE_COLOUR)
            return
        # Side view: hair over the top and the back half of the head.
        back_start, back_end = (90, 270) if self.facing == 1 else (270, 450)
        d.chord(box, 192, 348, fill=self.hair)
        d.pieslice(box, back_start, back_end, fill=self.hair)
        if a["hair_style"] == "long":
            bx = hx - self.facing * 0.6 * self.rx
            d.rectangle((bx - 0.45 * self.rx, self.y(0.07), bx + 0.45 * self.rx, self.y(0.25)),
                        fill=self.hair)
        r = 0.0065 * u
        ex = hx + self.facing * 0.03 * u
        d.ellipse((ex - r, self.y(0.085) - r, ex + r, self.y(0.085) + r), fill=_EYE_COLOUR)

    def _hat(self) -> None:
        a, d, u = self.a, self.d, self.u
        x0, y0, x1, y1 = self.head
        pad = 0.06 * self.rx
        box = (x0 - pad, y0 - 0.01 * u, x1 + pad, y1 + 0.005 * u)
        colour = COLOURS[a["hat_colour"]]
        if a["hat"] == "beanie":
            d.chord(box, 168, 372, fill=colour)
            d.rectangle((box[0], self.y(0.06), box[2], self.y(0.075)), fill=_shade(colour, 0.75))
            return
        d.chord(box, 185, 355, fill=colour)
        if self.view == "front":
            d.ellipse((box[0], self.y(0.05), box[2], self.y(0.072)), fill=_shade(colour, 0.8))
        elif self.side:
            hx = (x0 + x1) / 2
            tip = hx + self.facing * 1.9 * self.rx
            d.ellipse((min(hx, tip), self.y(0.05), max(hx, tip), self.y(0.07)), fill=_shade(colour, 0.8))

    def _backpack(self) -> None:
        d, cx, u, bag = self.d, self.cx, self.u, self.bag
        assert bag is not None
        edge = _shade(bag, 0.6)
        if self.view == "back":
            box = (cx - 0.75 * self.shw, self.y(0.19), cx + 0.75 * self.shw, self.y(0.44))
            d.rounded_rectangle(box, radius=0.03 * u, fill=bag, outline=edge, width=max(1, int(0.008 * u)))
            d.rectangle((cx - 0.45 * self.shw, self.y(0.35), cx + 0.45 * self.shw, self.y(0.42)), fill=edge)
        elif self.view == "front":
            for sgn in (-1, 1):
                d.line(((cx + sgn * 0.55 * self.shw, self.y(0.16)), (cx + sgn * 0.5 * self.shw, self.y(0.4))),
                       fill=bag, width=max(1, int(0.022 * u)))
        else:
            back = cx - self.facing * self.shw
            xs = sorted((back + self.facing * 0.01 * u, back - self.facing * 0.1 * u))
            d.rounded_rectangle((xs[0], self.y(0.19), xs[1], self.y(0.45)), radius=0.025 * u, fill=bag,
                                outline=edge, width=max(1, int(0.008 * u)))

    def _shoulder_bag(self) -> None:
        """Hangs at the person's left hip from a strap over the right shoulder."""
        d, cx, u, bag = self.d, self.cx, self.u, self.bag
        assert bag is not None
        strap_w = max(1, int(0.015 * u))
        if self.view == "right":  # the bag is on the far side: only the strap shows
            d.line(((cx, self.y(0.16)), (cx + self.facing * self.shw, self.y(0.36))), fill=bag, width=strap_w)
            return
        if self.side:
            bx, strap_top = cx - self.facing * 0.01 * u, cx
        else:
            sgn = 1 if self.view == "front" else -1  # their left is image-right when facing us
            bx, strap_top = cx + sgn * (self.whw + 0.03 * u), cx - sgn * 0.6 * self.shw
        d.line(((strap_top, self.y(0.16)), (bx, self.y(0.43))), fill=bag, width=strap_w)
        d.rectangle((bx - 0.065 * u, self.y(0.42), bx + 0.065 * u, self.y(0.52)), fill=bag,
                    outline=_shade(bag, 0.6), width=max(1, int(0.006 * u)))

    def _handbag(self) -> None:
        """Carried in the right hand: hidden when we see the person's left side."""
        if self.view == "left":
            return
        d, u, bag = self.d, self.u, self.bag
        assert bag is not None
        hx, hy = self._hand_position()
        d.line(((hx, hy), (hx, hy + 0.02 * u)), fill=_shade(bag, 0.6), width=max(1, int(0.008 * u)))
        d.rectangle((hx - 0.045 * u, hy + 0.02 * u, hx + 0.045 * u, hy + 0.1 * u), fill=bag,
                    outline=_shade(bag, 0.6), width=max(1, int(0.006 * u)))


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Job:
    """One image to render: which content, for which camera, written where."""

    kind: str  # "person", "background" or "junk"
    pid: int
    cam: int  # 0-based
    split: str
    name: str
    attrs: Attributes | None


def _pid_field(pid: int) -> str:
    return "-1" if pid == JUNK_PID else f"{pid:04d}"


class _NameAllocator:
    """Market-style names, unique across the world: pid_cCsS_FFFFFF_BB.jpg."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def tracklet(self, rng: np.random.Generator, pid: int, cam: int, n: int) -> list[str]:
        """``n`` names for one identity passing one camera: one sequence, rising frames."""
        seq = int(rng.integers(1, NUM_SEQUENCES + 1))
        frame = int(rng.integers(1, 150_000))
        names = []
        for _ in range(n):
            box = int(rng.integers(1, MAX_BOX + 1))
            while True:
                name = f"{_pid_field(pid)}_c{cam + 1}s{seq}_{frame:06d}_{box:02d}.jpg"
                if name not in self.used:
                    break
                box += 1
                if box > 99:
                    box, frame = 1, frame + 1
            self.used.add(name)
            names.append(name)
            frame += int(rng.integers(4, 40))
        return names


def _camera_rng(seed: int, cam: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1, cam])


def _image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2, index])


def _place(spec: WorldSpec, cam: dict[str, Any], attrs: Attributes,
           rng: np.random.Generator) -> tuple[float, float, float]:
    """(cx, top, u) of a person in the supersampled canvas, as a detector would crop them."""
    hc, wc = spec.height * spec.supersample, spec.width * spec.supersample
    u = min(hc * HEIGHT_FILL[attrs["height"]] * cam["scale"] * rng.uniform(0.95, 1.03), hc * 0.98)
    cx = wc / 2 + rng.uniform(-1, 1) * spec.position_jitter * wc
    top = (hc - u) * rng.uniform(0.25, 0.75)
    return cx, top, u


def _draw_figure(draw: ImageDraw.ImageDraw, attrs: Attributes, view: str, cx: float, top: float,
                 u: float, rng: np.random.Generator) -> None:
    side = view in ("left", "right")
    stride = rng.uniform(0.0, 0.09 if side else 0.05) * u
    swing = rng.uniform(-0.05, 0.05) * u
    _Figure(draw, attrs, view, cx, top, u, stride, swing).draw()


def _render_canvas(job: _Job, spec: WorldSpec, cam: dict[str, Any], plate: np.ndarray,
                   rng: np.random.Generator) -> Image.Image:
    """The supersampled scene before camera effects: background, people, occluders."""
    hc, wc = spec.height * spec.supersample, spec.width * spec.supersample
    x0 = int(rng.integers(0, plate.shape[1] - wc + 1))
    canvas = Image.fromarray(np.ascontiguousarray(plate[:, x0:x0 + wc]))
    draw = ImageDraw.Draw(canvas)
    views = VIEWS
    if rng.random() < spec.clutter_prob:  # a passer-by cut by the crop border
        other = sample_attributes(rng)
        cx, top, u = _place(spec, cam, other, rng)
        cx = wc / 2 + (1 if rng.random() < 0.5 else -1) * rng.uniform(0.6, 0.85) * wc
        _draw_figure(draw, other, views[int(rng.integers(len(views)))], cx, top, u, rng)
    if job.attrs is not None and job.kind != "background":
        view = views[int(rng.choice(len(views), p=np.asarray(cam["view_mix"])))]
        cx, top, u = _place(spec, cam, job.attrs, rng)
        _draw_figure(draw, job.attrs, view, cx, top, u, rng)
        if rng.random() < spec.occlusion_prob:
            colour = tuple(int(c) for c in _muted_colour(rng, 30, 220))
            if rng.random() < 0.5:  # low object in front of the legs
                y = rng.uniform(0.6, 0.8) * hc
                xa, xb = sorted(rng.uniform(-0.2, 1.2, 2) * wc)
                draw.rectangle((xa, y, max(xb, xa + 0.5 * wc), hc), fill=colour)
            else:  # pole or pillar
                xm, half = rng.uniform(0.2, 0.8) * wc, rng.uniform(0.06, 0.14) * wc
                draw.rectangle((xm - half, 0, xm + half, hc), fill=colour)
    if job.kind == "junk":  # a bad detection: a fragment stretched to the crop size
        fw, fh = rng.uniform(0.35, 1.0) * wc, rng.uniform(0.2, 0.5) * hc
        fx, fy = rng.uniform(0, wc - fw), rng.uniform(0, hc - fh)
        canvas = canvas.resize((wc, hc), Image.Resampling.BILINEAR, box=(fx, fy, fx + fw, fy + fh))
    return canvas


def _camera_effects(canvas: Image.Image, spec: WorldSpec, cam: dict[str, Any],
                    rng: np.random.Generator) -> Image.Image:
    """Downsample, then the camera's blur, light, colour cast and sensor noise."""
    img = canvas.resize((spec.width, spec.height), Image.Resampling.BOX)
    if cam["blur"] > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(cam["blur"]))
    arr = np.asarray(img, dtype=np.float32)
    gain = cam["light"] * (1.0 + rng.uniform(-spec.light_jitter, spec.light_jitter))
    arr = arr * (gain * np.asarray(cam["cast"], np.float32))
    arr += rng.normal(0.0, cam["noise"], arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def _render_image(job: _Job, spec: WorldSpec, cam: dict[str, Any], plate: np.ndarray,
                 rng: np.random.Generator) -> Image.Image:
    """The final ``height x width`` RGB crop for one planned image."""
    return _camera_effects(_render_canvas(job, spec, cam, plate, rng), spec, cam, rng)


# --------------------------------------------------------------------------- planning


def _plan(spec: WorldSpec) -> tuple[list[_Job], dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """Every image to write plus identity and camera metadata, from the seed alone."""
    rng = np.random.default_rng([spec.seed, 0])
    cameras = [_make_camera(_camera_rng(spec.seed, c), spec) for c in range(spec.num_cameras)]
    taken: set[str] = set()
    train = _sample_families(rng, spec.num_train_ids, spec, taken)
    test = _sample_families(rng, spec.num_test_ids, spec, taken)
    # Shuffle the pids so neither split nor family can be read off the number.
    pids = [int(p) for p in rng.permutation(spec.num_train_ids + spec.num_test_ids) + 1]
    identities: dict[int, dict[str, Any]] = {}
    jobs: list[_Job] = []
    names = _NameAllocator()
    for split, members, offset in (("train", train, 0), ("test", test, spec.num_train_ids)):
        for i, (family, rank, attrs) in enumerate(members):
            pid = pids[offset + i]
            ncam = int(rng.integers(spec.min_cameras_per_id, spec.max_cameras_per_id + 1))
            cams = sorted(int(c) for c in rng.choice(spec.num_cameras, size=ncam, replace=False))
            identities[pid] = {"split": split, "family": f"{split}-{family}", "family_rank": rank,
                               "cameras": [c + 1 for c in cams], **attrs}
            for cam in cams:
                n = int(rng.integers(spec.min_images_per_camera, spec.max_images_per_camera + 1))
                tracklet = names.tracklet(rng, pid, cam, n)
                query = int(rng.integers(n)) if split == "test" else -1
                for k, name in enumerate(tracklet):
                    folder = TRAIN_DIRNAME if split == "train" else (
                        QUERY_DIRNAME if k == query else GALLERY_DIRNAME)
                    jobs.append(_Job("person", pid, cam, folder, name, attrs))
    for _ in range(spec.num_distractors):
        cam = int(rng.integers(spec.num_cameras))
        if rng.random() < spec.distractor_person_prob:
            attrs = sample_attributes(rng)
            while _signature(attrs) in taken:  # an unknown person, never a known identity
                attrs = sample_attributes(rng)
            kind: str = "person"
        else:
            attrs, kind = None, "background"
        name = names.tracklet(rng, DISTRACTOR_PID, cam, 1)[0]
        jobs.append(_Job(kind, DISTRACTOR_PID, cam, GALLERY_DIRNAME, name, attrs))
    test_pids = [pid for pid, info in identities.items() if info["split"] == "test"]
    for _ in range(spec.num_junk):
        cam = int(rng.integers(spec.num_cameras))
        source = identities[test_pids[int(rng.integers(len(test_pids)))]]
        attrs = {k: source[k] for group in ATTRIBUTE_GROUPS.values() for k in group}
        name = names.tracklet(rng, JUNK_PID, cam, 1)[0]
        jobs.append(_Job("junk", JUNK_PID, cam, GALLERY_DIRNAME, name, attrs))
    return jobs, identities, cameras


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def generate_world(out_dir: Path, spec: WorldSpec, *, progress: bool = True) -> None:
    """Render ``spec`` into ``out_dir`` (which must not already hold a world).

    ``world.json`` is written last, so its presence marks a finished generation.
    """
    out_dir = Path(out_dir)
    market = out_dir / MARKET_DIRNAME
    if market.exists() or (out_dir / WORLD_JSON).exists():
        raise FileExistsError(f"{out_dir} already holds a synthetic world; generate into an empty folder")
    for split in SPLIT_DIRNAMES:
        (market / split).mkdir(parents=True, exist_ok=True)
    jobs, identities, cameras = _plan(spec)
    plates = [_background_plate(cam, spec, _camera_rng(spec.seed, c + 1000))
              for c, cam in enumerate(cameras)]
    counts = {split: 0 for split in SPLIT_DIRNAMES}
    for index, job in enumerate(tqdm(jobs, desc="synthetic world", unit="img", disable=not progress)):
        img = _render_image(job, spec, cameras[job.cam], plates[job.cam], _image_rng(spec.seed, index))
        img.save(market / job.split / job.name, format="JPEG", quality=spec.jpeg_quality)
        counts[job.split] += 1
    _write_json(out_dir / CAPTIONS_JSON, {str(pid): describe(info) for pid, info in sorted(identities.items())})
    _write_json(out_dir / ATTRIBUTES_JSON, {str(pid): info for pid, info in sorted(identities.items())})
    summary = {
        "train_images": counts[TRAIN_DIRNAME],
        "query_images": counts[QUERY_DIRNAME],
        "gallery_images": counts[GALLERY_DIRNAME],
        "train_ids": spec.num_train_ids,
        "test_ids": spec.num_test_ids,
        "distractors": spec.num_distractors,
        "junk": spec.num_junk,
    }
    _write_json(out_dir / WORLD_JSON, {
        "format_version": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "counts": summary,
        "cameras": cameras,
        "layout": MARKET_DIRNAME,
    })


# --------------------------------------------------------------------------- ensure / load


def _is_complete(world_dir: Path, spec: WorldSpec) -> bool:
    """True when ``world_dir`` holds a finished world of exactly ``spec`` and this format."""
    try:
        meta = json.loads((world_dir / WORLD_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("format_version") != FORMAT_VERSION or meta.get("spec") != spec.to_dict():
        return False
    if not (world_dir / CAPTIONS_JSON).is_file():
        return False
    counts = meta.get("counts", {})
    expected = {TRAIN_DIRNAME: counts.get("train_images"), QUERY_DIRNAME: counts.get("query_images"),
                GALLERY_DIRNAME: counts.get("gallery_images")}
    for split, n in expected.items():
        folder = world_dir / MARKET_DIRNAME / split
        if not folder.is_dir() or sum(1 for p in folder.iterdir() if p.suffix == ".jpg") != n:
            return False
    return True


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise generation across processes (e.g. DDP ranks) sharing ``root``."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(root / _LOCK_NAME, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_world(world_dir: Path) -> None:
    """Delete an old world, refusing folders this module did not write."""
    if not world_dir.exists():
        return
    entries = sorted(p.name for p in world_dir.iterdir())
    if entries and _OWN_ENTRIES.isdisjoint(entries):
        foreign = entries
        raise FileExistsError(
            f"{world_dir} exists but is not a synthetic world (contains {foreign[:5]}); "
            "move it away or choose another root"
        )
    shutil.rmtree(world_dir)


def make_spec(**spec_fields: Any) -> WorldSpec:
    """A :class:`WorldSpec` from keyword options, naming any unknown key."""
    known = {f.name for f in fields(WorldSpec)}
    unknown = sorted(set(spec_fields) - known)
    if unknown:
        raise TypeError(f"unknown synthetic world option(s) {unknown}; known options: {sorted(known)}")
    return WorldSpec(**spec_fields)


def ensure_world(root: str | os.PathLike[str], *, progress: bool = True, **spec_fields: Any) -> Path:
    """Write the world under ``<root>/synthetic/`` unless an identical spec is already there.

    Returns ``<root>/synthetic``, the folder that contains ``Market-1501-v15.09.15``.
    A different spec (or an unfinished world) is replaced; generation happens in
    a temporary sibling folder that is renamed into place once complete, so an
    interrupted run never leaves a folder that looks finished.
    """
    spec = make_spec(**spec_fields)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    world_dir = root / WORLD_DIRNAME
    with _locked(root):
        if _is_complete(world_dir, spec):
            return world_dir
        partial = root / _PARTIAL_DIRNAME
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir()
        generate_world(partial, spec, progress=progress)
        _remove_world(world_dir)
        os.replace(partial, world_dir)
    return world_dir


def load_captions(world_dir: Path) -> dict[int, str]:
    """Original pid → attribute caption, for every train and test identity."""
    raw = json.loads((Path(world_dir) / CAPTIONS_JSON).read_text(encoding="utf-8"))
    return {int(pid): caption for pid, caption in raw.items()}


def load_attributes(world_dir: Path) -> dict[int, dict[str, Any]]:
    """Original pid → split, family, cameras and attribute values (for analysis and prompts)."""
    raw = json.loads((Path(world_dir) / ATTRIBUTES_JSON).read_text(encoding="utf-8"))
    return {int(pid): info for pid, info in raw.items()}
