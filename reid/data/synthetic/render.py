"""One image of the world: a window of the camera's scene, a passer-by at the border, the person, an occluder,
or a bad detection's fragment, then the camera's effects.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from reid.data.synthetic.attributes import HEIGHT_FILL, Attributes, sample_attributes
from reid.data.synthetic.camera import camera_effects, muted_colour
from reid.data.synthetic.figure import VIEWS, draw_figure
from reid.data.synthetic.plan import Job
from reid.data.synthetic.spec import WorldSpec


def _place(spec: WorldSpec, cam: dict[str, Any], attrs: Attributes,
           rng: np.random.Generator) -> tuple[float, float, float]:
    """(cx, top, u) of a person in the supersampled canvas, as a detector would crop them."""
    hc, wc = spec.height * spec.supersample, spec.width * spec.supersample
    u = min(hc * HEIGHT_FILL[attrs["height"]] * cam["scale"] * rng.uniform(0.95, 1.03), hc * 0.98)
    cx = wc / 2 + rng.uniform(-1, 1) * spec.position_jitter * wc
    top = (hc - u) * rng.uniform(0.25, 0.75)
    return cx, top, u


def _render_canvas(job: Job, spec: WorldSpec, cam: dict[str, Any], plate: np.ndarray,
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
        draw_figure(draw, other, views[int(rng.integers(len(views)))], cx, top, u, rng)
    if job.attrs is not None and job.kind != "background":
        view = views[int(rng.choice(len(views), p=np.asarray(cam["view_mix"])))]
        cx, top, u = _place(spec, cam, job.attrs, rng)
        draw_figure(draw, job.attrs, view, cx, top, u, rng)
        if rng.random() < spec.occlusion_prob:
            colour = tuple(int(c) for c in muted_colour(rng, 30, 220))
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


def render_image(job: Job, spec: WorldSpec, cam: dict[str, Any], plate: np.ndarray,
                rng: np.random.Generator) -> Image.Image:
    """The final ``height x width`` RGB crop for one planned image."""
    return camera_effects(_render_canvas(job, spec, cam, plate, rng), spec, cam, rng)
