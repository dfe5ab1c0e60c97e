"""Where the plates are in a whole frame: the localiser's input and the decoding of its output.

The localiser (``models/plate_locator.tflite``) is a small fully-convolutional net in the CenterNet
manner. Its input is the frame as grey, shrunk to fit :data:`LOCATOR_INPUT` keeping its aspect
(letterboxed: the rest is filled with the frame's median); its output has, per cell of
:data:`STRIDE` input pixels, the probability that a plate's centre is there and the plate's width
and height (natural log, in cells). :func:`decode` picks the local maxima above a threshold, turns
them into boxes in frame pixels and drops overlapping ones (non-maximum suppression).

Pure numpy: the training scripts (``training/train_locator.py``) use these very functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.recognition import FloatArray, luma, resample, stretch

LOCATOR_INPUT = (144, 256)
"""The localiser's input (height, width): a 16:9 frame shrunk 5x from 1280 x 720."""
STRIDE = 4
"""Input pixels per output cell."""


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the input: ``scale`` (input px per frame px) and the frame size."""

    scale: float
    width: int
    height: int


@dataclass(frozen=True)
class Candidate:
    """A plate the localiser found: its box in frame pixels ``(x0, y0, x1, y1)`` and its score."""

    box: tuple[int, int, int, int]
    score: float


def shrink(gray: FloatArray, h: int, w: int) -> FloatArray:
    """Area-resample ``gray`` to ``h`` x ``w``: block means first (fast), then exact area weights."""
    k = min(gray.shape[0] // h, gray.shape[1] // w)
    if k >= 2:
        hh, ww = gray.shape[0] // k * k, gray.shape[1] // k * k
        gray = gray[:hh, :ww].reshape(hh // k, k, ww // k, k).mean(axis=(1, 3), dtype=np.float32)
    return resample(gray, h, w)


def locator_input(
    image: npt.NDArray[np.uint8], size: tuple[int, int] = LOCATOR_INPUT
) -> tuple[FloatArray, Letterbox]:
    """The localiser's input for a B, G, R ``image``: grey in [0, 1], letterboxed into ``size``."""
    in_h, in_w = size
    h, w = image.shape[:2]
    scale = min(in_w / w, in_h / h)
    sh, sw = max(1, min(in_h, round(h * scale))), max(1, min(in_w, round(w * scale)))
    fitted = stretch(shrink(luma(image), sh, sw))
    out = np.full((in_h, in_w), float(np.median(fitted)), dtype=np.float32)
    out[:sh, :sw] = fitted
    return out, Letterbox(scale, w, h)


def decode(
    out: FloatArray, box: Letterbox, *, threshold: float = 0.3, top_k: int = 5, iou: float = 0.4
) -> list[Candidate]:
    """Plate candidates from the localiser's output ``out`` (cells_h, cells_w, 3), best first.

    A candidate is a cell whose centre probability is a local maximum (3 x 3) and at least
    ``threshold``; its box is its width and height around the cell's centre, mapped back to frame
    pixels and clipped to the frame. Boxes overlapping a better one by more than ``iou`` are dropped.
    """
    heat = out[..., 0]
    padded = np.pad(heat, 1, mode="constant", constant_values=-1.0)
    neigh = np.max(
        np.stack(
            [padded[dy : dy + heat.shape[0], dx : dx + heat.shape[1]] for dy in range(3) for dx in range(3)]
        ),
        axis=0,
    )
    ys, xs = np.nonzero((heat >= neigh) & (heat >= threshold))
    order = np.argsort(-heat[ys, xs])[: top_k * 3]
    found: list[Candidate] = []
    for i in order.tolist():
        y, x = int(ys[i]), int(xs[i])
        bw = float(np.exp(np.clip(out[y, x, 1], -2.0, 6.0))) * STRIDE / box.scale
        bh = float(np.exp(np.clip(out[y, x, 2], -2.0, 6.0))) * STRIDE / box.scale
        cx, cy = (x + 0.5) * STRIDE / box.scale, (y + 0.5) * STRIDE / box.scale
        b = (
            int(max(0, round(cx - bw / 2))),
            int(max(0, round(cy - bh / 2))),
            int(min(box.width, round(cx + bw / 2))),
            int(min(box.height, round(cy + bh / 2))),
        )
        if b[2] - b[0] < 4 or b[3] - b[1] < 2:
            continue
        if all(box_iou(b, c.box) <= iou for c in found):
            found.append(Candidate(b, float(heat[y, x])))
        if len(found) == top_k:
            break
    return found


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (0 when either is empty)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pad_box(
    box: tuple[int, int, int, int], width: int, height: int, fx: float = 0.08, fy: float = 0.15
) -> tuple[int, int, int, int]:
    """``box`` grown by ``fx`` of its width and ``fy`` of its height on each side, clipped to the frame."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * fx, (y1 - y0) * fy
    return (
        int(max(0, x0 - dx)),
        int(max(0, y0 - dy)),
        int(min(width, x1 + dx)),
        int(min(height, y1 + dy)),
    )
