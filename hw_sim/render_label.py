"""The ISO 6346 code and size/type code as a container's painted label, for :mod:`hw_sim.render_container`.

:func:`paint_label` lays the code out in one line, two lines or one character per line down a post, in a
stencil or DIN-like face (stencil bridges, bold strokes, tracking, a box round the check digit), with the
size/type code below or beside it, and returns it as a :class:`Label`: an ink mask and every character's
box, so the caller knows exactly where the ground truth was painted. Characters sit in fixed cells, so
the label's extent and the generator's use do not depend on the text.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from hw_sim import render_fonts as fonts
from hw_sim.render_door import Face, Rect, Rgb, luma
from hw_sim.render_fonts import FontSpec


@dataclass(frozen=True)
class Label:
    """The painted code (and size/type) as a mask, its ink, and its characters' boxes in the mask."""

    mask: Image.Image  # L: 255 where ink is
    ink: Rgb
    code_rects: tuple[Rect, ...]  # every code character and the check-digit box
    size_type_rects: tuple[Rect, ...]
    letter: float  # letter height in pixels

    @property
    def width(self) -> int:
        """The label's width in pixels."""
        return self.mask.width

    @property
    def height(self) -> int:
        """The label's height in pixels."""
        return self.mask.height

    def paste(self, img: Image.Image, at: tuple[float, float]) -> None:
        """Paint the label in its ink onto ``img`` with its top-left at ``at``."""
        img.paste(Image.new("RGB", self.mask.size, self.ink), (round(at[0]), round(at[1])), self.mask)


_BRIDGE_MID = frozenset("0ABDOPQR689")
_BRIDGE_LEFT = frozenset("EFHKMNUW235")


@cache
def _cap_ratio(spec: FontSpec | None) -> float:
    box = fonts.load(spec, 100).getbbox("H", anchor="ls")
    return max(0.3, (box[3] - box[1]) / 100)


def _advances(spec: FontSpec | None, size: int) -> tuple[float, float]:
    """The widest letter's and the widest digit's advance at ``size`` (cells are text-independent)."""
    letters, digits = _advances_100(spec)
    return letters * size / 100, digits * size / 100


@cache
def _advances_100(spec: FontSpec | None) -> tuple[float, float]:
    font = fonts.load(spec, 100)
    return (
        max(float(font.getlength(c)) for c in string.ascii_uppercase),
        max(float(font.getlength(c)) for c in string.digits),
    )


def ink_for(rng: np.random.Generator, c: Rgb) -> Rgb:
    """White on dark paint, black or dark grey on light paint."""
    if luma(c) < 135:
        v = int(rng.integers(215, 252))
        return (v, v, v - int(rng.integers(0, 10)))
    v = int(rng.integers(8, 75))
    return (v, v, v)


def paint_label(
    rng: np.random.Generator,
    code: str,
    size_type: str | None,
    layout: str,
    letter: float,
    face: Face,
    held_out: bool,
    min_px: float,
    *,
    beside: bool = False,
    max_w: float = 1e9,
    max_h: float = 1e9,
) -> Label:
    """``code`` in ``layout`` at ``letter`` pixels (shrunk to fit ``max_w`` x ``max_h``), with ``size_type``.

    Characters sit centred in fixed cells, so the label's extent and the generator's use do not depend
    on the text: a different code changes only the pixels inside the label.
    """
    faces = fonts.installed(fonts.CONTAINER_HELD_OUT if held_out else fonts.CONTAINER_TRAIN)
    spec = faces[int(rng.integers(len(faces)))] if faces else None
    st_spec = spec if rng.random() < 0.8 or not faces else faces[int(rng.integers(len(faces)))]
    ink = ink_for(rng, face.paint)
    u = rng.uniform(0, 1, 16)  # spacing and placement choices, drawn once
    jit = rng.normal(0, 1, (2, 16))
    boxed = u[0] < 0.6
    stencil = u[1] < 0.22
    bold = u[2] < 0.15
    align = int(u[3] * 3)  # two_line: left, right, centred
    st_where = "beside" if beside or (layout == "one_line" and u[4] < 0.35) else "below"
    st_right = u[5] < 0.5
    for _ in range(3):
        parts = _cells(code, size_type, layout, letter, spec, st_spec, u, st_where, st_right, align)
        ext_w, ext_h = parts[3], parts[4]
        k = min(1.0, max_w / ext_w, max_h / ext_h)
        if k >= 0.999 or letter <= min_px:
            break
        letter = max(min_px, letter * k * 0.97)
    cells, st_cells, check_box, ext_w, ext_h, fsize, st_size = parts
    mask = Image.new("L", (int(np.ceil(ext_w)), int(np.ceil(ext_h))))
    d = ImageDraw.Draw(mask)
    stroke = 1 if bold and letter > 18 else 0
    code_rects: list[Rect] = []
    for i, (ch, cx, base) in enumerate(cells):
        x, y = cx + jit[0, i] * letter * 0.025, base + jit[1, i] * letter * 0.02
        r = _stamp(mask, spec, fsize, ch, stroke, x, y)
        code_rects.append(r)
        if stencil:
            _bridge(d, ch, r, letter * (0.05 + 0.04 * u[6]))
    if boxed and check_box is not None:
        d.rectangle(check_box, outline=255, width=max(1, round(letter * (0.06 + 0.04 * u[7]))))
        code_rects.append(check_box)
    st_rects: list[Rect] = []
    if size_type is not None:
        for ch, cx, base in st_cells:
            st_rects.append(_stamp(mask, st_spec, st_size, ch, 0, cx, base))
    if u[8] < 0.12:  # paint peeled off a spot or two (small: every character stays readable)
        for j in range(1 + int(u[9] < 0.4)):
            px, py, r = u[10 + j] * ext_w, u[12 + j] * ext_h, letter * (0.05 + 0.1 * u[14])
            d.ellipse((px - r, py - r, px + r, py + r * 0.8), fill=0)
    return Label(mask, ink, tuple(code_rects), tuple(st_rects), letter)


Cells = list[tuple[str, float, float]]


def _cells(
    code: str,
    size_type: str | None,
    layout: str,
    letter: float,
    spec: FontSpec | None,
    st_spec: FontSpec | None,
    u: npt.NDArray[np.float64],
    st_where: str,
    st_right: bool,
    align: int,
) -> tuple[Cells, Cells, Rect | None, float, float, int, int]:
    """Where each character's centre and baseline go, the check-digit box and the label's extent."""
    fsize = max(5, round(letter / _cap_ratio(spec)))
    adv_l, adv_d = _advances(spec, fsize)
    track = letter * (0.02 + 0.28 * u[15])
    cl, cd = adv_l + track, adv_d + track
    gap1, gap2 = letter * (0.25 + 0.75 * u[4]), letter * (0.25 + 0.6 * u[5])
    pad = letter * 0.2
    m = pad + letter * 0.12 + 2
    cells: Cells = []
    if layout == "one_line":
        x, base = m, m + letter
        for i, ch in enumerate(code):
            if i in (4, 10):
                x += gap1 if i == 4 else gap2
            c = cl if i < 4 else cd
            cells.append((ch, x + c / 2, base))
            x += c
        block = (m, m, x, base)
    elif layout == "two_line":
        w1, w2 = 4 * cl, 6 * cd + gap2 + cd
        wmax = max(w1, w2)
        lg = letter * (1.35 + 0.5 * u[6])
        for line, (chars, width) in enumerate(((code[:4], w1), (code[4:], w2))):
            x = m + (0.0, wmax - width, (wmax - width) / 2)[align]
            base = m + letter + line * lg
            for i, ch in enumerate(chars):
                if line == 1 and i == 6:
                    x += gap2
                c = cl if line == 0 else cd
                cells.append((ch, x + c / 2, base))
                x += c
        block = (m, m, m + wmax, m + letter + lg)
    else:
        col = max(cl, cd)
        pitch = letter * (1.2 + 0.35 * u[6])
        y = m
        for i, ch in enumerate(code):
            if i == 4 and u[7] < 0.5:
                y += letter * 0.6
            if i == 10:
                y += pad
            cells.append((ch, m + col / 2, y + letter))
            y += pitch
        block = (m, m, m + col, y - pitch + letter)
    check_box: Rect | None = None
    ch_x, ch_base = cells[10][1], cells[10][2]
    c = cd - track * 0.5
    check_box = (ch_x - c / 2 - pad, ch_base - letter - pad, ch_x + c / 2 + pad, ch_base + pad)
    st_cells: Cells = []
    st_size = fsize
    right, bottom = max(block[2], check_box[2]), max(block[3], check_box[3])
    if size_type is not None:
        sl = letter * (0.6 + 0.35 * u[8])
        st_size = max(5, round(sl / _cap_ratio(st_spec)))
        sc = max(_advances(st_spec, st_size)) + sl * 0.1
        if layout == "vertical":
            st_cells = _row(size_type, m + max(cl, cd) / 2, bottom + sl * 2.2, 0.0, sl * 1.3)
            bottom = st_cells[-1][2]
        elif st_where == "beside":
            st_cells = _row(size_type, right + letter * (1.0 + 2.0 * u[9]) + sc / 2, cells[-1][2], sc, 0.0)
            right = st_cells[-1][1] + sc / 2
        else:
            x = m if not st_right else right - 4 * sc
            st_cells = _row(size_type, x + sc / 2, bottom + sl * (1.5 + 0.6 * u[9]), sc, 0.0)
            bottom = st_cells[-1][2]
    return cells, st_cells, check_box, right + m, bottom + m, fsize, st_size


@lru_cache(maxsize=30000)
def _glyph(spec: FontSpec | None, size: int, ch: str, stroke: int) -> tuple[Image.Image, int, int]:
    """``ch`` rendered once (cached): its mask and its offset from the (middle, baseline) anchor."""
    font = fonts.load(spec, size)
    b = font.getbbox(ch, anchor="ms", stroke_width=stroke)
    x0, y0 = int(np.floor(b[0])), int(np.floor(b[1]))
    glyph = Image.new("L", (max(1, int(np.ceil(b[2])) - x0), max(1, int(np.ceil(b[3])) - y0)))
    ImageDraw.Draw(glyph).text(
        (-x0, -y0), ch, font=font, fill=255, anchor="ms", stroke_width=stroke, stroke_fill=255
    )
    return glyph, x0, y0


def _stamp(
    mask: Image.Image, spec: FontSpec | None, size: int, ch: str, stroke: int, x: float, y: float
) -> Rect:
    """Paint ``ch`` into ``mask`` anchored at ``(x, y)`` (middle, baseline); its ink box."""
    glyph, gx, gy = _glyph(spec, size, ch, stroke)
    px, py = round(x) + gx, round(y) + gy
    mask.paste(255, (px, py, px + glyph.width, py + glyph.height), glyph)
    return (float(px), float(py), float(px + glyph.width), float(py + glyph.height))


def _row(text: str, x: float, base: float, dx: float, dy: float) -> Cells:
    """Cells of ``text`` from ``(x, base)`` on, each ``dx``, ``dy`` from the one before."""
    return [(ch, x + i * dx, base + i * dy) for i, ch in enumerate(text)]


def _bridge(d: ImageDraw.ImageDraw, ch: str, r: Rect, width: float) -> None:
    """A stencil's bridge: a gap cut through the strokes of ``ch`` (ink box ``r``)."""
    if ch in _BRIDGE_MID:
        x = (r[0] + r[2]) / 2
    elif ch in _BRIDGE_LEFT:
        x = r[0] + (r[2] - r[0]) * 0.38
    else:
        return
    d.rectangle((x - width / 2, r[1] - 1, x + width / 2, r[3] + 1), fill=0)
