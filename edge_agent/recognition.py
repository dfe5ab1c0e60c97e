"""On-device recognition: the plate and ISO 6346 container code read by our own TFLite models.

A camera role has a fixed region of interest (the plate on the bumper, the code on the container's
side); :class:`TfliteRecogniser` cuts that region from the frame, turns it into the model's fixed-size
grayscale input (:func:`preprocess` for a plate; :func:`preprocess_lines` for a container code, which
finds its one or two painted lines and lays them end to end), runs the model and decodes its
per-column character probabilities with greedy CTC (:func:`ctc_greedy`). A read below the confidence
floor, or an empty one, is no read: an illegible plate gives nothing rather than something wrong.

The preprocessing here is the one the training scripts (``training/``) use, so what the model saw in
training is exactly what it sees on the lane. Only numpy and the LiteRT interpreter are needed.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt

from drivers.camera.base import Frame
from edge_agent.codes import container_valid, normalise_container, normalise_plate
from edge_agent.domain import ContainerRead, PlateRead

if TYPE_CHECKING:
    from drivers.inference import Inference
    from edge_agent.config.camera import TfliteRecognitionConfig

log = logging.getLogger(__name__)

CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Classes 0..35 of both models; class 36 (the last) is the CTC blank."""
BLANK = len(CHARSET)

Roi = tuple[float, float, float, float]
FloatArray = npt.NDArray[np.float32]

READER_INPUT = (64, 128)
"""The plate reader's input (height, width): a whole plate crop, grey, about 2:1."""
WHOLE: Roi = (0.0, 0.0, 1.0, 1.0)

_LUMA_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def roi_pixels(roi: Roi, width: int, height: int) -> tuple[int, int, int, int]:
    """A fractional ``(x0, y0, x1, y1)`` region as pixel bounds of a ``width`` x ``height`` frame."""
    x0, y0, x1, y1 = roi
    return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))


@lru_cache(maxsize=1024)
def _area_weights(src: int, dst: int) -> FloatArray:
    """A ``dst`` x ``src`` matrix averaging the source pixels each output pixel covers (area resampling)."""
    scale = src / dst
    edges = np.arange(dst + 1, dtype=np.float64) * scale
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(src, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    weights: FloatArray = (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)
    return weights


def preprocess(image: npt.NDArray[np.uint8], roi: Roi, size: tuple[int, int]) -> FloatArray:
    """The model input for ``image`` (h, w, 3 uint8, B, G, R): the ROI as ``size`` = (height, width) gray.

    Area-resampled luma, contrast-stretched between its 2nd and 98th percentiles into [0, 1].
    """
    gray = _luma_roi(image, roi)
    return _stretch(_resample(gray, size[0], size[1]))


def preprocess_crop(image: npt.NDArray[np.uint8], size: tuple[int, int] = READER_INPUT) -> FloatArray:
    """The plate reader's input for a plate crop ``image`` (B, G, R): all of it, grey, at ``size``."""
    return preprocess(image, WHOLE, size)


def _luma_roi(image: npt.NDArray[np.uint8], roi: Roi) -> FloatArray:
    """The ROI of a B, G, R frame as float32 luma."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 B,G,R frame, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    x0, y0, x1, y1 = roi_pixels(roi, w, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"region of interest {roi} is empty in a {w}x{h} frame")
    gray: FloatArray = image[y0:y1, x0:x1].astype(np.float32) @ _LUMA_BGR
    return gray


def _stretch(gray: FloatArray) -> FloatArray:
    """Contrast-stretch between the 2nd and 98th percentiles into [0, 1]; a flat crop stays flat."""
    lo, hi = np.percentile(gray, (2.0, 98.0))
    span = max(float(hi - lo), 16.0)  # noise is not stretched into "text"
    out: FloatArray = np.clip((gray - float(lo)) / span, 0.0, 1.0).astype(np.float32)
    return out


def _resample(gray: FloatArray, h: int, w: int) -> FloatArray:
    return cast(FloatArray, _area_weights(gray.shape[0], h) @ gray @ _area_weights(gray.shape[1], w).T)


LUMA_BGR = _LUMA_BGR
"""Luma weights of the B, G, R channels."""


def luma(image: npt.NDArray[np.uint8]) -> FloatArray:
    """A whole B, G, R frame as float32 luma (validated like :func:`preprocess`)."""
    return _luma_roi(image, WHOLE)


def stretch(gray: FloatArray) -> FloatArray:
    """Contrast-stretch between the 2nd and 98th percentiles into [0, 1] (see :func:`preprocess`)."""
    return _stretch(gray)


def resample(gray: FloatArray, h: int, w: int) -> FloatArray:
    """Area-resample ``gray`` to ``h`` x ``w``."""
    return _resample(gray, h, w)


def find_lines(gray: FloatArray, max_lines: int = 2) -> list[tuple[int, int]]:
    """Text lines of a grayscale crop (values in [0, 1]) as row bands ``(top, bottom)``, top to bottom.

    A row's edge energy (mean absolute difference to the next row and between neighbouring columns)
    rises where text is; vertical corrugation adds about the same to every row, so a low percentile is
    taken off as the baseline. Rows above a fifth of the peak form runs; weak runs (noise) are dropped;
    the strongest ``max_lines`` runs are the lines. A single run with a near-empty row band across its
    middle is two lines set close together. No clear text gives one band covering the whole crop.
    """
    h = gray.shape[0]
    dy = np.abs(np.diff(gray, axis=0)).mean(axis=1)
    dx = np.abs(np.diff(gray, axis=1)).mean(axis=1)
    energy = np.concatenate([dy, dy[-1:]]) + dx
    energy = np.convolve(energy, np.array([0.25, 0.5, 0.25], dtype=np.float32), mode="same")
    energy = np.clip(energy - float(np.percentile(energy, 5)), 0.0, None)
    peak = float(energy.max())
    if peak < 0.02:
        return [(0, h)]
    runs: list[list[int]] = []
    for y in np.flatnonzero(energy > 0.2 * peak).tolist():
        if runs and y - runs[-1][1] <= 1:
            runs[-1][1] = y + 1
        else:
            runs.append([y, y + 1])
    scored = [(float(energy[a:b].sum()), a, b) for a, b in runs if b - a >= 3]
    if not scored:
        return [(0, h)]
    strongest = max(score for score, _, _ in scored)
    scored = sorted((t for t in scored if t[0] >= 0.25 * strongest), reverse=True)[:max_lines]
    lines = sorted((a, b) for _, a, b in scored)
    if len(lines) == 1 and max_lines >= 2:
        a, b = lines[0]
        lo, hi = a + (b - a) // 4, b - (b - a) // 4
        if hi > lo:
            m = lo + int(np.argmin(energy[lo:hi]))
            if energy[m] < 0.12 * peak:
                return [(a, m), (m + 1, b)]
    return lines


def preprocess_lines(
    image: npt.NDArray[np.uint8], roi: Roi, size: tuple[int, int], max_lines: int = 2
) -> FloatArray:
    """The model input for text painted in one line or several: the lines laid end to end.

    The ROI's luma is searched for text lines (:func:`find_lines` on a 128-row view); each line, with a
    margin, is scaled to the input height keeping its aspect, and the lines are joined left to right
    with a short gap, so a two-line code reads as one line. The strip is padded (or, when too long,
    squeezed) to ``size`` = (height, width), then contrast-stretched into [0, 1].
    """
    gray = _luma_roi(image, roi)
    out_h, out_w = size
    view_h = 128
    view = _stretch(_resample(gray, view_h, max(8, min(256, gray.shape[1]))))
    scale = gray.shape[0] / view_h
    parts: list[FloatArray] = []
    for top, bottom in find_lines(view, max_lines):
        margin = 0.2 * (bottom - top)
        y0 = max(0, int((top - margin) * scale))
        y1 = min(gray.shape[0], int(np.ceil((bottom + margin) * scale)))
        band = gray[y0 : max(y1, y0 + 2)]
        width = max(2, min(out_w, round(band.shape[1] * out_h / band.shape[0])))
        if parts:
            parts.append(np.full((out_h, max(2, out_h // 4)), float(np.median(band)), dtype=np.float32))
        parts.append(_resample(band, out_h, width))
    strip = np.concatenate(parts, axis=1)
    if strip.shape[1] > out_w:
        strip = _resample(strip, out_h, out_w)
    elif strip.shape[1] < out_w:
        pad = np.full((out_h, out_w - strip.shape[1]), float(np.median(strip)), dtype=np.float32)
        strip = np.concatenate([strip, pad], axis=1)
    return _stretch(strip)


def ctc_greedy(probs: FloatArray, charset: str = CHARSET) -> tuple[str, float]:
    """Best-path CTC decode of ``probs`` (steps x classes, last class = blank).

    Returns the text and its confidence: the smallest per-character probability (1.0 for no text, as
    the all-blank path is then the read). The weakest character decides, since one wrong character
    makes a wrong plate.
    """
    best = probs.argmax(axis=1)
    peak = probs.max(axis=1)
    blank = probs.shape[1] - 1
    chars: list[str] = []
    conf: list[float] = []
    prev = blank
    for step, cls in enumerate(best.tolist()):
        if cls != blank and cls != prev:
            chars.append(charset[cls])
            conf.append(float(peak[step]))
        elif cls != blank and cls == prev:
            conf[-1] = max(conf[-1], float(peak[step]))
        prev = cls
    return "".join(chars), (min(conf) if conf else 1.0)


class TfliteRecogniser:
    """Reads plates and container codes with the shipped TFLite models (implements ``Recogniser``).

    One interpreter per role, each behind its own lock: ``recognise`` may be called from several
    worker threads. Models load when the recogniser is built, so a missing model or runtime is a
    startup error, not a lane fault. ``roles`` names the models to load (a lane without a container
    camera need not ship the container model); recognising an unloaded role is a ``ValueError``.
    """

    def __init__(
        self,
        cfg: TfliteRecognitionConfig,
        *,
        open_model: OpenModel | None = None,
        roles: tuple[str, ...] = ("plate", "container"),
    ) -> None:
        from drivers.inference import open_interpreter

        unknown = sorted(set(roles) - {"plate", "container"})
        if unknown:
            raise ValueError(f"unknown camera role(s) {unknown}")

        opener: OpenModel = open_model or (lambda path: open_interpreter(path, num_threads=cfg.num_threads))
        self.min_confidence = cfg.min_confidence
        self._models: dict[str, tuple[Inference, threading.Lock, Roi]] = {}
        for role, path, roi in (
            ("plate", cfg.plate_model, cfg.plate_roi.as_tuple()),
            ("container", cfg.container_model, cfg.container_roi.as_tuple()),
        ):
            if role in roles:
                self._models[role] = (opener(Path(path)), threading.Lock(), roi)
        self.below_floor = 0

    def read_text(self, image: npt.NDArray[np.uint8], role: str) -> tuple[str, float]:
        """The raw decoded text and confidence for ``role`` on ``image`` (no floor, no validation)."""
        try:
            model, lock, roi = self._models[role]
        except KeyError:
            raise ValueError(f"unknown camera role {role!r}") from None
        _, h, w, _ = model.input_shape
        if role == "container":  # painted in one line or two: lines laid end to end
            x = preprocess_lines(image, roi, (h, w), max_lines=2)[None, :, :, None]
        else:
            x = preprocess(image, roi, (h, w))[None, :, :, None]
        with lock:
            probs = model.invoke(x)
        return ctc_greedy(probs.reshape(probs.shape[-2], probs.shape[-1]))

    def recognise(self, frame: Frame, role: str) -> list[PlateRead | ContainerRead]:
        """The plate or container code legible on ``frame``; nothing when unsure or nothing is there."""
        if frame.image is None:
            return []
        text, conf = self.read_text(frame.image, role)
        if not text:
            return []
        if conf < self.min_confidence:
            self.below_floor += 1
            return []
        if role == "plate":
            plate = normalise_plate(text)
            return [PlateRead(plate, conf, frame.camera, frame.captured)] if plate else []
        code = normalise_container(text)
        return [ContainerRead(code, container_valid(code), conf, frame.camera, frame.captured)]

    def close(self) -> None:
        """Release the interpreters (safe to call twice)."""
        for model, lock, _ in self._models.values():
            with lock:
                model.close()


if TYPE_CHECKING:
    from collections.abc import Callable

    OpenModel = Callable[[Path], Inference]
