"""Renders what a simulated camera sees to pixels: a truck's licence plate, a container's side.

Pure functions of ``(scene, role, seed, size)``: the same arguments always give the same frame. A frame
is an ``(h, w, 3)`` uint8 array in B, G, R memory order, like picamera2's ``RGB888``.

Where things appear is the camera installation's business: the plate camera sees the plate inside
:data:`PLATE_ROI`, the container camera sees the ISO 6346 code inside :data:`CONTAINER_ROI` (fractions of
the frame, ``x0, y0, x1, y1``), at a varying position, scale and tilt. The agent's recognition config
names the same regions (its defaults equal these). The training scripts synthesise their samples with
these very functions. The container camera's frames are painted by :mod:`hw_sim.render_container` (the
same renderer the container-code models train on), with the code pinned inside :data:`CONTAINER_ROI`.

Fonts come from Debian font packages when installed (``fonts-dejavu-core``, ``fonts-liberation2``,
``fonts-opendin``); without any, PIL's built-in font is used, so rendering never fails for lack of fonts.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from hw_sim.render_container import container_scene
from hw_sim.world import Scene

Roi = tuple[float, float, float, float]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
BgrImage = npt.NDArray[np.uint8]

PLATE_ROI: Roi = (0.30, 0.50, 0.70, 0.78)
"""Where the plate camera sees the plate (x0, y0, x1, y1 as fractions of the frame)."""

CONTAINER_ROI: Roi = (0.50, 0.08, 0.90, 0.44)
"""Where the container camera sees the painted ISO 6346 code."""

DEFAULT_SIZE = (640, 360)
"""Default frame size (width, height)."""

MAX_TILT_DEG = 2.5
"""The largest tilt given to a plate or a painted code."""

FONT_DIRS: tuple[Path, ...] = (Path("/usr/share/fonts/truetype"), Path("/usr/local/share/fonts"))
FONT_FILES: tuple[str, ...] = (
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSansCondensed-Bold.ttf",
    "dejavu/DejaVuSansMono-Bold.ttf",
    "dejavu/DejaVuSans.ttf",
    "liberation2/LiberationSans-Bold.ttf",
    "liberation2/LiberationSans-Regular.ttf",
    "liberation2/LiberationMono-Bold.ttf",
    "liberation/LiberationSans-Bold.ttf",
    "opendin/OSP-DIN.ttf",
)
"""Fonts tried, relative to each of :data:`FONT_DIRS`; the ones found are used in turn."""

_LEGENDS = ("TEXAS", "ONTARIO", "MICHIGAN", "CALIFORNIA", "QUEBEC", "NEW YORK", "ARIZONA", "MANITOBA")
_FOOTERS = ("APPORTIONED", "COMMERCIAL", "TRUCK", "PRORATE")


@cache
def find_fonts(dirs: tuple[Path, ...] = FONT_DIRS) -> tuple[Path, ...]:
    """The font files of :data:`FONT_FILES` that exist under ``dirs`` (may be empty)."""
    found: list[Path] = []
    for name in FONT_FILES:
        for d in dirs:
            p = d / name
            if p.is_file():
                found.append(p)
                break
    return tuple(found)


@cache
def load_font(path: Path | None, size: int) -> Font:
    """A font of ``size`` pixels; ``None`` (or an unreadable file) gives PIL's built-in font."""
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def roi_box(roi: Roi, width: int, height: int) -> tuple[int, int, int, int]:
    """A fractional region as pixel bounds ``(x0, y0, x1, y1)`` within a ``width`` x ``height`` frame."""
    x0, y0, x1, y1 = roi
    return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))


def render_frame(
    scene: Scene,
    role: str,
    *,
    seed: int,
    size: tuple[int, int] = DEFAULT_SIZE,
    fonts: Sequence[Path] | None = None,
) -> BgrImage:
    """The frame a camera of ``role`` (``plate`` or ``container``) captures of ``scene``.

    ``scene.plate`` / ``scene.container`` ``None`` renders an illegible (smudged or blank) plate, or a
    container side without a readable code (or no container at all).
    """
    if role not in ("plate", "container"):
        raise ValueError(f"unknown camera role {role!r}")
    rng = np.random.default_rng(seed)
    font_paths: Sequence[Path | None] = list(fonts if fonts is not None else find_fonts()) or [None]
    width, height = size
    if role == "plate":
        roi = roi_box(PLATE_ROI, width, height)
        img = _truck_front(rng, width, height)
        patch: Patch | None = _plate(scene.plate, rng, font_paths, roi)
        if patch is not None:
            piece, mask, (px, py) = patch
            img.paste(piece, (px, py), mask)
        return _camera_effects(img, rng, roi)
    roi = roi_box(CONTAINER_ROI, width, height)
    box = container_scene(rng, size, scene.container, region=roi)  # the code inside the region
    return _camera_effects(box.image, rng, roi)


# ---------------------------------------------------------------------------------------------- scene


def _colour(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(lo, hi, 3))
    return (r, g, b)


def _luma(rgb: tuple[int, ...]) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _truck_front(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Sky, road, a cab with a grille, a bumper the plate is mounted on."""
    img = Image.new("RGB", (w, h), _colour(rng, 120, 200))
    d = ImageDraw.Draw(img)
    d.rectangle((0, int(h * 0.85), w, h), fill=_colour(rng, 50, 90))  # road
    cab = _colour(rng, 20, 230)
    d.rectangle((int(w * 0.12), 0, int(w * 0.88), int(h * 0.86)), fill=cab)
    dark = tuple(max(0, c - 60) for c in cab)
    for i in range(int(rng.integers(5, 10))):  # grille bars
        y = int(h * (0.08 + i * 0.04))
        d.rectangle((int(w * 0.30), y, int(w * 0.70), y + max(2, h // 120)), fill=dark)
    for x0 in (0.15, 0.75):  # headlights
        d.ellipse((int(w * x0), int(h * 0.40), int(w * (x0 + 0.10)), int(h * 0.50)), fill=(230, 230, 210))
    d.rectangle((int(w * 0.10), int(h * 0.52), int(w * 0.90), int(h * 0.80)), fill=_colour(rng, 40, 200))
    return img


# ---------------------------------------------------------------------------------------------- text

Patch = tuple[Image.Image, Image.Image, tuple[int, int]]


def _text_size(font: Font, text: str) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = font.getbbox(text)
    return int(x0), int(y0), int(x1), int(y1)


def _fit_font(path: Path | None, text: str, max_w: float, max_h: float) -> Font:
    """The largest font of ``path`` whose ``text`` fits in ``max_w`` x ``max_h`` pixels."""
    size = max(6, int(max_h * 1.4))
    while size > 6:
        font = load_font(path, size)
        x0, y0, x1, y1 = _text_size(font, text)
        if x1 - x0 <= max_w and y1 - y0 <= max_h:
            return font
        size -= 1 if size < 20 else max(1, size // 12)
    return load_font(path, 6)


def _draw_centered(
    d: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    text: str,
    font: Font,
    fill: tuple[int, int, int],
) -> None:
    x0, y0, x1, y1 = _text_size(font, text)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    d.text((cx - (x0 + x1) / 2, cy - (y0 + y1) / 2), text, font=font, fill=fill)


def _place(
    piece: Image.Image, mask: Image.Image, rng: np.random.Generator, roi: tuple[int, int, int, int]
) -> Patch:
    """Tilt ``piece`` (and its paste ``mask``) slightly and put it at a random position inside ``roi``."""
    angle = float(rng.uniform(-MAX_TILT_DEG, MAX_TILT_DEG))
    mask = mask.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    piece = piece.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    rx0, ry0, rx1, ry1 = roi
    slack_x = max(0, (rx1 - rx0) - piece.width)
    slack_y = max(0, (ry1 - ry0) - piece.height)
    px = rx0 + int(rng.integers(0, slack_x + 1))
    py = ry0 + int(rng.integers(0, slack_y + 1))
    return piece, mask, (px, py)


def _plate(
    text: str | None, rng: np.random.Generator, fonts: Sequence[Path | None], roi: tuple[int, int, int, int]
) -> Patch:
    """A North American-style plate: legend on top, the number big in the middle, maybe a footer."""
    rw, rh = roi[2] - roi[0], roi[3] - roi[1]
    pw = min(rw * rng.uniform(0.60, 0.86), rh * 0.9 * 2.0)
    ph = pw / 2.0
    pw_i, ph_i = max(8, int(pw)), max(4, int(ph))
    plate = Image.new("RGB", (pw_i, ph_i), _colour(rng, 205, 256))
    d = ImageDraw.Draw(plate)
    if rng.random() < 0.6:
        d.rounded_rectangle(
            (1, 1, pw_i - 2, ph_i - 2),
            radius=max(1, ph_i // 10),
            outline=_colour(rng, 0, 90),
            width=max(1, ph_i // 30),
        )
    accent = _colour(rng, 0, 150)
    if rng.random() < 0.7:
        font = _fit_font(fonts[int(rng.integers(len(fonts)))], str(rng.choice(_LEGENDS)), pw * 0.6, ph * 0.15)
        _draw_centered(d, (0, ph * 0.04, pw, ph * 0.22), str(rng.choice(_LEGENDS)), font, accent)
    if rng.random() < 0.4:
        font = _fit_font(fonts[int(rng.integers(len(fonts)))], "APPORTIONED", pw * 0.55, ph * 0.12)
        _draw_centered(d, (0, ph * 0.80, pw, ph * 0.96), str(rng.choice(_FOOTERS)), font, accent)
    shown = text if text is not None else _random_plate(rng)
    if text is not None and len(shown) >= 5 and rng.random() < 0.3:  # a dash or space, as plates print
        cut = int(rng.integers(2, len(shown) - 1))
        shown = shown[:cut] + str(rng.choice([" ", "-"])) + shown[cut:]
    ink = _colour(rng, 0, 70)
    font = _fit_font(
        fonts[int(rng.integers(len(fonts)))], shown, pw * rng.uniform(0.78, 0.9), ph * rng.uniform(0.40, 0.52)
    )
    if text is not None or rng.random() < 0.7:
        _draw_centered(d, (0, ph * 0.22, pw, ph * 0.80), shown, font, ink)
    if text is None:
        plate = _smudge(plate, rng)
    return _place(plate, Image.new("L", plate.size, 255), rng, roi)


def _random_plate(rng: np.random.Generator) -> str:
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(str(c) for c in rng.choice(list(chars), int(rng.integers(5, 8))))


def _smudge(plate: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Make a plate illegible: heavy blur and mud blotches over the number."""
    w, h = plate.size
    plate = plate.filter(ImageFilter.GaussianBlur(radius=max(2.0, h * rng.uniform(0.15, 0.3))))
    d = ImageDraw.Draw(plate)
    mud = _colour(rng, 60, 140)
    for _ in range(int(rng.integers(4, 9))):
        cx, cy = rng.uniform(0, w), rng.uniform(h * 0.25, h * 0.8)
        r = rng.uniform(h * 0.15, h * 0.35)
        d.ellipse((cx - r * 1.6, cy - r, cx + r * 1.6, cy + r), fill=mud)
    return plate.filter(ImageFilter.GaussianBlur(radius=max(1.0, h * 0.06)))


# ---------------------------------------------------------------------------------------------- camera


_NOISE_SHAPE = (720, 1280, 3)


@cache
def _noise_bank() -> npt.NDArray[np.float32]:
    """Unit Gaussian sensor noise, drawn once from a fixed seed; frames take random windows of it."""
    return np.random.default_rng(0x5EED).standard_normal(_NOISE_SHAPE, dtype=np.float32)


def _camera_effects(img: Image.Image, rng: np.random.Generator, focus: tuple[int, int, int, int]) -> BgrImage:
    """Lens blur around the focus region, exposure, sensor noise; returns B, G, R memory order."""
    blur = float(rng.uniform(0.0, 1.2))
    if blur > 0.3:
        m = int(blur * 3) + 2
        box = (
            max(0, focus[0] - m),
            max(0, focus[1] - m),
            min(img.width, focus[2] + m),
            min(img.height, focus[3] + m),
        )
        img.paste(img.crop(box).filter(ImageFilter.GaussianBlur(radius=blur)), box[:2])
    gain = float(rng.uniform(0.65, 1.25))
    offset = float(rng.uniform(-25, 25))
    lut = [min(255, max(0, round(v * gain + offset))) for v in range(256)] * 3
    r, g, b = img.point(lut).split()
    bgr = np.asarray(Image.merge("RGB", (b, g, r)))
    sigma = float(rng.uniform(0.0, 7.0))
    if sigma <= 0.5:
        return np.array(bgr)
    h, w = bgr.shape[:2]
    bank = _noise_bank()
    if h <= bank.shape[0] and w <= bank.shape[1]:
        oy = int(rng.integers(0, bank.shape[0] - h + 1))
        ox = int(rng.integers(0, bank.shape[1] - w + 1))
        noise = bank[oy : oy + h, ox : ox + w]
    else:
        noise = rng.standard_normal((h, w, 3), dtype=np.float32)
    out = bgr.astype(np.int16) + (noise * sigma).astype(np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)
