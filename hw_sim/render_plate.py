"""North American licence plates painted from scratch: the variety a plate reader must survive.

:func:`render_plate` paints one plate (RGB, about 2:1) from a seeded generator: a background (flat,
gradient, or a procedural picture: mountains, a skyline, a sun, waves, a big emblem, coloured bands),
a state or province name and a slogan in several faces, sizes and positions, the registration flat or
embossed in a condensed face with a dash, space, dot or small emblem between its groups, small stacked
characters beside it, stickers, bolts, dirt, and sometimes a plain or dealer frame with text.

The label is what an officer keys in: the registration's characters only (``[A-Z0-9]``), never the
state name, slogan, sticker or frame text or the small stacked characters. The registration's box in
the plate image is returned with it, so a scene can place the plate and know where its text is.

Background *families* and registration faces are named, so that validation can use ones training never
sees (:data:`BACKGROUNDS_HELD_OUT`, :data:`hw_sim.render_fonts.REGISTRATION_HELD_OUT`).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from hw_sim import render_fonts as fonts
from hw_sim.render_fonts import Font, FontSpec

Rgb = tuple[int, int, int]
Box = tuple[int, int, int, int]

BACKGROUNDS_TRAIN: tuple[str, ...] = ("flat", "gradient", "mountains", "skyline", "sun", "emblem", "bands")
BACKGROUNDS_HELD_OUT: tuple[str, ...] = ("waves", "dots")
"""Picture families only validation draws (held out from training)."""

REGIONS = (
    "ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "CALIFORNIA", "COLORADO", "CONNECTICUT", "DELAWARE",
    "FLORIDA", "GEORGIA", "IDAHO", "ILLINOIS", "INDIANA", "IOWA", "KANSAS", "KENTUCKY", "LOUISIANA",
    "MAINE", "MARYLAND", "MICHIGAN", "MINNESOTA", "MISSOURI", "MONTANA", "NEBRASKA", "NEVADA",
    "New Jersey", "New Mexico", "NEW YORK", "Ohio", "OKLAHOMA", "OREGON", "Pennsylvania", "TEXAS",
    "UTAH", "VERMONT", "VIRGINIA", "Washington", "WISCONSIN", "WYOMING", "ONTARIO", "QUÉBEC",
    "ALBERTA", "British Columbia", "MANITOBA", "Saskatchewan", "NOVA SCOTIA", "New Brunswick",
)  # fmt: skip
SLOGANS = (
    "Land of Lincoln", "Sunshine State", "Yours to Discover", "Je me souviens", "Live Free or Die",
    "Great Lakes State", "The Lone Star State", "Wild Rose Country", "Friendly Manitoba",
    "Famous Potatoes", "Grand Canyon State", "Garden State", "Big Sky Country", "APPORTIONED",
    "COMMERCIAL", "TRUCK", "PRORATE", "FARM", "visitPA.com", "Empire State", "Beautiful", "Canada",
    "Peach State", "America's Dairyland", "Crossroads of America", "Green Mountains", "TRAILER",
)  # fmt: skip
DEALERS = ("SMITH FORD", "AUTO MALL", "CITY KIA", "TRUCK CENTER", "PETERBILT", "FREIGHTLINER",
           "555-0199", "KENWORTH OF TEXAS", "VOLVO TRUCKS", "MACK SALES")  # fmt: skip
STACKED = ("PC", "TR", "CM", "DV", "LT", "AP", "IRP", "CO", "PR")
PLATE_SIZE = (256, 128)
"""Width and height the plate is painted at (before a scene scales it)."""


@dataclass(frozen=True)
class Plate:
    """A painted plate: the image, its label and where the registration is painted in it."""

    image: Image.Image  # RGB, the plate with its frame (if any)
    text: str  # the label: registration characters only
    text_box: Box  # the registration's bounds in ``image``
    plate_box: Box  # the plate itself (without the frame) in ``image``


def random_registration(rng: np.random.Generator) -> str:
    """A registration: 1-8 characters, random or in the usual letter/digit group shapes."""
    n = int(rng.choice(8, p=(0.02, 0.03, 0.05, 0.10, 0.15, 0.25, 0.28, 0.12))) + 1
    kind = rng.random()
    if kind < 0.4:
        return "".join(str(c) for c in rng.choice(list(string.ascii_uppercase + string.digits), n))
    if kind < 0.7:
        k = int(rng.integers(0, n + 1))
        return _chars(rng, string.ascii_uppercase, k) + _chars(rng, string.digits, n - k)
    k = int(rng.integers(0, n + 1))
    return _chars(rng, string.digits, k) + _chars(rng, string.ascii_uppercase, n - k)


def _chars(rng: np.random.Generator, alphabet: str, n: int) -> str:
    return "".join(str(c) for c in rng.choice(list(alphabet), n)) if n > 0 else ""


def _rgb(rng: np.random.Generator, lo: int, hi: int) -> Rgb:
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return (r, g, b)


def _mix(a: Rgb, b: Rgb, t: float) -> Rgb:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _luma(c: Rgb) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


# ------------------------------------------------------------------------------------------ pictures


Tint = Callable[[], Rgb]


def _gradient(
    d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, base: Rgb, tint: Tint
) -> None:
    top, bottom = tint(), tint()
    vertical = rng.random() < 0.7
    n = h if vertical else w
    for i in range(n):
        c = _mix(top, bottom, i / max(1, n - 1))
        d.line((0, i, w, i) if vertical else (i, 0, i, h), fill=c)


def _mountains(
    d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, base: Rgb, tint: Tint
) -> None:
    sky = tint()
    d.rectangle((0, 0, w, h), fill=sky)
    for layer in range(int(rng.integers(1, 4))):
        pts: list[tuple[float, float]] = [(0, h)]
        y_base = h * rng.uniform(0.45, 0.85)
        for x in np.linspace(0, w, int(rng.integers(4, 9))):
            pts.append((float(x), float(y_base - rng.uniform(0, h * 0.35))))
        pts.append((w, h))
        d.polygon(pts, fill=_mix(tint(), base, 0.2 * layer))


def _skyline(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, base: Rgb, tint: Tint) -> None:
    d.rectangle((0, 0, w, h), fill=tint())
    x = 0.0
    ground = h * rng.uniform(0.6, 0.95)
    colour = tint()
    while x < w:
        bw = w * rng.uniform(0.03, 0.09)
        d.rectangle((x, ground - h * rng.uniform(0.1, 0.5), x + bw, h), fill=colour)
        x += bw * rng.uniform(1.0, 1.6)


def _sun(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, base: Rgb, tint: Tint) -> None:
    cx, cy, r = w * rng.uniform(0.2, 0.8), h * rng.uniform(0.2, 0.7), h * rng.uniform(0.15, 0.45)
    colour = tint()
    for k in range(int(rng.integers(0, 14))):
        a = k * np.pi / 7
        d.line((cx, cy, cx + np.cos(a) * w, cy + np.sin(a) * w), fill=colour, width=int(rng.integers(2, 8)))
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)


def _emblem(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, base: Rgb, tint: Tint) -> None:
    cx, cy, r = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.35, 0.65), h * rng.uniform(0.25, 0.6)
    sides = int(rng.integers(3, 9))
    star = rng.random() < 0.5
    pts = []
    for k in range(sides * (2 if star else 1)):
        rr = r * (0.45 if star and k % 2 else 1.0)
        a = k * np.pi / (sides if star else sides / 2) - np.pi / 2
        pts.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
    d.polygon(pts, fill=tint(), outline=tint())


def _bands(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, base: Rgb, tint: Tint) -> None:
    for _ in range(int(rng.integers(1, 4))):
        y0 = h * rng.uniform(0, 0.9)
        d.rectangle((0, y0, w, y0 + h * rng.uniform(0.05, 0.22)), fill=tint())


def _waves(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, base: Rgb, tint: Tint) -> None:
    colour = tint()
    for k in range(int(rng.integers(2, 6))):
        phase, amp, y0 = rng.uniform(0, 6.3), h * rng.uniform(0.03, 0.12), h * rng.uniform(0.2, 1.0)
        xs = np.linspace(0, w, 40)
        crest: list[tuple[float, float]] = [
            (float(x), float(y0 + amp * np.sin(x / w * 6.3 * (k + 1) + phase))) for x in xs
        ]
        d.polygon([(0, h), *crest, (w, h)], fill=_mix(colour, base, 0.2 * k))


def _dots(d: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, base: Rgb, tint: Tint) -> None:
    colour = tint()
    for _ in range(int(rng.integers(10, 60))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, h * 0.08)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)


PAINTERS: dict[str, Callable[[ImageDraw.ImageDraw, np.random.Generator, int, int, Rgb, Tint], None]] = {
    "gradient": _gradient,
    "mountains": _mountains,
    "skyline": _skyline,
    "sun": _sun,
    "emblem": _emblem,
    "bands": _bands,
    "waves": _waves,
    "dots": _dots,
}
"""Background family -> the painter that draws it (``flat`` paints nothing over the base)."""


def _background(rng: np.random.Generator, family: str, w: int, h: int, base: Rgb) -> Image.Image:
    """The plate's ground: ``family`` painted around ``base``, kept within reach of the base's lightness."""
    img = Image.new("RGB", (w, h), base)
    d = ImageDraw.Draw(img)
    light = _luma(base) > 128
    strength = float(rng.uniform(0.1, 0.5))

    def tint() -> Rgb:
        c = _rgb(rng, 0, 256)
        return _mix(base, c, strength)

    painter = PAINTERS.get(family)
    if painter is not None:
        painter(d, rng, w, h, base, tint)
    if not light or rng.random() < 0.5:
        return img
    return img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 1.5))))


# ------------------------------------------------------------------------------------------ text


def _fit(spec: FontSpec | None, text: str, max_w: float, max_h: float) -> Font:
    """The largest size of ``spec`` whose ``text`` fits ``max_w`` x ``max_h``."""
    lo, hi = 6, max(7, int(max_h * 1.6))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        x0, y0, x1, y1 = fonts.load(spec, mid).getbbox(text)
        if x1 - x0 <= max_w and y1 - y0 <= max_h:
            lo = mid
        else:
            hi = mid - 1
    return fonts.load(spec, lo)


def _text_line(
    d: ImageDraw.ImageDraw,
    text: str,
    spec: FontSpec | None,
    box: tuple[float, float, float, float],
    fill: Rgb,
    align: float = 0.5,
) -> None:
    """``text`` fitted into ``box``; ``align`` 0 = left, 0.5 = centre, 1 = right."""
    font = _fit(spec, text, box[2] - box[0], box[3] - box[1])
    x0, y0, x1, y1 = font.getbbox(text)
    x = box[0] + (box[2] - box[0] - (x1 - x0)) * align - x0
    y = (box[1] + box[3]) / 2 - (y0 + y1) / 2
    d.text((x, y), text, font=font, fill=fill)


def _registration_mask(
    rng: np.random.Generator, text: str, spec: FontSpec | None, char_h: int
) -> tuple[Image.Image, list[tuple[int, int]]]:
    """The registration painted white on black at ``char_h`` pixels, condensed, with separators.

    Returns the mask and the x-spans of separators that are small emblems (to paint in colour).
    """
    font = fonts.load(spec, max(6, int(char_h * 1.35)))
    _, cy0, _, cy1 = font.getbbox("0A")
    scale = char_h / max(1, cy1 - cy0)
    font = fonts.load(spec, max(6, int(char_h * 1.35 * scale)))
    cy0, cy1 = (int(v) for v in font.getbbox("0A")[1::2])
    squeeze = float(rng.uniform(0.62, 1.05))
    spacing = char_h * float(rng.uniform(0.02, 0.18))
    cut = -1
    sep = ""
    if len(text) >= 3 and rng.random() < 0.6:
        cut = int(rng.integers(1, len(text)))
        sep = str(rng.choice([" ", "-", "·", "emblem"]))
    glyphs: list[Image.Image] = []
    emblem_spans: list[tuple[int, int]] = []
    height = cy1 - cy0 + 4
    for i, ch in enumerate(text):
        if i == cut:
            glyphs.append(_separator(sep, char_h, height, cy0, font))
        x0, x1 = (int(v) for v in font.getbbox(ch)[0::2])
        g = Image.new("L", (max(1, x1 - x0 + 2), height), 0)
        ImageDraw.Draw(g).text((1 - x0, 2 - cy0), ch, font=font, fill=255)
        glyphs.append(g.resize((max(1, round(g.width * squeeze)), height), Image.Resampling.BILINEAR))
    total = sum(g.width for g in glyphs) + int(spacing * (len(glyphs) - 1))
    mask = Image.new("L", (max(1, total), height), 0)
    x = 0
    for i, g in enumerate(glyphs):
        mask.paste(g, (x, 0))
        if cut >= 0 and sep == "emblem" and i == cut:
            emblem_spans.append((x, x + g.width))
        x += g.width + int(spacing)
    return mask, emblem_spans


def _separator(kind: str, char_h: int, height: int, top: int, font: Font) -> Image.Image:
    """A space, dash, dot or small emblem between two groups (as a mask glyph)."""
    w = max(2, int(char_h * (0.45 if kind in (" ", "emblem") else 0.35)))
    g = Image.new("L", (w, height), 0)
    d = ImageDraw.Draw(g)
    mid = height / 2
    if kind == "-":
        d.rectangle((w * 0.15, mid - char_h * 0.05, w * 0.85, mid + char_h * 0.05), fill=255)
    elif kind == "·":
        r = char_h * 0.07
        d.ellipse((w / 2 - r, mid - r, w / 2 + r, mid + r), fill=255)
    elif kind == "emblem":
        r = w * 0.45
        d.polygon([(w / 2, mid - r), (w / 2 + r, mid), (w / 2, mid + r), (w / 2 - r, mid)], fill=255)
    return g


# ------------------------------------------------------------------------------------------ plate


def render_plate(
    rng: np.random.Generator,
    text: str | None = None,
    *,
    registration_fonts: tuple[FontSpec, ...] | None = None,
    backgrounds: tuple[str, ...] = BACKGROUNDS_TRAIN,
) -> Plate:
    """One plate showing ``text`` (a random registration when ``None``), drawn from ``rng``."""
    text = text if text is not None else random_registration(rng)
    faces = fonts.installed(registration_fonts or fonts.REGISTRATION_TRAIN) or (None,)
    legend_faces = fonts.installed(fonts.LEGEND) or (None,)
    w, h = PLATE_SIZE[0] + int(rng.integers(-16, 24)), PLATE_SIZE[1]
    dark = rng.random() < 0.15
    if dark:
        base = _rgb(rng, 10, 110)
    elif rng.random() < 0.5:  # most plates are white or nearly
        base = _mix((255, 255, 255), _rgb(rng, 150, 256), float(rng.uniform(0.0, 0.4)))
    else:
        base = _rgb(rng, 170, 256)
    ink = _rgb(rng, 215, 256) if dark else _mix(_rgb(rng, 0, 160), (0, 0, 0), float(rng.uniform(0.2, 0.9)))
    accent = _rgb(rng, 150, 256) if dark else _mix(_rgb(rng, 0, 256), (0, 0, 0), float(rng.uniform(0, 0.6)))
    family = str(rng.choice(list(backgrounds)))
    img = _background(rng, family, w, h, base)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.5:  # a printed rim
        d.rounded_rectangle(
            (2, 2, w - 3, h - 3), radius=int(h * 0.08), outline=accent, width=int(rng.integers(1, 4))
        )
    legend_top = rng.random() < 0.75
    legend = str(rng.choice(REGIONS))
    legend_face = legend_faces[int(rng.integers(len(legend_faces)))]
    lh = h * float(rng.uniform(0.12, 0.24))
    band = (
        (w * 0.08, h * 0.04, w * 0.92, h * 0.04 + lh)
        if legend_top
        else (w * 0.1, h * 0.96 - lh, w * 0.9, h * 0.96)
    )
    if rng.random() < 0.92:
        _text_line(d, legend, legend_face, band, accent, float(rng.choice([0.5, 0.5, 0.5, 0.0, 1.0])))
    if rng.random() < 0.6:
        slogan = str(rng.choice(SLOGANS))
        sh = h * float(rng.uniform(0.07, 0.14))
        sb = (
            (w * 0.15, h * 0.95 - sh, w * 0.85, h * 0.95)
            if legend_top
            else (w * 0.15, h * 0.05, w * 0.85, h * 0.05 + sh)
        )
        _text_line(d, slogan, legend_faces[int(rng.integers(len(legend_faces)))], sb, accent)
    # the registration, in the band between legend and slogan
    face = faces[int(rng.integers(len(faces)))]
    char_h = int(h * rng.uniform(0.36, 0.52))
    mask, emblems = _registration_mask(rng, text, face, char_h)
    stacked = rng.random() < 0.2
    avail_w = w * (0.70 if stacked else 0.86)
    if mask.width > avail_w:
        mask = mask.resize((int(avail_w), mask.height), Image.Resampling.BILINEAR)
    cx = w / 2 + (w * 0.06 if stacked else 0.0) * (1 if rng.random() < 0.5 else -1)
    tx = int(cx - mask.width / 2 + rng.uniform(-w * 0.03, w * 0.03))
    ty = int(h * 0.52 - mask.height / 2 + rng.uniform(-h * 0.05, h * 0.05))
    embossed = rng.random() < 0.35
    if embossed:  # raised letters: a light edge one way, a shadow the other
        off = max(1, char_h // 18)
        img.paste(_mix(base, (255, 255, 255), 0.6), (tx - off, ty - off), mask)
        img.paste(_mix(ink, (0, 0, 0), 0.5), (tx + off, ty + off), mask)
    if rng.random() < 0.1:  # an outline face
        img.paste(ink, (tx, ty), mask.filter(ImageFilter.MaxFilter(3)))
        img.paste(base, (tx, ty), mask.filter(ImageFilter.MinFilter(3)))
    else:
        img.paste(ink, (tx, ty), mask)
    for a, b in emblems:  # a small coloured emblem between the groups
        d.ellipse((tx + a, ty + mask.height * 0.3, tx + b, ty + mask.height * 0.7), fill=_rgb(rng, 0, 256))
    bbox = mask.getbbox() or (0, 0, mask.width, mask.height)
    text_box = (tx + bbox[0], ty + bbox[1], tx + bbox[2], ty + bbox[3])
    if stacked:  # small characters stacked beside the registration (not part of it)
        small = str(rng.choice(STACKED))
        sw = w * 0.07
        left = text_box[0] > w - text_box[2]
        x0 = text_box[0] - sw * 1.3 if left else text_box[2] + sw * 0.3
        step = (text_box[3] - text_box[1]) / len(small)
        for k, ch in enumerate(small):
            _text_line(d, ch, face, (x0, text_box[1] + k * step, x0 + sw, text_box[1] + (k + 1) * step), ink)
    _stickers(rng, d, w, h, legend_faces)
    if rng.random() < 0.6:
        _bolts(rng, d, w, h)
    if rng.random() < 0.3:
        img = _dirt(rng, img)
    return _framed(rng, img, text, text_box, legend_faces)


def _stickers(
    rng: np.random.Generator, d: ImageDraw.ImageDraw, w: int, h: int, faces: tuple[FontSpec | None, ...]
) -> None:
    for _ in range(int(rng.choice(3, p=(0.5, 0.35, 0.15)))):
        sw, sh = w * rng.uniform(0.08, 0.15), h * rng.uniform(0.12, 0.22)
        x = float(rng.choice([w * 0.03, w * 0.97 - sw, w * rng.uniform(0.03, 0.8)]))
        y = float(rng.choice([h * 0.04, h * 0.96 - sh]))
        colour = _rgb(rng, 0, 256)
        d.rectangle((x, y, x + sw, y + sh), fill=colour)
        label = str(rng.choice(["24", "25", "JAN", "MAR", "OCT", "26", "7"]))
        ink = (0, 0, 0) if _luma(colour) > 120 else (255, 255, 255)
        _text_line(
            d, label, faces[int(rng.integers(len(faces)))], (x + 2, y + 2, x + sw - 2, y + sh - 2), ink
        )


def _bolts(rng: np.random.Generator, d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    r = h * rng.uniform(0.03, 0.06)
    colour = _rgb(rng, 60, 200)
    rows = (0.1, 0.9) if rng.random() < 0.4 else (0.1,)
    for fy in rows:
        for fx in (0.22, 0.78):
            cx, cy = w * fx, h * fy
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour, outline=(30, 30, 30))


def _dirt(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """Mud and wear: soft blotches blended into the plate."""
    w, h = img.size
    layer = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(2, 10))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(h * 0.05, h * 0.3)
        d.ellipse((cx - r * 1.5, cy - r, cx + r * 1.5, cy + r), fill=int(rng.integers(30, 110)))
    layer = layer.filter(ImageFilter.GaussianBlur(h * 0.06))
    mud = Image.new("RGB", (w, h), _rgb(rng, 60, 130))
    return Image.composite(mud, img, layer)


def _framed(
    rng: np.random.Generator, img: Image.Image, text: str, text_box: Box, faces: tuple[FontSpec | None, ...]
) -> Plate:
    """A plain or dealer frame around the plate, sometimes; the boxes move with it."""
    w, h = img.size
    if rng.random() >= 0.4:
        return Plate(img, text, text_box, (0, 0, w, h))
    side = int(h * rng.uniform(0.03, 0.08))
    top = int(h * rng.uniform(0.03, 0.12))
    bottom = int(h * rng.uniform(0.05, 0.2))
    fw, fh = w + 2 * side, h + top + bottom
    colour = _rgb(rng, 0, 60) if rng.random() < 0.6 else _rgb(rng, 120, 230)
    frame = Image.new("RGB", (fw, fh), colour)
    frame.paste(img, (side, top))
    d = ImageDraw.Draw(frame)
    overlap = int(h * rng.uniform(0.0, 0.12))  # a frame's bars cover the plate's edges
    if overlap:
        d.rectangle((0, fh - bottom - overlap, fw, fh), fill=colour)
        d.rectangle((0, 0, fw, top + overlap // 2), fill=colour)
    ink = (230, 230, 230) if _luma(colour) < 128 else (20, 20, 20)
    if rng.random() < 0.7:
        _text_line(d, str(rng.choice(DEALERS)), faces[int(rng.integers(len(faces)))],
                   (fw * 0.15, fh - bottom - overlap + 2, fw * 0.85, fh - 2), ink)  # fmt: skip
    if rng.random() < 0.3 and top + overlap // 2 > 6:
        _text_line(d, str(rng.choice(DEALERS)), faces[int(rng.integers(len(faces)))],
                   (fw * 0.2, 1, fw * 0.8, top + overlap // 2 - 1), ink)  # fmt: skip
    x0, y0, x1, y1 = text_box
    return Plate(frame, text, (x0 + side, y0 + top, x1 + side, y1 + top), (side, top, side + w, top + h))
