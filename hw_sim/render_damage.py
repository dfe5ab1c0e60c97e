"""What a lane camera does to a plate: perspective, blur, glare, shadow, low light, IR, noise, JPEG.

:func:`plate_crop` puts a painted plate (:mod:`hw_sim.render_plate`) on a bumper, tilts it in 3-D,
cuts a tight or loose crop around it at a camera's resolution and damages it (:func:`camera_damage`).
:func:`warp_quad` is the perspective paste the scene renderer uses as well. All functions are pure
functions of their generator: the same seed gives the same pixels. Images are B, G, R ``uint8``.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

from hw_sim.render_plate import Plate

BgrImage = npt.NDArray[np.uint8]
Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


def perspective_coeffs(src: Quad, dst: Quad) -> tuple[float, ...]:
    """PIL ``PERSPECTIVE`` coefficients mapping output points ``dst`` back to input points ``src``."""
    a = []
    b = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b.extend([u, v])
    sol = np.linalg.solve(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64))
    return tuple(float(c) for c in sol)


def random_quad(rng: np.random.Generator, x: float, y: float, w: float, h: float, skew: float) -> Quad:
    """The corners (tl, tr, br, bl) of a ``w`` x ``h`` rectangle at ``x, y``, rotated and skewed a little."""
    angle = float(np.clip(rng.normal(0.0, 3.0), -10.0, 10.0)) * np.pi / 180
    cx, cy = x + w / 2, y + h / 2
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    yaw = float(rng.uniform(-skew, skew))  # one side nearer the camera: taller
    pitch = float(rng.uniform(-skew, skew) * 0.5)
    out = []
    for px, py in corners:
        py *= 1 + yaw * np.sign(px)
        px *= 1 + pitch * np.sign(py)
        px, py = px + rng.normal(0, w * 0.01), py + rng.normal(0, h * 0.01)
        rx = px * np.cos(angle) - py * np.sin(angle)
        ry = px * np.sin(angle) + py * np.cos(angle)
        out.append((float(cx + rx), float(cy + ry)))
    return (out[0], out[1], out[2], out[3])


def warp_quad(canvas: Image.Image, piece: Image.Image, quad: Quad) -> None:
    """Paste ``piece`` onto ``canvas`` (in place) so that its corners land on ``quad``."""
    w, h = piece.size
    src: Quad = ((0, 0), (w, 0), (w, h), (0, h))
    coeffs = perspective_coeffs(src, quad)
    rgba = piece.convert("RGBA")
    warped = rgba.transform(canvas.size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    canvas.paste(warped, (0, 0), warped)


def bumper(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Paint, chrome or black plastic around a plate: bands, bars, holes and a gradient."""
    r, g, b = (int(v) for v in rng.integers(10, 240, 3))
    base = (r, g, b)
    img = Image.new("RGB", (w, h), base)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 7))):
        y0 = rng.uniform(0, h)
        shade = tuple(int(np.clip(c + rng.integers(-70, 70), 0, 255)) for c in base)
        d.rectangle((0, y0, w, y0 + rng.uniform(2, h * 0.2)), fill=shade)
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        shade = tuple(int(v) for v in rng.integers(0, 255, 3))
        d.rectangle((x0, y0, x0 + rng.uniform(5, w * 0.3), y0 + rng.uniform(3, h * 0.2)), fill=shade)
    return img


def plate_crop(rng: np.random.Generator, plate: Plate, *, loose: float | None = None) -> BgrImage:
    """A camera's crop of ``plate``: on a bumper, tilted, tight or loose, scaled, damaged."""
    pw, ph = plate.image.size
    canvas = bumper(rng, int(pw * 1.7), int(ph * 2.4))
    x0, y0 = pw * 0.35, ph * 0.7
    quad = random_quad(rng, x0, y0, pw, ph, skew=float(rng.uniform(0.0, 0.12)))
    warp_quad(canvas, plate.image, quad)
    # the crop: around the plate proper (the frame counts as context)
    bx0, by0, bx1, by1 = plate.plate_box
    inner = (
        (bx0, by0),
        (bx1, by0),
        (bx1, by1),
        (bx0, by1),
    )
    coeffs = perspective_coeffs(((0, 0), (pw, 0), (pw, ph), (0, ph)), quad)
    pts = np.array([_apply_inverse(coeffs, x, y) for x, y in inner])
    qx0, qy0 = pts.min(axis=0)
    qx1, qy1 = pts.max(axis=0)
    qw, qh = qx1 - qx0, qy1 - qy0
    loose = loose if loose is not None else (0.06 if rng.random() < 0.6 else 0.3)
    m = rng.uniform(-0.03, loose, 4)
    box = (
        int(max(0, qx0 - m[0] * qw)),
        int(max(0, qy0 - m[1] * qh * 1.5)),
        int(min(canvas.width, qx1 + m[2] * qw)),
        int(min(canvas.height, qy1 + m[3] * qh * 1.5)),
    )
    crop = canvas.crop(box)
    width = float(np.exp(rng.uniform(np.log(48), np.log(240))))  # the plate's width on the sensor
    scale = width / max(1.0, qw)
    size = (max(8, round(crop.width * scale)), max(4, round(crop.height * scale)))
    crop = crop.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR)
    return camera_damage(rng, crop)


def _apply_inverse(coeffs: tuple[float, ...], x: float, y: float) -> tuple[float, float]:
    """Where source point ``(x, y)`` lands under the perspective whose inverse is ``coeffs``."""
    a, b, c, d, e, f, g, h = coeffs
    m = np.array([[a, b, c], [d, e, f], [g, h, 1.0]])
    u, v, s = np.linalg.solve(m, np.array([x, y, 1.0]))
    return float(u / s), float(v / s)


def camera_damage(rng: np.random.Generator, img: Image.Image, *, blur_ref: float | None = None) -> BgrImage:
    """Blur, motion blur, glare, shadow, exposure, low light or IR, noise and JPEG; B, G, R out.

    Blur scales with ``blur_ref`` pixels (the plate's height in the picture; default: its height).
    """
    w, h = img.size
    ref = float(h) if blur_ref is None else blur_ref
    if rng.random() < 0.6:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.2, 1.0)) * max(1.0, ref / 80)))
    a = np.asarray(img, dtype=np.float32)
    if rng.random() < 0.2:
        length = float(rng.uniform(1.5, max(2.0, (w if blur_ref is None else 2 * ref) * 0.04)))
        a = _motion_blur(a, rng, length, float(rng.uniform(0, np.pi)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.15:  # glare: a bright soft blob
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.15, 0.6) * w
        a += float(rng.uniform(60, 200)) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
    if rng.random() < 0.2:  # shadow: one side of a soft line darker
        ang = rng.uniform(0, 2 * np.pi)
        dist = (xx - rng.uniform(0, w)) * np.cos(ang) + (yy - rng.uniform(0, h)) * np.sin(ang)
        edge = 1 / (1 + np.exp(-dist / max(1.0, rng.uniform(0.5, 0.1 * w))))
        a *= (1 - edge * float(rng.uniform(0.3, 0.7)))[..., None]
    mode = rng.random()
    if mode < 0.12:  # IR illuminator: grey, retro-reflective plate bright, hard contrast
        g = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        g = (g - g.mean()) * float(rng.uniform(1.3, 2.5)) + float(rng.uniform(110, 170))
        a = np.repeat(g[..., None], 3, axis=2)
    elif mode < 0.27:  # low light
        a = a * float(rng.uniform(0.2, 0.5)) + float(rng.uniform(0, 15))
    else:
        a = a * rng.uniform(0.85, 1.15, 3).astype(np.float32) * float(rng.uniform(0.7, 1.25))
        a += float(rng.uniform(-25, 25))
    sigma = float(rng.uniform(0, 10)) * (1.3 if mode < 0.27 else 1.0)
    if sigma > 0.5:
        a += rng.standard_normal(a.shape, dtype=np.float32) * sigma
    rgb = np.clip(a, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=int(rng.integers(15, 90)))
        rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return np.ascontiguousarray(rgb[..., ::-1])


def _motion_blur(a: npt.NDArray[np.float32], rng: np.random.Generator, length: float, angle: float
                 ) -> npt.NDArray[np.float32]:  # fmt: skip
    """The mean of copies of ``a`` shifted along a line of ``length`` pixels at ``angle``."""
    n = max(2, int(length))
    pad = n + 1
    p = np.pad(a, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    out = np.zeros_like(a)
    h, w = a.shape[:2]
    for t in np.linspace(-length / 2, length / 2, n):
        dx, dy = round(t * np.cos(angle)), round(t * np.sin(angle))
        out += p[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
    blurred: npt.NDArray[np.float32] = (out / n).astype(np.float32)
    return blurred
