"""Drawing one person: body, clothes, hair, hat and bag in one of four views, walking with a random stride.

Geometry is in fractions of the person's height, so the same figure draws at any crop size and supersampling.
"""
from __future__ import annotations

import numpy as np
from PIL import ImageDraw

from reid.data.synthetic.attributes import (
    BUILD_WIDTH,
    COLOURS,
    HAIR_COLOURS,
    RGB,
    SKIN_TONES,
    Attributes,
)

VIEWS = ("front", "back", "left", "right")
_EYE_COLOUR = (40, 30, 30)


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


def draw_figure(draw: ImageDraw.ImageDraw, attrs: Attributes, view: str, cx: float, top: float,
                u: float, rng: np.random.Generator) -> None:
    """Draw ``attrs`` as a person of height ``u`` at ``(cx, top)``, in a random walking pose."""
    side = view in ("left", "right")
    stride = rng.uniform(0.0, 0.09 if side else 0.05) * u
    swing = rng.uniform(-0.05, 0.05) * u
    _Figure(draw, attrs, view, cx, top, u, stride, swing).draw()
