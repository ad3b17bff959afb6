"""The world's knobs: :class:`WorldSpec`, every value that determines a synthetic world, and its validation.

This is the one place a new knob goes. Adding one means: a field here (with its default keeping today's world), a
check in :meth:`WorldSpec._validate`, and reading it where it acts (``plan`` for who is seen how often and by which
camera, ``attributes`` for what people wear, ``figure`` for how a person is drawn, ``camera`` for a camera's look,
``render`` for clutter, occlusion and bad crops). Nothing else: the spec is stored in ``world.json``, so a cached
world made with other values is regenerated, and ``make_spec`` / ``ensure_world`` / ``dataset.options`` accept the
new field by name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from reid.data.synthetic.attributes import MUTABLE_GROUPS
from reid.data.synthetic.layout import MAX_CAMERAS, MAX_PID


@dataclass(frozen=True)
class WorldSpec:
    """Everything that determines a synthetic world; equal specs give identical files.

    Defaults are sized for the demo: ~2,000 images of 128 identities, seconds to render.
    """

    # -- identities, cameras and how often each identity is seen (read by plan.py)
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
    # -- how alike identities are (plan.py passes them to attributes.sample_families)
    family_size: int = 4  # identities per family (share body, skin and most clothing)
    family_differences: int = 1  # attribute groups in which a member differs from the base
    # -- the image files (read by render.py, camera.py, world.py)
    height: int = 128
    width: int = 64
    jpeg_quality: int = 90
    supersample: int = 2  # draw at this multiple of the size, then downsample (anti-aliasing)
    # -- each camera's style (read by camera.py)
    light_min: float = 0.7  # camera light level range (multiplier)
    light_max: float = 1.25
    light_jitter: float = 0.08  # per-image relative light change
    colour_cast: float = 0.15  # max per-channel gain deviation of a camera
    blur_max: float = 1.0  # max camera Gaussian blur radius, output pixels
    noise_min: float = 2.0  # camera sensor noise std range, 0..255 scale
    noise_max: float = 8.0
    scale_min: float = 0.8  # camera person-scale range is [scale_min, 1]
    camera_style: float = 1.0  # multiplies each camera's drawn light/cast/blur/noise/scale offset (0: neutral)
    scene_sharing: float = 0.0  # blend of each camera's background scene toward one shared scene (1: all alike)
    # -- what a crop shows (render.py; view_concentration: camera.py; distractor_person_prob: plan.py)
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
            (
                0 <= self.camera_style and self.camera_style * max(1 - self.scale_min, 1 - self.light_min) < 1,
                "camera_style must be >= 0 and keep light and scale positive: camera_style * (1 - x) < 1 for x in "
                "(light_min, scale_min)",
            ),
            (0 <= self.scene_sharing <= 1, "scene_sharing must be in [0, 1]"),
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


def make_spec(**spec_fields: Any) -> WorldSpec:
    """A :class:`WorldSpec` from keyword options, naming any unknown key."""
    known = {f.name for f in fields(WorldSpec)}
    unknown = sorted(set(spec_fields) - known)
    if unknown:
        raise TypeError(f"unknown synthetic world option(s) {unknown}; known options: {sorted(known)}")
    return WorldSpec(**spec_fields)

