"""On-device recognition: the plate and ISO 6346 container code read by our own TFLite models.

A camera role has a fixed region of interest (the plate on the bumper, the code on the container's
side); :class:`TfliteRecogniser` cuts that region from the frame, turns it into the model's fixed-size
grayscale input (:func:`preprocess`), runs the model and decodes its per-column character
probabilities with greedy CTC (:func:`ctc_greedy`). A read below the confidence floor, or an empty
one, is no read: an illegible plate gives nothing rather than something wrong.

The preprocessing here is the one the training scripts (``training/``) use, so what the model saw in
training is exactly what it sees on the lane. Only numpy and the LiteRT interpreter are needed.
"""

from __future__ import annotations

import logging
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

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

_LUMA_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def roi_pixels(roi: Roi, width: int, height: int) -> tuple[int, int, int, int]:
    """A fractional ``(x0, y0, x1, y1)`` region as pixel bounds of a ``width`` x ``height`` frame."""
    x0, y0, x1, y1 = roi
    return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))


@cache
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
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 B,G,R frame, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    x0, y0, x1, y1 = roi_pixels(roi, w, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"region of interest {roi} is empty in a {w}x{h} frame")
    gray = image[y0:y1, x0:x1].astype(np.float32) @ _LUMA_BGR
    out_h, out_w = size
    small = _area_weights(y1 - y0, out_h) @ gray @ _area_weights(x1 - x0, out_w).T
    lo, hi = np.percentile(small, (2.0, 98.0))
    span = max(float(hi - lo), 16.0)  # a flat crop stays flat: noise is not stretched into "text"
    out: FloatArray = np.clip((small - float(lo)) / span, 0.0, 1.0).astype(np.float32)
    return out


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
    startup error, not a lane fault.
    """

    def __init__(self, cfg: TfliteRecognitionConfig, *, open_model: OpenModel | None = None) -> None:
        from drivers.inference import open_interpreter

        opener: OpenModel = open_model or (lambda path: open_interpreter(path, num_threads=cfg.num_threads))
        self.min_confidence = cfg.min_confidence
        self._models: dict[str, tuple[Inference, threading.Lock, Roi]] = {}
        for role, path, roi in (
            ("plate", cfg.plate_model, cfg.plate_roi.as_tuple()),
            ("container", cfg.container_model, cfg.container_roi.as_tuple()),
        ):
            self._models[role] = (opener(Path(path)), threading.Lock(), roi)
        self.below_floor = 0

    def read_text(self, image: npt.NDArray[np.uint8], role: str) -> tuple[str, float]:
        """The raw decoded text and confidence for ``role`` on ``image`` (no floor, no validation)."""
        try:
            model, lock, roi = self._models[role]
        except KeyError:
            raise ValueError(f"unknown camera role {role!r}") from None
        _, h, w, _ = model.input_shape
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
