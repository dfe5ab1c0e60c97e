"""A shipping container's doors or side, its yard and its chassis, painted for the container camera.

These are the surfaces :mod:`hw_sim.render_container` paints the ISO 6346 code on: corrugated walls in
the paints real lines use, door panels with locking bars, handles, cam keepers and hinges, corner posts
and castings, rust streaks, dirt, dents and patched paint, and the text and plates a door carries that
are *not* the code (operator name and logo, weight tables, CSC and customs plates, hazard diamonds,
barcodes, stickers, graffiti). Every function paints in place on a PIL image from a seeded generator.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from hw_sim import render_fonts as fonts
from hw_sim.render_fonts import FontSpec

Rgb = tuple[int, int, int]
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1

PAINTS_TRAIN: dict[str, tuple[Rgb, ...]] = {
    "maersk_blue": ((66, 153, 196), (90, 170, 205), (52, 132, 178)),
    "msc_yellow": ((214, 178, 92), (196, 166, 110), (226, 196, 120)),
    "cma_blue": ((22, 52, 110), (35, 66, 128), (18, 40, 92)),
    "hapag_orange": ((222, 104, 36), (205, 92, 40), (236, 126, 52)),
    "evergreen_green": ((30, 96, 60), (46, 112, 70), (24, 82, 52)),
    "cosco_blue": ((30, 70, 140), (226, 228, 230), (40, 88, 160)),
    "grey": ((140, 142, 140), (112, 116, 118), (170, 170, 166), (96, 98, 100)),
    "brown": ((118, 70, 44), (96, 58, 40), (140, 86, 56)),
    "red": ((158, 36, 32), (180, 50, 40), (130, 30, 30)),
    "white": ((226, 226, 220), (208, 210, 206), (240, 238, 232)),
    "rust": ((128, 66, 38), (110, 60, 40), (150, 80, 46)),
}
"""Container paints training sees (a family, then one of its shades)."""

PAINTS_HELD_OUT: dict[str, tuple[Rgb, ...]] = {
    "one_magenta": ((176, 28, 110), (158, 30, 98), (190, 50, 126)),
    "teal": ((32, 120, 120), (44, 136, 130)),
    "dark_navy": ((26, 30, 52), (36, 40, 64)),
}
"""Paints only validation renders with (never seen in training)."""

BACKGROUNDS_TRAIN: tuple[str, ...] = ("yard", "stacks", "sky")
BACKGROUNDS_HELD_OUT: tuple[str, ...] = ("warehouse", "night")

OPERATORS = (
    "MAERSK",
    "MSC",
    "CMA CGM",
    "HAPAG-LLOYD",
    "EVERGREEN",
    "ONE",
    "COSCO",
    "TRITON",
    "TAL",
    "TEXTAINER",
    "SEACO",
    "CAI",
    "FLORENS",
    "BEACON",
    "HMM",
    "YANG MING",
    "ZIM",
    "OOCL",
    "APL",
    "HAMBURG SUD",
    "GESEACO",
    "CRONOS",
    "UES",
    "SEA STAR",
    "NORDIC",
    "ATLAS BOX",
)
SMALL_FACES: tuple[FontSpec, ...] = (
    fonts.FontSpec("debian", "dejavu/DejaVuSans-Bold.ttf"),
    fonts.FontSpec("debian", "liberation2/LiberationSans-Bold.ttf"),
    fonts.FontSpec("debian", "urw-base35/NimbusSans-Bold.otf"),
    fonts.FontSpec("debian", "dejavu/DejaVuSansCondensed.ttf"),
    fonts.FontSpec("debian", "liberation/LiberationSansNarrow-Bold.ttf"),
)
"""Faces of the weight tables, plates and stickers (small print, not the code)."""


@dataclass(frozen=True)
class Face:
    """Where a container's doors (``doors``) or side (``side``) lie in the world image, and its paint."""

    kind: str
    rect: Rect
    paint: Rgb

    @property
    def height(self) -> float:
        """The face's height in pixels."""
        return self.rect[3] - self.rect[1]

    @property
    def width(self) -> float:
        """The face's width in pixels."""
        return self.rect[2] - self.rect[0]


def rgb(rng: np.random.Generator, lo: int, hi: int) -> Rgb:
    """A random colour with channels in ``[lo, hi)``."""
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return (r, g, b)


def shade(c: Rgb, k: float, add: float = 0.0) -> Rgb:
    """``c`` scaled by ``k`` plus ``add``, clipped."""
    return (
        min(255, max(0, round(c[0] * k + add))),
        min(255, max(0, round(c[1] * k + add))),
        min(255, max(0, round(c[2] * k + add))),
    )


def mix(a: Rgb, b: Rgb, t: float) -> Rgb:
    """``a`` moved towards ``b`` by ``t`` (0..1)."""
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def luma(c: Rgb) -> float:
    """The brightness of ``c`` (0..255)."""
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def paint(rng: np.random.Generator, held_out: bool) -> Rgb:
    """A container paint, sometimes faded towards grey-white."""
    table = PAINTS_HELD_OUT if held_out else PAINTS_TRAIN
    family = table[str(rng.choice(sorted(table)))]
    c = family[int(rng.integers(len(family)))]
    c = shade(c, float(rng.uniform(0.85, 1.1)), float(rng.uniform(-10, 10)))
    if rng.random() < 0.3:  # faded
        c = mix(c, (200, 198, 190), float(rng.uniform(0.1, 0.4)))
    return c


def small_text(
    d: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: float,
    fill: Rgb,
    rng: np.random.Generator,
) -> None:
    """Small print (tables, plates, names) in one of :data:`SMALL_FACES`."""
    spec = SMALL_FACES[int(rng.integers(len(SMALL_FACES)))]
    d.text(xy, text, font=fonts.load(spec, max(5, int(size))), fill=fill)


# ---------------------------------------------------------------------------------------------- background


def background(rng: np.random.Generator, img: Image.Image, family: str, held_out: bool) -> None:
    """Sky, yard and asphalt, distant stacks, a warehouse wall or a night yard, painted over ``img``."""
    w, h = img.size
    d = ImageDraw.Draw(img)
    horizon = h * float(rng.uniform(0.35, 0.7))
    night = family == "night"
    sky_top = rgb(rng, 10, 40) if night else rgb(rng, 120, 215)
    sky_low = shade(sky_top, 1.0, float(rng.uniform(10, 50)))
    steps = 12
    for i in range(steps):
        d.rectangle(
            (0, horizon * i / steps, w, horizon * (i + 1) / steps + 1), fill=mix(sky_top, sky_low, i / steps)
        )
    ground = rgb(rng, 15, 40) if night else shade(rgb(rng, 60, 110), 1.0)
    d.rectangle((0, horizon, w, h), fill=ground)
    for _ in range(int(rng.integers(0, 4))):  # lane markings, patches of asphalt
        y = float(rng.uniform(horizon, h))
        col = (200, 190, 80) if rng.random() < 0.4 else shade(ground, float(rng.uniform(0.7, 1.4)))
        xa, xb = sorted(float(v) for v in rng.uniform(0, w, 2))
        d.rectangle((xa, y, xb, y + rng.uniform(2, h * 0.03)), fill=col)
    if family in ("stacks", "night"):
        x = float(rng.uniform(-w * 0.1, 0))
        base = horizon + float(rng.uniform(0, h * 0.05))
        while x < w:
            bw, bh = float(rng.uniform(w * 0.08, w * 0.3)), float(rng.uniform(h * 0.06, h * 0.14))
            for k in range(int(rng.integers(1, 5))):
                c = paint(rng, held_out)
                c = shade(c, 0.3) if night else mix(c, sky_low, float(rng.uniform(0.1, 0.4)))
                d.rectangle((x, base - bh * (k + 1), x + bw, base - bh * k - 1), fill=c)
            x += bw + float(rng.uniform(0, w * 0.05))
    elif family == "yard":
        for _ in range(int(rng.integers(0, 3))):  # light poles and a crane's legs
            x = float(rng.uniform(0, w))
            d.rectangle(
                (x, horizon * rng.uniform(0, 0.5), x + rng.uniform(2, 6), horizon), fill=rgb(rng, 60, 150)
            )
        if rng.random() < 0.4:
            x0, top = float(rng.uniform(0, w)), float(rng.uniform(0, horizon * 0.3))
            col = (200, 60, 40) if rng.random() < 0.5 else rgb(rng, 90, 200)
            d.rectangle((x0, top, x0 + w * 0.5, top + h * 0.02), fill=col)
            d.rectangle((x0, top, x0 + w * 0.02, horizon), fill=col)
    elif family == "warehouse":
        wall = rgb(rng, 100, 200)
        d.rectangle((0, 0, w, horizon), fill=wall)
        for i in range(int(rng.integers(1, 4))):
            x0 = w * (0.1 + 0.3 * i) + float(rng.uniform(-20, 20))
            door = shade(wall, 0.8)
            d.rectangle((x0, horizon * 0.3, x0 + w * 0.2, horizon), fill=door)
            for y in np.arange(horizon * 0.3, horizon, max(3.0, h * 0.015)):
                d.line((x0, float(y), x0 + w * 0.2, float(y)), fill=shade(door, 0.85))
    if night:
        for _ in range(int(rng.integers(2, 7))):  # lamps
            x, y, r = float(rng.uniform(0, w)), float(rng.uniform(0, horizon)), float(rng.uniform(2, 6))
            d.ellipse((x - r, y - r, x + r, y + r), fill=(255, 240, 200))


# ---------------------------------------------------------------------------------------------- the box


@cache
def _corrugation(n: int, ribs: float, light: int) -> npt.NDArray[np.float32]:
    """A shading profile over ``n`` pixels: ``ribs`` trapezoid ribs lit from one side (``light`` = +-1)."""
    t = (np.arange(n, dtype=np.float32) / max(1, n)) * ribs % 1.0
    prof = np.ones(n, dtype=np.float32)
    prof[(t >= 0.35) & (t < 0.5)] = 1.0 + 0.16 * light
    prof[(t >= 0.5) & (t < 0.85)] = 0.93
    prof[(t >= 0.85)] = 1.0 - 0.16 * light
    return prof


def container(rng: np.random.Generator, img: Image.Image, face: Face) -> None:
    """The walls or doors of ``face``: corrugation, frame, corner castings, door hardware, wear."""
    x0, y0, x1, y1 = (round(v) for v in face.rect)
    w, h = img.size
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return
    fw, fh = x1 - x0, y1 - y0
    light = 1 if rng.random() < 0.5 else -1
    base = np.array(face.paint, dtype=np.float32)
    if face.kind == "side":
        ribs = fw / (fh * float(rng.uniform(0.09, 0.13)))
        col = _corrugation(fw, round(ribs * 4) / 4, light)[cx0 - x0 : cx1 - x0]
        row = np.ones(cy1 - cy0, dtype=np.float32)
    else:
        col = np.ones(cx1 - cx0, dtype=np.float32)
        row = _corrugation(fh, float(rng.choice([4.0, 5.0, 6.0])), light)[cy0 - y0 : cy1 - y0]
        row = 1.0 + (row - 1.0) * 0.6
    grad = np.linspace(
        float(rng.uniform(0.9, 1.1)), float(rng.uniform(0.8, 1.0)), cy1 - cy0, dtype=np.float32
    )
    rows = np.minimum(255, (row * grad * 128)).astype(np.uint16)  # integer shading: 2x faster than float
    cols = np.minimum(255, base[None, :] * col[:, None]).astype(np.uint16)
    block = np.minimum(255, (rows[:, None, None] * cols[None, :, :]) >> 7).astype(np.uint8)
    img.paste(Image.fromarray(block), (cx0, cy0))
    d = ImageDraw.Draw(img)
    dark, lit = shade(face.paint, 0.62), shade(face.paint, 1.12, 8)
    rail = fh * float(rng.uniform(0.04, 0.07))
    post = fh * float(rng.uniform(0.045, 0.07))
    d.rectangle((x0, y0, x1, y0 + rail), fill=shade(face.paint, 0.9))  # top rail
    d.line((x0, y0 + rail, x1, y0 + rail), fill=dark, width=max(1, round(fh * 0.006)))
    d.rectangle((x0, y1 - rail * 1.3, x1, y1), fill=shade(face.paint, 0.8))  # bottom rail / sill
    for px in (x0, x1 - post):
        d.rectangle((px, y0, px + post, y1), fill=shade(face.paint, 0.95))
        d.line(
            (px + (post if px == x0 else 0), y0, px + (post if px == x0 else 0), y1),
            fill=dark,
            width=max(1, round(fh * 0.005)),
        )
    cast = shade((70, 66, 60), float(rng.uniform(0.8, 1.6)))
    for cx, cy in ((x0, y0), (x1 - post, y0), (x0, y1 - post), (x1 - post, y1 - post)):
        d.rectangle((cx, cy, cx + post, cy + post), fill=cast)
        d.ellipse((cx + post * 0.3, cy + post * 0.3, cx + post * 0.7, cy + post * 0.6), fill=(20, 20, 20))
    if face.kind == "doors":
        _door_hardware(rng, d, face, rail, post, dark, lit)
    _wear(rng, img, d, face)


def _door_hardware(
    rng: np.random.Generator,
    d: ImageDraw.ImageDraw,
    face: Face,
    rail: float,
    post: float,
    dark: Rgb,
    lit: Rgb,
) -> None:
    """Two doors: the seal gap, four locking bars with cam keepers and handles, hinges on the posts."""
    x0, y0, x1, y1 = face.rect
    fh = y1 - y0
    mid = (x0 + x1) / 2
    d.line((mid, y0 + rail, mid, y1 - rail), fill=shade(dark, 0.5), width=max(1, round(fh * 0.008)))
    steel = shade(face.paint, float(rng.uniform(0.7, 1.1))) if rng.random() < 0.7 else rgb(rng, 90, 170)
    bar_w = max(2.0, fh * float(rng.uniform(0.012, 0.02)))
    inner = mid - x0 - post
    handle_y = y0 + fh * float(rng.uniform(0.45, 0.62))
    for side in (-1, 1):
        for frac in (0.22, 0.62):
            bx = mid + side * inner * frac if side > 0 else mid - inner * frac
            d.rectangle((bx - bar_w / 2, y0 + rail * 0.6, bx + bar_w / 2, y1 - rail * 0.6), fill=steel)
            d.line((bx - bar_w / 2, y0 + rail, bx - bar_w / 2, y1 - rail), fill=shade(steel, 1.3, 20))
            d.line((bx + bar_w / 2, y0 + rail, bx + bar_w / 2, y1 - rail), fill=shade(steel, 0.5))
            for ky in (y0 + rail * 0.2, y1 - rail * 1.6):  # cam keepers
                d.rectangle((bx - bar_w * 1.6, ky, bx + bar_w * 1.6, ky + rail * 1.2), fill=shade(steel, 0.8))
            for gy in (y0 + fh * 0.25, y0 + fh * 0.75):  # bar guides
                d.rectangle((bx - bar_w, gy, bx + bar_w, gy + bar_w), fill=shade(steel, 0.7))
            hx = bx + side * bar_w * 0.5
            d.rectangle(
                (
                    min(hx, hx + side * fh * 0.1),
                    handle_y,
                    max(hx, hx + side * fh * 0.1),
                    handle_y + bar_w * 1.1,
                ),
                fill=shade(steel, 0.9),
            )
            d.rectangle(
                (bx - bar_w * 1.4, handle_y - bar_w, bx + bar_w * 1.4, handle_y + bar_w * 2), fill=steel
            )
    for hxp in (x0 + post * 0.7, x1 - post * 1.3):  # hinges
        for k in range(4):
            hy = y0 + rail + (fh - 2 * rail) * (0.08 + 0.28 * k)
            d.rectangle((hxp, hy, hxp + post * 0.6, hy + fh * 0.04), fill=shade(steel, 0.75))


def _wear(rng: np.random.Generator, img: Image.Image, d: ImageDraw.ImageDraw, face: Face) -> None:
    """Rust streaks, dirt near the bottom, patched paint and shaded dents."""
    x0, y0, x1, y1 = face.rect
    fw, fh = x1 - x0, y1 - y0
    for _ in range(int(rng.integers(0, 4))):  # patched paint
        px, py = float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))
        d.rectangle(
            (px, py, px + rng.uniform(0.05, 0.3) * fw, py + rng.uniform(0.05, 0.3) * fh),
            fill=shade(face.paint, float(rng.uniform(0.85, 1.15)), float(rng.uniform(-12, 12))),
        )
    rust = shade((120, 62, 34), float(rng.uniform(0.7, 1.2)))
    for _ in range(int(rng.integers(0, 12))):  # streaks running down from the top rail and the hardware
        sx, sy = float(rng.uniform(x0, x1)), float(rng.uniform(y0, y0 + fh * 0.6))
        length, width = float(rng.uniform(0.05, 0.4)) * fh, float(rng.uniform(1, max(1.5, fh * 0.008)))
        d.line(
            (sx, sy, sx + rng.normal(0, 2), sy + length),
            fill=mix(face.paint, rust, float(rng.uniform(0.3, 0.8))),
            width=round(width),
        )
    for _ in range(int(rng.integers(0, 5))):  # rust spots
        sx, sy, r = float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1)), float(rng.uniform(1, fh * 0.02))
        d.ellipse((sx - r, sy - r * 0.7, sx + r, sy + r * 0.7), fill=mix(face.paint, rust, 0.8))
    if rng.random() < 0.5:  # road dirt rising from the sill
        dirt = shade(rgb(rng, 60, 110), 1.0)
        steps = 6
        top = y1 - fh * float(rng.uniform(0.1, 0.35))
        for i in range(steps):
            t = (i + 1) / steps
            yy = top + (y1 - top) * i / steps
            d.rectangle((x0, yy, x1, yy + (y1 - top) / steps + 1), fill=mix(face.paint, dirt, 0.5 * t))
    for _ in range(int(rng.integers(0, 3))):  # dents: a lit rim and a dark rim
        cx, cy = float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))
        rx, ry = float(rng.uniform(0.02, 0.08)) * fh, float(rng.uniform(0.02, 0.06)) * fh
        d.chord((cx - rx, cy - ry, cx + rx, cy + ry), 200, 20, fill=shade(face.paint, 0.8))
        d.chord((cx - rx, cy - ry, cx + rx, cy + ry), 20, 200, fill=shade(face.paint, 1.12, 6))


def chassis(rng: np.random.Generator, img: Image.Image, x0: float, x1: float, top: float, kind: str) -> None:
    """A trailer chassis under a box (or alone): beams, a rear bumper with lights, wheels."""
    w, h = img.size
    d = ImageDraw.Draw(img)
    span = x1 - x0
    beam = max(3.0, span * float(rng.uniform(0.03, 0.06)))
    steel = rgb(rng, 20, 70)
    d.rectangle((x0, top, x1, top + beam), fill=steel)
    tyre = (22, 22, 24)
    wr = span * (0.12 if kind == "doors" else 0.05)
    if kind == "doors":
        for wx in (x0 + span * 0.02, x1 - span * 0.02 - wr * 1.6):
            d.rectangle((wx, top + beam, wx + wr * 1.6, top + beam + wr * 2.2), fill=tyre)
        by = top + beam + wr * float(rng.uniform(0.8, 1.4))
        d.rectangle((x0 + span * 0.15, by, x1 - span * 0.15, by + beam * 0.8), fill=shade(steel, 1.4))
        for lx in (x0 + span * 0.2, x1 - span * 0.28):
            d.rectangle((lx, by - beam * 0.8, lx + span * 0.08, by), fill=(170, 20, 20))
    else:
        n = int(rng.integers(2, 4))
        start = x0 + span * float(rng.uniform(0.05, 0.7))
        for i in range(n):
            cx = start + i * wr * 2.3
            d.ellipse((cx - wr, top + beam, cx + wr, top + beam + 2 * wr), fill=tyre)
            d.ellipse(
                (cx - wr * 0.5, top + beam + wr * 0.5, cx + wr * 0.5, top + beam + wr * 1.5),
                fill=(120, 120, 120),
            )
    del w, h


# ---------------------------------------------------------------------------------------------- distractors


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(c) for c in rng.choice(list(string.digits), n))


@dataclass
class _Spots:
    """Free places on a face: each one taken is added to ``avoid`` so that markings do not overlap."""

    rng: np.random.Generator
    face: Face
    avoid: list[Rect]

    def take(self, w: float, h: float) -> tuple[float, float] | None:
        """The top-left of a free ``w`` x ``h`` place on the face, or ``None`` after a few tries."""
        x0, y0, x1, y1 = self.face.rect
        fh = y1 - y0
        for _ in range(6):
            px = float(self.rng.uniform(x0 + fh * 0.07, max(x0 + fh * 0.07 + 1, x1 - w - fh * 0.07)))
            py = float(self.rng.uniform(y0 + fh * 0.08, max(y0 + fh * 0.08 + 1, y1 - h - fh * 0.1)))
            r = (px, py, px + w, py + h)
            if not any(r[0] < a[2] and a[0] < r[2] and r[1] < a[3] and a[1] < r[3] for a in self.avoid):
                self.avoid.append(r)
                return px, py
        return None


def distractors(
    rng: np.random.Generator, img: Image.Image, face: Face, avoid: list[Rect], ink: Rgb, held_out: bool
) -> None:
    """Text and plates that are not the code, placed where they do not cover ``avoid``."""
    d = ImageDraw.Draw(img)
    spots = _Spots(rng, face, avoid)
    if rng.random() < 0.6:
        _operator(rng, d, spots, ink if rng.random() < 0.6 else paint(rng, held_out))
    if rng.random() < 0.7:
        _weights(rng, d, spots, ink)
    markings = (_csc_plate, _customs_plate, _hazard, _barcode, _number, _sticker)
    for _ in range(int(rng.integers(0, 4))):
        markings[int(rng.integers(len(markings)))](rng, d, spots, ink)


def _operator(rng: np.random.Generator, d: ImageDraw.ImageDraw, spots: _Spots, col: Rgb) -> None:
    """The operator's name, large, sometimes with a logo (a ring, a triangle, a square)."""
    name = str(rng.choice(OPERATORS))
    if rng.random() < 0.2:
        name = "".join(str(c) for c in rng.choice(list(string.ascii_uppercase), int(rng.integers(3, 9))))
    size = spots.face.height * float(rng.uniform(0.06, 0.16))
    at = spots.take(size * 0.7 * len(name), size)
    if at is None:
        return
    small_text(d, at, name, size, col, rng)
    if rng.random() < 0.5:
        lx, ly = at[0] - size * 1.3, at[1]
        shape = int(rng.integers(3))
        if shape == 0:
            d.ellipse((lx, ly, lx + size, ly + size), outline=col, width=max(1, round(size / 8)))
        elif shape == 1:
            d.polygon([(lx + size / 2, ly), (lx + size, ly + size), (lx, ly + size)], fill=col)
        else:
            d.rectangle((lx, ly, lx + size, ly + size), fill=col)


def _weights(rng: np.random.Generator, d: ImageDraw.ImageDraw, spots: _Spots, ink: Rgb) -> None:
    """The max gross / tare / net / cubic capacity table."""
    size = spots.face.height * float(rng.uniform(0.017, 0.03))
    gross = int(rng.choice([24000, 30480, 32500, 34000, 36000]))
    tare = int(rng.integers(1900, 4800))
    rows = [
        f"MAX.GROSS {gross} KG",
        f"{round(gross * 2.2046)} LB",
        f"TARE {tare} KG",
        f"{round(tare * 2.2046)} LB",
        f"NET {gross - tare} KG",
        f"CU.CAP {rng.uniform(28, 86):.1f} CU.M",
    ]
    rows = rows[: int(rng.integers(2, len(rows) + 1))]
    at = spots.take(size * 10, size * 1.4 * len(rows))
    if at is not None:
        for i, row in enumerate(rows):
            small_text(d, (at[0], at[1] + i * size * 1.4), row, size, ink, rng)


def _csc_plate(rng: np.random.Generator, d: ImageDraw.ImageDraw, spots: _Spots, ink: Rgb) -> None:
    """The CSC safety approval plate: a small metal rectangle with tiny print."""
    fh = spots.face.height
    pw, ph = fh * float(rng.uniform(0.08, 0.14)), fh * float(rng.uniform(0.05, 0.09))
    at = spots.take(pw, ph)
    if at is None:
        return
    d.rectangle((at[0], at[1], at[0] + pw, at[1] + ph), fill=rgb(rng, 150, 210), outline=(60, 60, 60))
    small_text(d, (at[0] + 2, at[1] + 1), "CSC SAFETY APPROVAL", ph * 0.16, (30, 30, 30), rng)
    for k in range(1, 5):
        ty = at[1] + ph * (0.2 + 0.18 * k)
        d.line((at[0] + 3, ty, at[0] + pw * rng.uniform(0.4, 0.95), ty), fill=(60, 60, 60))


def _customs_plate(rng: np.random.Generator, d: ImageDraw.ImageDraw, spots: _Spots, ink: Rgb) -> None:
    """A customs (TIR) approval plate."""
    fh = spots.face.height
    pw, ph = fh * float(rng.uniform(0.07, 0.12)), fh * float(rng.uniform(0.04, 0.06))
    at = spots.take(pw, ph)
    if at is None:
        return
    fill = (30, 60, 140) if rng.random() < 0.5 else rgb(rng, 150, 210)
    d.rectangle((at[0], at[1], at[0] + pw, at[1] + ph), fill=fill)
    text = str(rng.choice(["TIR", "CUSTOMS", "APPROVED", "UIC"]))
    small_text(d, (at[0] + 2, at[1] + 1), text, ph * 0.5, (235, 235, 235), rng)


def _hazard(rng: np.random.Generator, d: ImageDraw.ImageDraw, spots: _Spots, ink: Rgb) -> None:
    """A hazard diamond with its class number."""
    s = spots.face.height * float(rng.uniform(0.05, 0.1))
    at = spots.take(s, s)
    if at is None:
        return
    cx, cy = at[0] + s / 2, at[1] + s / 2
    col = [(210, 40, 30), (235, 150, 30), (230, 210, 40), (240, 240, 240)][int(rng.integers(4))]
    d.polygon([(cx, at[1]), (at[0] + s, cy), (cx, at[1] + s), (at[0], cy)], fill=col, outline=(20, 20, 20))
    small_text(d, (cx - s * 0.1, cy), str(int(rng.integers(1, 10))), s * 0.3, (20, 20, 20), rng)


def _barcode(rng: np.random.Generator, d: ImageDraw.ImageDraw, spots: _Spots, ink: Rgb) -> None:
    """Barcode-like stripes on a white label."""
    fh = spots.face.height
    bw, bh = fh * float(rng.uniform(0.06, 0.14)), fh * float(rng.uniform(0.03, 0.06))
    at = spots.take(bw, bh)
    if at is None:
        return
    d.rectangle((at[0], at[1], at[0] + bw, at[1] + bh), fill=(235, 235, 230))
    x = at[0] + 2
    while bh > 5 and x < at[0] + bw - 2:
        sw = float(rng.uniform(0.6, 2.5))
        d.rectangle((x, at[1] + 2, x + sw, at[1] + bh - 2), fill=(15, 15, 15))
        x += sw + float(rng.uniform(0.8, 3))


def _number(rng: np.random.Generator, d: ImageDraw.ImageDraw, spots: _Spots, ink: Rgb) -> None:
    """Another serial-looking number (a reference, a lessor's number)."""
    size = spots.face.height * float(rng.uniform(0.02, 0.045))
    text = str(rng.choice(["", "NO. ", "REF ", "CN "])) + _digits(rng, int(rng.integers(4, 9)))
    at = spots.take(size * 0.7 * len(text), size)
    if at is not None:
        small_text(d, at, text, size, ink, rng)


def _sticker(rng: np.random.Generator, d: ImageDraw.ImageDraw, spots: _Spots, ink: Rgb) -> None:
    """A sticker, or a graffiti-ish scrawl."""
    fh = spots.face.height
    sw, sh = fh * float(rng.uniform(0.04, 0.12)), fh * float(rng.uniform(0.03, 0.1))
    at = spots.take(sw, sh)
    if at is None:
        return
    if rng.random() < 0.5:
        d.rectangle((at[0], at[1], at[0] + sw, at[1] + sh), fill=rgb(rng, 120, 255))
        return
    pts = [(at[0] + float(rng.uniform(0, sw)), at[1] + float(rng.uniform(0, sh))) for _ in range(5)]
    d.line(pts, fill=rgb(rng, 0, 255), width=max(1, round(fh * 0.006)))
