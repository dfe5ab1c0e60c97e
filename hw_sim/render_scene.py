"""The front of a truck as the plate camera sees it, with the plate and the text that is not the plate.

:func:`truck_front` paints a cab (windscreen, visor, grille, badge, headlights, bumper) on a yard or
road, mounts a painted plate (:mod:`hw_sim.render_plate`) on the bumper or below the grille, and adds
the distractors commercial vehicles carry: USDOT and fleet unit numbers, company names on the visor
and hood, phone numbers, manufacturer badges (rings and logos). It returns the picture and the plate's
box, so a localiser can learn to find the plate among them, and the simulator's plate camera paints
its frames with it (:func:`hw_sim.render.render_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from hw_sim import render_fonts as fonts
from hw_sim.render_damage import random_quad, warp_quad
from hw_sim.render_fonts import FontSpec
from hw_sim.render_plate import BACKGROUNDS_TRAIN, render_plate

Box = tuple[float, float, float, float]
Rgb = tuple[int, int, int]

COMPANIES = (
    "ACME FREIGHT", "NORTHSTAR", "BLUE LINE", "TRANS-CANADA", "RIVER LOGISTICS", "MAPLE HAUL",
    "PRAIRIE EXPRESS", "GULF CARRIERS", "SUMMIT", "EAGLE TRANSPORT", "LAKESHORE", "ROADRUNNER",
)  # fmt: skip
BADGES = ("MACK", "VOLVO", "KW", "PETERBILT", "INTL", "WESTERN STAR", "FREIGHTLINER", "HINO", "ISUZU")


@dataclass(frozen=True)
class TruckFront:
    """A painted truck front: the RGB picture and the plate's bounds in it (``None``: no plate)."""

    image: Image.Image
    plate_box: Box | None
    text: str | None


def _rgb(rng: np.random.Generator, lo: int, hi: int) -> Rgb:
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return (r, g, b)


def _shade(c: Rgb, k: float) -> Rgb:
    return (
        min(255, max(0, round(c[0] * k))),
        min(255, max(0, round(c[1] * k))),
        min(255, max(0, round(c[2] * k))),
    )


def _text(d: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, spec: FontSpec | None, size: float,
          fill: Rgb) -> None:  # fmt: skip
    d.text(xy, text, font=fonts.load(spec, max(6, int(size))), fill=fill)


def _grille(
    d: ImageDraw.ImageDraw,
    r_scene: np.random.Generator,
    size: tuple[int, int],
    cx: float,
    cw: float,
    ch: float,
    glass_bottom: float,
    cab_top: float,
    face: FontSpec | None,
) -> None:
    """The cab's grille and the maker's badge (rings, an oval, a word): text the localiser must refuse."""
    w, h = size
    gx0, gx1 = cx - cw * r_scene.uniform(0.18, 0.3), cx + cw * r_scene.uniform(0.18, 0.3)
    gy0, gy1 = glass_bottom + ch * 0.08, cab_top + ch * r_scene.uniform(0.62, 0.72)
    chrome = _rgb(r_scene, 20, 230)
    d.rectangle((gx0, gy0, gx1, gy1), fill=chrome)
    bars = int(r_scene.integers(4, 14))
    vertical = r_scene.random() < 0.4
    for i in range(bars):
        t = (i + 0.5) / bars
        if vertical:
            x = gx0 + (gx1 - gx0) * t
            d.line((x, gy0, x, gy1), fill=_shade(chrome, 0.5), width=max(1, int(w / 300)))
        else:
            y = gy0 + (gy1 - gy0) * t
            d.line((gx0, y, gx1, y), fill=_shade(chrome, 0.5), width=max(1, int(h / 200)))
    if r_scene.random() < 0.8:  # the maker's badge: rings, an oval, a word
        bw = (gx1 - gx0) * r_scene.uniform(0.2, 0.45)
        by = gy0 + (gy1 - gy0) * r_scene.uniform(0.05, 0.4)
        if r_scene.random() < 0.3:
            for k in range(int(r_scene.integers(2, 5))):
                rr = bw * 0.18
                bx = cx - bw / 2 + k * rr * 1.5
                d.ellipse(
                    (bx, by, bx + 2 * rr, by + 2 * rr), outline=(200, 200, 200), width=max(1, int(rr / 4))
                )
        else:
            d.rounded_rectangle(
                (cx - bw / 2, by, cx + bw / 2, by + bw * 0.3), radius=int(bw * 0.1), fill=(190, 190, 195)
            )
            _text(
                d, (cx - bw * 0.4, by + bw * 0.03), str(r_scene.choice(BADGES)), face, bw * 0.2, (30, 30, 30)
            )


def truck_front(
    rng: np.random.Generator,
    size: tuple[int, int],
    text: str | None,
    *,
    region: tuple[float, float, float, float] | None = None,
    plate: bool = True,
    registration_fonts: tuple[FontSpec, ...] | None = None,
    backgrounds: tuple[str, ...] = BACKGROUNDS_TRAIN,
    illegible: bool = False,
) -> TruckFront:
    """A ``size`` (w, h) truck front; its plate shows ``text`` (random when ``None``).

    ``region`` (fractions ``x0, y0, x1, y1``) keeps the plate inside a camera's region of interest;
    ``None`` mounts it wherever this cab's bumper puts it. ``plate=False`` paints a cab without one;
    ``illegible`` smears the plate past reading.
    """
    w, h = size
    r_scene = np.random.default_rng(rng.integers(2**63))
    r_plate = np.random.default_rng(rng.integers(2**63))
    legend_faces = fonts.installed(fonts.LEGEND) or (None,)
    img = Image.new("RGB", (w, h), _rgb(r_scene, 90, 220))
    d = ImageDraw.Draw(img)
    horizon = h * r_scene.uniform(0.3, 0.7)
    d.rectangle((0, horizon, w, h), fill=_rgb(r_scene, 40, 120))
    for _ in range(int(r_scene.integers(0, 6))):  # yard clutter: buildings, poles, other trailers
        x0, top = r_scene.uniform(0, w), r_scene.uniform(0, horizon)
        d.rectangle((x0, top, x0 + r_scene.uniform(w * 0.02, w * 0.3), horizon), fill=_rgb(r_scene, 30, 230))
    # the cab
    cab_w = w * r_scene.uniform(0.55, 1.05)
    cx = w / 2 + r_scene.uniform(-0.12, 0.12) * w
    cab = (cx - cab_w / 2, -h * r_scene.uniform(0.0, 0.3), cx + cab_w / 2, h * r_scene.uniform(0.86, 1.02))
    paint = _rgb(r_scene, 10, 245)
    d.rectangle(cab, fill=paint)
    cw, ch = cab[2] - cab[0], cab[3] - cab[1]
    glass_bottom = cab[1] + ch * r_scene.uniform(0.28, 0.42)
    d.rectangle(
        (cab[0] + cw * 0.06, cab[1] + ch * 0.05, cab[2] - cw * 0.06, glass_bottom),
        fill=_rgb(r_scene, 20, 110),
    )
    face = legend_faces[int(r_scene.integers(len(legend_faces)))]
    ink = (240, 240, 240) if sum(paint) < 380 else (20, 20, 20)
    if r_scene.random() < 0.6:  # company name on the visor or across the hood
        y = cab[1] + ch * 0.02 if r_scene.random() < 0.5 else glass_bottom + ch * 0.03
        _text(
            d,
            (cab[0] + cw * r_scene.uniform(0.15, 0.35), y),
            str(r_scene.choice(COMPANIES)),
            face,
            ch * 0.06,
            ink,
        )
    _grille(d, r_scene, (w, h), cx, cw, ch, glass_bottom, cab[1], face)
    for side in (-1, 1):  # headlights
        hx = cx + side * cw * r_scene.uniform(0.32, 0.42)
        hy = cab[1] + ch * r_scene.uniform(0.6, 0.7)
        rr = cw * 0.05
        d.rounded_rectangle(
            (hx - rr * 1.4, hy - rr * 0.6, hx + rr * 1.4, hy + rr * 0.6),
            radius=int(rr * 0.3),
            fill=(235, 235, 215),
        )
    # the bumper
    by0 = cab[1] + ch * r_scene.uniform(0.74, 0.82)
    by1 = by0 + ch * r_scene.uniform(0.08, 0.14)
    d.rectangle((cab[0] - cw * 0.02, by0, cab[2] + cw * 0.02, by1), fill=_rgb(r_scene, 20, 220))
    # distractor text: USDOT and unit numbers, a phone number
    for _ in range(int(r_scene.integers(0, 4))):
        kind = r_scene.random()
        if kind < 0.4:
            label = f"USDOT {int(r_scene.integers(100000, 4000000))}"
        elif kind < 0.75:
            label = str(int(r_scene.integers(10, 99999)))
        else:
            label = f"1-800-{int(r_scene.integers(200, 999))}-{int(r_scene.integers(1000, 9999))}"
        x = r_scene.uniform(cab[0], cab[2] - cw * 0.2)
        y = r_scene.uniform(cab[1] + ch * 0.3, cab[3] - ch * 0.05)
        _text(d, (x, y), label, face, ch * r_scene.uniform(0.03, 0.08), ink)
    if not plate:
        return TruckFront(img, None, None)
    painted = render_plate(r_plate, text, registration_fonts=registration_fonts, backgrounds=backgrounds)
    pw = w * r_scene.uniform(0.07, 0.22)
    if region is not None:
        rx0, ry0, rx1, ry1 = region[0] * w, region[1] * h, region[2] * w, region[3] * h
        pw = min((rx1 - rx0) * r_scene.uniform(0.6, 0.86), (ry1 - ry0) * 1.6)
    scale = pw / painted.plate_box[2] if painted.plate_box[2] else 1.0
    iw, ih = painted.image.size
    pimg = painted.image.resize((max(2, round(iw * scale)), max(2, round(ih * scale))), Image.Resampling.BOX)
    if illegible:
        pimg = smudge(pimg, r_plate)
    if region is not None:
        px = r_scene.uniform(rx0, max(rx0, rx1 - pimg.width))
        py = r_scene.uniform(ry0, max(ry0, ry1 - pimg.height))
    else:
        px = cx + r_scene.uniform(-0.3, 0.3) * cw - pimg.width / 2
        py = (by0 + by1) / 2 - pimg.height / 2 + r_scene.uniform(-0.5, 0.3) * pimg.height
    quad = random_quad(r_scene, px, py, pimg.width, pimg.height, skew=float(r_scene.uniform(0, 0.08)))
    warp_quad(img, pimg, quad)
    # the plate proper's box, from the warped corners
    sx, sy = pimg.width / iw, pimg.height / ih
    b = painted.plate_box
    corners = [(b[0] * sx, b[1] * sy), (b[2] * sx, b[1] * sy), (b[2] * sx, b[3] * sy), (b[0] * sx, b[3] * sy)]
    mapped = [_bilinear(quad, u / pimg.width, v / pimg.height) for u, v in corners]
    xs, ys = [p[0] for p in mapped], [p[1] for p in mapped]
    box = (max(0.0, min(xs)), max(0.0, min(ys)), min(float(w), max(xs)), min(float(h), max(ys)))
    return TruckFront(img, box, painted.text)


def _bilinear(quad: tuple[tuple[float, float], ...], u: float, v: float) -> tuple[float, float]:
    """The point at ``(u, v)`` (fractions) of a quad (tl, tr, br, bl): close to the perspective map."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    top = (x0 + (x1 - x0) * u, y0 + (y1 - y0) * u)
    bottom = (x3 + (x2 - x3) * u, y3 + (y2 - y3) * u)
    return (top[0] + (bottom[0] - top[0]) * v, top[1] + (bottom[1] - top[1]) * v)


def smudge(plate: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Make a plate illegible: heavy blur and mud blotches over the number."""
    w, h = plate.size
    plate = plate.filter(ImageFilter.GaussianBlur(radius=max(2.0, h * rng.uniform(0.15, 0.3))))
    d = ImageDraw.Draw(plate)
    mud = _rgb(rng, 60, 140)
    for _ in range(int(rng.integers(4, 9))):
        cx, cy = rng.uniform(0, w), rng.uniform(h * 0.25, h * 0.8)
        r = rng.uniform(h * 0.15, h * 0.35)
        d.ellipse((cx - r * 1.6, cy - r, cx + r * 1.6, cy + r), fill=mud)
    return plate.filter(ImageFilter.GaussianBlur(radius=max(1.0, h * 0.06)))
