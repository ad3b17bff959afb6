"""A camera's style: its fixed look (view mix, light, colour cast, blur, noise, person scale, background scene)
and the effects it applies to every crop it takes.

Cameras differ more than people do in a real ReID set; these are the knobs that make cross-camera matching hard.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from reid.data.synthetic.figure import VIEWS
from reid.data.synthetic.spec import WorldSpec


def muted_colour(rng: np.random.Generator, lo: int = 50, hi: int = 200) -> np.ndarray:
    """A background-ish colour: mid grey plus a moderate random tint."""
    grey = rng.uniform(lo, hi)
    return np.clip(grey + rng.uniform(-35, 35, 3), 0, 255)


def make_camera(rng: np.random.Generator, spec: WorldSpec) -> dict[str, Any]:
    """One camera's fixed look: view mix, light, cast, blur, noise, scale, background.

    ``spec.camera_style`` scales how far the light, cast, blur, noise and scale sit from a neutral camera (light 1,
    no cast, blur or noise, full scale) after the same random draws, so one number moves every camera's style
    together and 1 keeps the drawn values exactly.
    """
    style = spec.camera_style
    return {
        "view_mix": [float(x) for x in rng.dirichlet(np.full(len(VIEWS), spec.view_concentration))],
        "light": float(1.0 + style * (rng.uniform(spec.light_min, spec.light_max) - 1.0)),
        "cast": [float(x) for x in 1.0 + style * rng.uniform(-spec.colour_cast, spec.colour_cast, 3)],
        "blur": float(style * rng.uniform(0.0, spec.blur_max)),
        "noise": float(style * rng.uniform(spec.noise_min, spec.noise_max)),
        "scale": float(1.0 - style * (1.0 - rng.uniform(spec.scale_min, 1.0))),
        "wall": [float(x) for x in muted_colour(rng)],
        "floor": [float(x) for x in muted_colour(rng, 40, 170)],
        "horizon": float(rng.uniform(0.45, 0.8)),
        "texture": ("plain", "tiles", "bricks", "panels", "blotches")[int(rng.integers(5))],
    }


def background_plate(cam: dict[str, Any], spec: WorldSpec, rng: np.random.Generator) -> np.ndarray:
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
        other = muted_colour(rng).astype(np.float32)
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
        plate[max(0, y1 - ph):y1, x0:x0 + pw] = muted_colour(rng, 30, 220)
    plate += rng.normal(0.0, 4.0, plate.shape).astype(np.float32)  # static grain
    return np.clip(plate, 0, 255).astype(np.uint8)


def shared_scene_plates(plates: list[np.ndarray], shared: np.ndarray, sharing: float) -> list[np.ndarray]:
    """Each camera's scene blended toward one ``shared`` scene by ``sharing`` (0: unchanged, 1: all the same).

    Cameras in the world differ by their background as well as their style, and every crop of a camera (distractor
    background crops included) shares it, so a descriptor can match by scene alone. This knob weakens that cue
    without touching the camera's style (``camera_style``) or any random draw, so 0 is the world without it.
    """
    if sharing == 0:
        return plates
    return [np.clip(np.rint((1.0 - sharing) * p.astype(np.float32) + sharing * shared.astype(np.float32)),
                    0, 255).astype(np.uint8) for p in plates]


def camera_effects(canvas: Image.Image, spec: WorldSpec, cam: dict[str, Any],
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
