"""What a lane's container camera sees: a shipping container's doors or side with its ISO 6346 code.

:func:`render_container` paints, from a seeded generator, a yard (sky, asphalt, distant stacks, a
warehouse or a night yard), sometimes a second container beside or behind carrying its own smaller
code, a chassis, and the container itself (:mod:`hw_sim.render_door`: corrugated walls or doors with
locking bars, handles, cam keepers and hinges, in real line paints, with rust, dirt, dents and patches).
On it go the code label (:mod:`hw_sim.render_label`) and the distractors a door carries: operator name
and logo, weight tables, CSC and customs plates, hazard diamonds, barcodes, serial-like numbers,
stickers and graffiti. The code
is painted ``one_line`` (``MSCU 123456 5``), ``two_line`` (owner and category above serial and check
digit) or ``vertical`` (one character per line on a corner post or door edge), the check digit often
boxed, in a DIN-like, condensed or stencil face (and a simulated stencil cut on any face), with the
size/type code (``45G1``) below or beside it on most boxes. The whole scene is then seen off-axis
(perspective, rotation) and damaged by the camera (blur, motion blur, glare, shadow, low light, IR,
noise, JPEG).

The label is the 11 code characters as painted, without spaces (``MSCU1234565``); never the size/type
code, the operator name, other numbers or the second container's code. ``code_box`` is the tight box of
all painted code characters (both lines, the check-digit box included) after perspective, so a
localiser can train on it; about 6 % of images carry no legible code (``code=None``, layout ``none``).
``held_out=True`` paints with faces, paints and backgrounds training never sees, so a validation set
predicts accuracy on unseen styles. The same generator state always gives the same pixels.

Inspect renders with ``python -m hw_sim.render_container --out DIR --count N --seed S [--held-out]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from edge_agent.codes import check_digit
from hw_sim import render_door as door
from hw_sim.render_damage import perspective_coeffs, random_quad
from hw_sim.render_door import Face, Rect
from hw_sim.render_label import Label, paint_label

BgrImage = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]
LAYOUTS: tuple[str, ...] = ("one_line", "two_line", "vertical")
SIZE_TYPES: tuple[tuple[str, float], ...] = (
    ("22G1", 0.22),
    ("42G1", 0.14),
    ("45G1", 0.22),
    ("L5G1", 0.04),
    ("45R1", 0.08),
    ("22R1", 0.03),
    ("22T6", 0.03),
    ("42U1", 0.03),
    ("22U1", 0.02),
    ("22P1", 0.02),
    ("45U6", 0.02),
    ("42P1", 0.02),
    ("25G1", 0.03),
    ("45P3", 0.02),
    ("22G0", 0.04),
    ("42G0", 0.04),
    ("L5R1", 0.02),
)
NO_CODE_SHARE = 0.06
"""Share of random images with no legible code (bare side, chassis without a box, code hidden)."""


class _Random:
    """The default of ``code`` / ``size_type``: draw a random one."""

    def __repr__(self) -> str:
        return "RANDOM"


RANDOM: Final = _Random()


@dataclass(frozen=True)
class ContainerImage:
    """A rendered frame and its label: the code as painted, the layout, and the boxes in the image."""

    image: BgrImage
    code: str | None  # the 11-char code as painted (None: no legible code painted)
    size_type: str | None  # e.g. "45G1" when painted
    layout: str  # "one_line" | "two_line" | "vertical" | "none"
    code_box: Box | None  # tight box around all painted code characters, after perspective
    size_type_box: Box | None  # tight box around the size/type code, after perspective


@dataclass(frozen=True)
class ContainerScene:
    """The painted scene before camera damage (RGB), with its label; :func:`render_container` damages it."""

    image: Image.Image
    code: str | None
    size_type: str | None
    layout: str
    code_box: Box | None
    size_type_box: Box | None
    letter_px: float  # the code's letter height in the frame (0 without a code)


def random_code(rng: np.random.Generator, *, valid: bool = True) -> str:
    """Owner code (3 letters), category (mostly ``U``), 6-digit serial and the ISO 6346 check digit.

    ``valid=False`` gives a wrong check digit.
    """
    owner = "".join(str(c) for c in rng.choice(list(string.ascii_uppercase), 3))
    cat = str(rng.choice(["U", "J", "Z"], p=[0.94, 0.03, 0.03]))
    head = owner + cat + "".join(str(c) for c in rng.choice(list(string.digits), 6))
    digit = check_digit(head)
    if not valid:
        digit = (digit + int(rng.integers(1, 10))) % 10
    return head + str(digit)


def random_size_type(rng: np.random.Generator) -> str:
    """A size/type code as painted on real boxes (``22G1``, ``45G1``, ``L5G1``, ``45R1``, ...)."""
    p = np.array([w for _, w in SIZE_TYPES])
    return SIZE_TYPES[int(rng.choice(len(SIZE_TYPES), p=p / p.sum()))][0]


# ---------------------------------------------------------------------------------------------- geometry


def _apply(c: tuple[float, ...], x: float, y: float) -> tuple[float, float]:
    """Point ``(x, y)`` under the perspective ``c`` (PIL coefficient order)."""
    a, b, cc, d, e, f, g, h = c
    s = g * x + h * y + 1.0
    return (a * x + b * y + cc) / s, (d * x + e * y + f) / s


def _bounds(c: tuple[float, ...], rects: Sequence[Rect]) -> tuple[float, float, float, float]:
    pts = [
        _apply(c, x, y) for r in rects for x, y in ((r[0], r[1]), (r[2], r[1]), (r[2], r[3]), (r[0], r[3]))
    ]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def _box(b: tuple[float, float, float, float], w: int, h: int) -> Box:
    return (
        max(0, int(np.floor(b[0]))),
        max(0, int(np.floor(b[1]))),
        min(w, int(np.ceil(b[2]))),
        min(h, int(np.ceil(b[3]))),
    )


def _shift_into(lo: float, hi: float, a: float, b: float, rng: np.random.Generator, free: bool) -> float:
    """How far to move ``[lo, hi]`` so that it lies in ``[a, b]`` (random within the slack if ``free``)."""
    if hi - lo > b - a:
        return (a + b) / 2 - (lo + hi) / 2
    if free:
        return float(rng.uniform(a - lo, b - hi))
    return max(0.0, a - lo) + min(0.0, b - hi)


# ---------------------------------------------------------------------------------------------- the scene


def _resolve(
    rng: np.random.Generator,
    code: str | _Random | None,
    size_type: str | _Random | None,
    layout: str | None,
    pinned: bool,
) -> tuple[str | None, str | None, str]:
    """The code, size/type and layout to paint: the given ones, or random ones where not given."""
    if layout is not None and layout not in (*LAYOUTS, "none"):
        raise ValueError(f"unknown layout {layout!r}")
    if isinstance(code, _Random):
        code = (
            None
            if (layout == "none" or (layout is None and rng.random() < NO_CODE_SHARE))
            else random_code(rng)
        )
    if code is not None and len(code) != 11:
        raise ValueError(f"a container code has 11 characters, not {code!r}")
    if isinstance(size_type, _Random):
        size_type = random_size_type(rng) if rng.random() < 0.7 else None
    if code is None:
        layout = "none"
    elif layout is None or layout == "none":
        choices = ("one_line", "two_line") if pinned else LAYOUTS
        p = (0.5, 0.5) if pinned else (0.45, 0.35, 0.2)
        layout = str(rng.choice(choices, p=p))
    return code, size_type, layout


def container_scene(
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 360),
    code: str | _Random | None = RANDOM,
    *,
    size_type: str | _Random | None = RANDOM,
    layout: str | None = None,
    held_out: bool = False,
    region: tuple[int, int, int, int] | None = None,
) -> ContainerScene:
    """The undamaged scene of :func:`render_container`; ``region`` pins the code inside that frame box.

    With ``region`` the scene is a lane camera's view (the box square to the camera, large letters), and
    the code's text changes no pixel outside the label.
    """
    w, h = size
    pinned = region is not None
    code, size_type, layout = _resolve(rng, code, size_type, layout, pinned)
    none_mode = str(rng.choice(["bare", "hidden", "chassis"], p=[0.5, 0.3, 0.2])) if code is None else ""

    margin = 0.2
    ww, wh = round(w * (1 + 2 * margin)), round(h * (1 + 2 * margin))
    ox, oy = w * margin, h * margin  # frame origin in world coordinates
    world = Image.new("RGB", (ww, wh))
    family = door.BACKGROUNDS_HELD_OUT if held_out else door.BACKGROUNDS_TRAIN
    door.background(rng, world, str(rng.choice(family)), held_out)

    kind = "doors" if rng.random() < 0.6 else "side"
    fh = h * (float(rng.uniform(0.75, 1.05)) if pinned else float(rng.uniform(0.45, 1.25)))
    aspect = float(rng.uniform(0.84, 0.95)) if kind == "doors" else float(rng.choice([2.34, 4.7]))
    fw = fh * aspect
    if kind == "doors":
        fx0 = ox + w * float(rng.uniform(0.5, 0.5 if pinned else 0.75)) - fw * float(rng.uniform(0.3, 0.7))
        if pinned:
            fx0 = ox + w * 0.98 - fw
    else:
        fx0 = ox + w * float(rng.uniform(0.6, 1.15)) - fw
    fy0 = oy + h * float(rng.uniform(-0.12, 0.05)) if pinned else oy + h * float(rng.uniform(-0.2, 0.4))
    face = Face(kind, (fx0, fy0, fx0 + fw, fy0 + fh), door.paint(rng, held_out))

    if rng.random() < 0.3 and not pinned:
        _second_box(rng, world, face, held_out)

    if none_mode != "chassis":
        door.chassis(rng, world, fx0, fx0 + fw, fy0 + fh, kind)
        door.container(rng, world, face)
    else:
        door.chassis(rng, world, fx0, fx0 + fw, fy0 + fh * float(rng.uniform(0.6, 0.9)), kind)

    # the label: letter height, then where on the face it goes
    min_px = (14.0 if pinned else 8.0) * w / 640  # the floor when shrinking the label to fit
    letter = max(
        min_px + 2 * w / 640, fh * float(rng.uniform(0.04, 0.085) if pinned else rng.uniform(0.03, 0.08))
    )
    shown = code if code is not None else random_code(rng)
    lay = layout if layout != "none" else "one_line"
    label = paint_label(
        rng,
        shown,
        size_type,
        lay,
        letter,
        face,
        held_out,
        min_px,
        max_w=(region[2] - region[0]) * 0.95 if region else w * 0.8,
        max_h=(region[3] - region[1]) * 0.95 if region else fh * 0.85,
    )
    lx, ly = _label_spot(rng, face, label, lay)
    inset = fh * 0.05  # keep the label on the face, clear of the corner posts
    lx = min(max(lx, ox + w * 0.02), ox + w * 0.98 - label.width)  # near the frame (the world's middle)
    ly = min(max(ly, oy + h * 0.02), oy + h * 0.98 - label.height)
    lx = round(min(max(lx, fx0 + inset), max(fx0 + inset, fx0 + fw - inset - label.width)))
    ly = round(min(max(ly, fy0 + inset), max(fy0 + inset, fy0 + fh - inset - label.height)))

    quad = random_quad(rng, -ox, -oy, ww, wh, skew=float(rng.uniform(0.0, 0.04 if pinned else 0.16)))
    corners = ((0.0, 0.0), (float(ww), 0.0), (float(ww), float(wh)), (0.0, float(wh)))
    fwd = perspective_coeffs(quad, corners)  # world -> frame
    extent = [(lx, ly, lx + label.width, ly + label.height)]
    b = _bounds(fwd, extent)
    a = region if region is not None else (2, 2, w - 2, h - 2)
    dx = _shift_into(b[0], b[2], a[0], a[2], rng, pinned)
    dy = _shift_into(b[1], b[3], a[1], a[3], rng, pinned)
    quad = (
        (quad[0][0] + dx, quad[0][1] + dy),
        (quad[1][0] + dx, quad[1][1] + dy),
        (quad[2][0] + dx, quad[2][1] + dy),
        (quad[3][0] + dx, quad[3][1] + dy),
    )
    fwd = perspective_coeffs(quad, corners)

    avoid = [(lx - letter, ly - letter, lx + label.width + letter, ly + label.height + letter)]
    if none_mode != "chassis":
        door.distractors(rng, world, face, avoid, label.ink, held_out)
    code_box: Box | None = None
    st_box: Box | None = None
    if none_mode in ("", "hidden"):
        label.paste(world, (lx, ly))
        if none_mode == "hidden":
            _cover(rng, world, (lx, ly, lx + label.width, ly + label.height), face)
        else:
            _wear_label(rng, world, label, (lx, ly), face)
    if code is not None:
        code_box = _box(_bounds(fwd, [_at(r, lx, ly) for r in label.code_rects]), w, h)
        if label.size_type_rects:
            st_box = _box(_bounds(fwd, [_at(r, lx, ly) for r in label.size_type_rects]), w, h)
    inv = perspective_coeffs(corners, quad)  # frame -> world, for PIL
    frame = world.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        inv,
        Image.Resampling.NEAREST,  # 5x faster than BILINEAR; the lens's blur smooths it (camera, or here)
        fillcolor=world.getpixel((0, wh - 1)),
    )
    if pinned:
        frame = frame.filter(ImageFilter.BoxBlur(0.6))
    painted_st = size_type if (code is not None and label.size_type_rects) else None
    return ContainerScene(
        frame,
        code,
        painted_st,
        layout,
        code_box,
        st_box,
        (code_box[3] - code_box[1]) / (11 if layout == "vertical" else 2 if layout == "two_line" else 1)
        if code_box
        else 0.0,
    )


def _second_box(rng: np.random.Generator, world: Image.Image, face: Face, held_out: bool) -> None:
    """A box behind or beside the main one, with its own (smaller) code: a distractor, never the label."""
    fx0, fy0, _, _ = face.rect
    fw, fh = face.width, face.height
    k = float(rng.uniform(0.5, 0.9))
    side = -1 if rng.random() < 0.5 else 1
    fw2, fh2 = fh * k * float(rng.choice([0.9, 2.34])), fh * k
    x2 = (
        (fx0 - fw2 * float(rng.uniform(0.4, 0.95)))
        if side < 0
        else (fx0 + fw - fw2 * float(rng.uniform(0.05, 0.6)))
    )
    y2 = fy0 + (fh - fh2) * float(rng.uniform(0.0, 0.6))
    other = Face("doors" if fw2 < fh2 else "side", (x2, y2, x2 + fw2, y2 + fh2), door.paint(rng, held_out))
    door.container(rng, world, other)
    lab2 = paint_label(
        rng,
        random_code(rng),
        None,
        "one_line",
        fh2 * float(rng.uniform(0.03, 0.05)),
        other,
        held_out,
        6.0,
    )
    lab2.paste(world, (other.rect[2] - lab2.width - fh2 * 0.1, other.rect[1] + fh2 * 0.1))


def _at(r: Rect, x: float, y: float) -> Rect:
    return (r[0] + x, r[1] + y, r[2] + x, r[3] + y)


def _label_spot(rng: np.random.Generator, face: Face, label: Label, layout: str) -> tuple[float, float]:
    """Top-left of the label on ``face``: top right of the doors or a side's end, or a post for vertical."""
    x0, y0, x1, y1 = face.rect
    fh = y1 - y0
    top = y0 + fh * float(rng.uniform(0.08, 0.18))
    if layout == "vertical":
        if rng.random() < 0.5 or face.kind == "side":
            x = x1 - fh * 0.035 - label.width / 2 if rng.random() < 0.5 else x0 + fh * 0.035 - label.width / 2
        else:
            x = (x0 + x1) / 2 + fh * float(rng.uniform(0.02, 0.05))
        return x, min(top, y1 - fh * 0.1 - label.height)
    if face.kind == "doors":
        right = x1 - fh * float(rng.uniform(0.1, 0.2))
        if rng.random() < 0.2:
            right = (x0 + x1) / 2 - fh * float(rng.uniform(0.04, 0.1))
        return right - label.width, top
    if rng.random() < 0.3:
        return x0 + fh * float(rng.uniform(0.1, 0.4)), top
    return x1 - fh * float(rng.uniform(0.1, 0.4)) - label.width, top


def _wear_label(
    rng: np.random.Generator, img: Image.Image, label: Label, at: tuple[float, float], face: Face
) -> None:
    """Rarely, a little rust or dirt over the lettering (never enough to hide a character)."""
    if rng.random() > 0.15:
        return
    d = ImageDraw.Draw(img)
    s = label.letter
    for _ in range(int(rng.integers(1, 3))):
        cx = at[0] + float(rng.uniform(0, label.width))
        cy = at[1] + float(rng.uniform(0, label.height))
        r = s * float(rng.uniform(0.06, 0.18))
        col = door.mix(
            face.paint, (110, 60, 36) if rng.random() < 0.5 else (80, 74, 60), float(rng.uniform(0.3, 0.7))
        )
        d.ellipse((cx - r, cy - r, cx + r, cy + r * 1.5), fill=col)


def _cover(rng: np.random.Generator, img: Image.Image, r: Rect, face: Face) -> None:
    """Hide the code: a plate, a sheet of paint or heavy dirt over all of it."""
    d = ImageDraw.Draw(img)
    pad = (r[3] - r[1]) * 0.15
    col = (
        door.shade(face.paint, float(rng.uniform(0.85, 1.1)))
        if rng.random() < 0.5
        else door.rgb(rng, 40, 200)
    )
    d.rectangle((r[0] - pad, r[1] - pad, r[2] + pad, r[3] + pad), fill=col)


# ---------------------------------------------------------------------------------------------- camera


@cache
def _noise_bank() -> npt.NDArray[np.int16]:
    """Unit sensor noise (x16), drawn once from a fixed seed; frames take random windows of it."""
    return (np.random.default_rng(0xC0DE).standard_normal((760, 1360, 3)) * 16).astype(np.int16)


@cache
def _blob() -> Image.Image:
    yy, xx = np.mgrid[-64:64, -64:64].astype(np.float32)
    return Image.fromarray((255 * np.exp(-(xx**2 + yy**2) / (2 * 22.0**2))).astype(np.uint8), "L")


def _lut(gain: float, offset: float) -> list[int]:
    """A 256-entry lookup table ``v * gain + offset``, clipped to 0..255."""
    lut: list[int] = np.clip(np.arange(256) * gain + offset, 0, 255).round().astype(int).tolist()
    return lut


def camera(rng: np.random.Generator, img: Image.Image, ref: float) -> BgrImage:
    """Blur, motion blur, glare, shadow, exposure, low light or IR, noise and JPEG; B, G, R out.

    The same damage as :func:`hw_sim.render_damage.camera_damage`, done with PIL and integer numpy so
    that a full frame takes a few milliseconds; blur scales with ``ref`` (the letter height in pixels).
    """
    w, h = img.size
    radius = 0.6  # the lens always smooths a little (the scene is warped without interpolation)
    if rng.random() < 0.55:
        radius = max(radius, float(rng.uniform(0.3, 1.3)) * max(1.0, ref / 30))
    img = img.filter(ImageFilter.BoxBlur(radius))
    if rng.random() < 0.15:  # motion blur: the mean of a few shifted copies
        n = int(rng.integers(2, 6))
        ang = float(rng.uniform(0, np.pi))
        a16 = np.zeros((h, w, 3), dtype=np.uint16)
        src = np.asarray(img)
        for i in range(n):
            sx, sy = round(i * np.cos(ang)), round(i * np.sin(ang))
            a16 += np.roll(src, (sy, sx), axis=(0, 1))
        img = Image.fromarray((a16 // n).astype(np.uint8))
    if rng.random() < 0.12:  # glare
        r = int(w * float(rng.uniform(0.15, 0.5)))
        blob = _blob().resize((2 * r, 2 * r), Image.Resampling.BILINEAR)
        k = float(rng.uniform(0.3, 0.8))
        blob = blob.point(_lut(k, 0.0))
        layer = Image.new("L", (w, h))
        layer.paste(blob, (int(rng.uniform(0, w)) - r, int(rng.uniform(0, h)) - r))
        img = ImageChops.add(img, Image.merge("RGB", (layer, layer, layer)))
    if rng.random() < 0.2:  # shadow: one side of a soft line darker
        dark = float(rng.uniform(0.3, 0.6))
        soft = float(rng.uniform(0.02, 0.4))
        lut = [round(255 * (1 - dark / (1 + np.exp(-(v / 255 - 0.5) / soft * 4)))) for v in range(256)]
        g = (
            Image.linear_gradient("L")
            .point(lut)
            .rotate(
                float(rng.uniform(0, 360)),
                Image.Resampling.BILINEAR,
                fillcolor=255 if rng.random() < 0.5 else lut[255],
            )
        )
        g = g.resize((w, h), Image.Resampling.BILINEAR)
        img = ImageChops.multiply(img, Image.merge("RGB", (g, g, g)))
    mode = rng.random()
    if mode < 0.1:  # IR illuminator: grey, hard contrast
        gain, off = float(rng.uniform(1.3, 2.3)), float(rng.uniform(-60, 20))
        lum = img.convert("L").point(
            [min(255, max(0, round((v - 128) * gain + 128 + off))) for v in range(256)]
        )
        img = Image.merge("RGB", (lum, lum, lum))
    elif mode < 0.25:  # low light
        k, off = float(rng.uniform(0.25, 0.55)), float(rng.uniform(0, 15))
        img = img.point(_lut(k, off) * 3)
    else:
        gains = rng.uniform(0.85, 1.15, 3) * float(rng.uniform(0.7, 1.25))
        off = float(rng.uniform(-25, 25))
        img = img.point([v for g in gains for v in _lut(float(g), off)])
    a = np.asarray(img)
    sigma = float(rng.uniform(0, 9)) * (1.3 if mode < 0.25 else 1.0)
    if sigma > 0.8:
        bank = _noise_bank()
        if h <= bank.shape[0] and w <= bank.shape[1]:
            y0, x0 = int(rng.integers(0, bank.shape[0] - h + 1)), int(rng.integers(0, bank.shape[1] - w + 1))
            noise = bank[y0 : y0 + h, x0 : x0 + w]
        else:
            noise = (rng.standard_normal((h, w, 3)) * 16).astype(np.int16)
        a = np.clip(a + (noise * round(sigma * 4) >> 6), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=int(rng.integers(20, 90)))
        a = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return np.ascontiguousarray(a[..., ::-1])


# ---------------------------------------------------------------------------------------------- public


def render_container(
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 360),
    code: str | _Random | None = RANDOM,
    *,
    size_type: str | _Random | None = RANDOM,
    layout: str | None = None,
    held_out: bool = False,
) -> ContainerImage:
    """A container camera's frame (B, G, R) of a box with ``code`` painted on it, and its label.

    ``code``: a given 11-char code, ``None`` for no legible code, or the default: a random valid one
    (or, 6 % of the time, none). ``size_type`` likewise (default: a random one on 70 % of boxes).
    ``layout`` forces ``one_line``, ``two_line``, ``vertical`` or ``none``.
    """
    scene = container_scene(rng, size, code, size_type=size_type, layout=layout, held_out=held_out)
    image = camera(rng, scene.image, max(8.0, scene.letter_px))
    if scene.code_box is not None and not legible(image, scene.code_box):
        return ContainerImage(image, None, None, "none", None, None)
    return ContainerImage(
        image, scene.code, scene.size_type, scene.layout, scene.code_box, scene.size_type_box
    )


def legible(image: BgrImage, box: Box, min_contrast: float = 20.0) -> bool:
    """Whether the lettering in ``box`` still stands out once sensor noise is averaged away (5 x 5)."""
    x0, y0, x1, y1 = box
    if x1 - x0 < 5 or y1 - y0 < 5:
        return False
    patch = image[y0:y1, x0:x1].astype(np.float32) @ np.array([0.114, 0.587, 0.299], dtype=np.float32)
    c = np.cumsum(np.cumsum(np.pad(patch, ((1, 0), (1, 0))), axis=0), axis=1)
    mean = (c[5:, 5:] - c[:-5, 5:] - c[5:, :-5] + c[:-5, :-5]) / 25
    lo, hi = np.percentile(mean, (5, 95))
    return bool(hi - lo >= min_contrast)


def code_crop(rng: np.random.Generator, img: ContainerImage, *, loose: float | None = None) -> BgrImage:
    """A reader's crop around ``img.code_box``, jittered, with a margin, clipped to the image.

    Each side moves out by ``loose`` x the box's smaller side (default: random 0.05..0.6), jittered by
    up to 15 % of that side, never into the box. Raises :class:`ValueError` without a code box.
    """
    if img.code_box is None:
        raise ValueError("no code box: the image carries no legible code")
    x0, y0, x1, y1 = img.code_box
    s = max(1, min(x1 - x0, y1 - y0))
    m = float(rng.uniform(0.05, 0.6)) if loose is None else loose
    out = np.maximum(0.0, (m + rng.uniform(-0.15, 0.15, 4)) * s)
    hh, ww = img.image.shape[:2]
    cx0, cy0 = max(0, int(x0 - out[0])), max(0, int(y0 - out[1]))
    cx1, cy1 = min(ww, int(np.ceil(x1 + out[2]))), min(hh, int(np.ceil(y1 + out[3])))
    return np.ascontiguousarray(img.image[cy0:cy1, cx0:cx1])


def main(argv: list[str] | None = None) -> int:
    """Write ``--count`` renders as PNGs and a ``truth.csv`` (``file,region,text``) under ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--held-out", action="store_true")
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in str(args.size).split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "truth.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "region", "text"])
        for i in range(args.count):
            img = render_container(np.random.default_rng(args.seed + i), (w, h), held_out=args.held_out)
            name = f"{args.seed + i:07d}.png"
            Image.fromarray(img.image[..., ::-1]).save(args.out / name)
            region = " ".join(str(v) for v in img.code_box) if img.code_box else ""
            out.writerow([name, region, img.code or ""])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
