"""Reading a plate from any picture: a whole lane frame or a tight crop, with our two models.

Public API (used by the camera path, ``edge-agent read plate`` and the benchmark)::

    reader = PlateReader.open("models/plate_reader.tflite", "models/plate_locator.tflite",
                              num_threads=1, min_confidence=0.5)
    result = reader.read(image_bgr_uint8)   # -> PlateResult(text, confidence, box, crop, candidates)
    reader.close()

:meth:`PlateReader.read` decides by itself whether ``image`` is a crop or a frame. A small picture
(at most :data:`CROP_MAX_SIZE`) is a crop: it is read whole. A larger one goes to the localiser
(:mod:`edge_agent.recognition_locate`); each of its best :attr:`PlateReader.top_k` boxes is padded
a little, cut out and read; the read with the highest confidence wins. When the localiser finds
nothing, the whole picture is read as a crop (a close-up of a plate). A read whose confidence is
below ``min_confidence`` is reported with ``text == ""`` (unread), never as a guess; its confidence
is kept so callers can count how close it came.

The reader (``models/plate_reader.tflite``; localiser ``models/plate_locator.tflite``) takes the
crop as grey 64 x 128 (:func:`edge_agent.recognition.preprocess_crop`) and emits 32 steps of CTC
probabilities over ``0-9A-Z`` + blank, decoded greedily (:func:`edge_agent.recognition.ctc_greedy`);
the confidence is the weakest character's probability. Image files are hostile input:
:func:`load_image` bounds their bytes and pixels before decoding and names what was wrong.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from edge_agent.codes import normalise_plate
from edge_agent.recognition import READER_INPUT, ctc_greedy, preprocess_crop
from edge_agent.recognition_locate import LOCATOR_INPUT, Candidate, decode, locator_input, pad_box

if TYPE_CHECKING:
    from drivers.inference import Inference

BgrImage = npt.NDArray[np.uint8]

CROP_MAX_SIZE = (480, 320)
"""A picture at most this wide and this tall is taken for a plate crop and read whole."""
MIN_SIZE = (8, 4)
"""The smallest picture (width, height) that can hold a readable plate."""
MAX_PIXELS = 40_000_000
"""The largest picture accepted (an 8K frame is 33 M pixels)."""
MAX_FILE_BYTES = 50_000_000
"""The largest image file :func:`load_image` opens."""


class ImageRejected(ValueError):
    """A picture that cannot be read as a plate image; the message names what was wrong."""


@dataclass(frozen=True)
class PlateResult:
    """One plate read from one picture.

    ``text`` is the registration (``""`` when unread: nothing found, or the best read was below the
    confidence floor); ``confidence`` the best read's (0.0 when nothing was read); ``box`` where the
    read crop is in the picture (``x0, y0, x1, y1`` pixels; the whole picture for a crop); ``crop`` the
    B, G, R pixels that were read (``None`` when nothing was); ``candidates`` how many crops were read.
    """

    text: str
    confidence: float
    box: tuple[int, int, int, int] | None
    crop: BgrImage | None
    candidates: int


def check_image(image: object) -> BgrImage:
    """``image`` if it is an (h, w, 3) uint8 B, G, R array of a sane size, else :class:`ImageRejected`."""
    if not isinstance(image, np.ndarray):
        raise ImageRejected(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageRejected(f"expected an (h, w, 3) uint8 B,G,R image, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    if w < MIN_SIZE[0] or h < MIN_SIZE[1]:
        raise ImageRejected(f"image {w}x{h} is too small to read (at least {MIN_SIZE[0]}x{MIN_SIZE[1]})")
    if w * h > MAX_PIXELS:
        raise ImageRejected(f"image {w}x{h} has more than {MAX_PIXELS} pixels")
    return image


def load_image(path: Path | str) -> BgrImage:
    """An image file as B, G, R uint8, bounded in bytes and pixels before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageRejected(f"{p}: cannot be read ({exc.strerror})") from exc
    if size > MAX_FILE_BYTES:
        raise ImageRejected(f"{p}: {size} bytes is more than {MAX_FILE_BYTES}")
    try:
        with Image.open(p) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageRejected(f"{p}: {w}x{h} has more than {MAX_PIXELS} pixels")
            rgb = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageRejected):
            raise
        raise ImageRejected(f"{p}: not a readable image ({exc})") from exc
    return check_image(np.ascontiguousarray(rgb[..., ::-1]))


class PlateReader:
    """The plate localiser and reader together (thread-safe: each model behind its own lock)."""

    def __init__(
        self,
        reader: Inference,
        locator: Inference | None = None,
        *,
        min_confidence: float = 0.5,
        top_k: int = 3,
        locator_threshold: float = 0.4,
    ) -> None:
        if tuple(reader.input_shape[1:3]) != READER_INPUT:
            raise ValueError(f"plate reader input {reader.input_shape}, expected {READER_INPUT}")
        if locator is not None and tuple(locator.input_shape[1:3]) != LOCATOR_INPUT:
            raise ValueError(f"plate localiser input {locator.input_shape}, expected {LOCATOR_INPUT}")
        self._reader, self._locator = reader, locator
        self._reader_lock, self._locator_lock = threading.Lock(), threading.Lock()
        self.min_confidence = min_confidence
        self.top_k = top_k
        self.locator_threshold = locator_threshold

    @classmethod
    def open(
        cls,
        reader_path: Path | str,
        locator_path: Path | str | None = None,
        *,
        num_threads: int = 1,
        min_confidence: float = 0.5,
    ) -> PlateReader:
        """Load the models with LiteRT (or tflite-runtime); no localiser: every picture is a crop."""
        from drivers.inference import open_interpreter

        reader = open_interpreter(reader_path, num_threads)
        locator = open_interpreter(locator_path, num_threads) if locator_path is not None else None
        return cls(reader, locator, min_confidence=min_confidence)

    @property
    def has_locator(self) -> bool:
        """Whether a localiser is loaded (without one, every picture is read whole, as a crop)."""
        return self._locator is not None

    def read_crop(self, crop: BgrImage) -> tuple[str, float]:
        """The raw read of a plate crop: text (``[A-Z0-9]``, may be empty) and confidence; no floor."""
        x = preprocess_crop(check_image(crop), READER_INPUT)[None, :, :, None]
        with self._reader_lock:
            probs = self._reader.invoke(x)
        return ctc_greedy(probs.reshape(probs.shape[-2], probs.shape[-1]))

    def locate(self, frame: BgrImage) -> list[Candidate]:
        """The localiser's plate boxes in ``frame``, best first (none without a localiser)."""
        if self._locator is None:
            return []
        x, letterbox = locator_input(check_image(frame), LOCATOR_INPUT)
        with self._locator_lock:
            out = self._locator.invoke(x[None, :, :, None])
        return decode(out[0], letterbox, threshold=self.locator_threshold, top_k=self.top_k)

    def is_crop(self, image: BgrImage) -> bool:
        """Whether ``image`` is small enough to be taken for a plate crop and read whole."""
        h, w = image.shape[:2]
        return self._locator is None or (w <= CROP_MAX_SIZE[0] and h <= CROP_MAX_SIZE[1])

    def read(self, image: BgrImage) -> PlateResult:
        """The plate in ``image`` (a frame or a crop); ``text`` empty when unread."""
        image = check_image(image)
        h, w = image.shape[:2]
        boxes = [(0, 0, w, h)] if self.is_crop(image) else [pad_box(c.box, w, h) for c in self.locate(image)]
        if not boxes:
            boxes = [(0, 0, w, h)]
        best: tuple[str, float, tuple[int, int, int, int], BgrImage] | None = None
        tried = 0
        for box in boxes:
            x0, y0, x1, y1 = box
            if x1 - x0 < MIN_SIZE[0] or y1 - y0 < MIN_SIZE[1]:
                continue
            crop = image[y0:y1, x0:x1]
            text, conf = self.read_crop(crop)
            tried += 1
            text = normalise_plate(text) or ""
            if text and (best is None or conf > best[1]):
                best = (text, conf, box, crop)
        if best is None:
            return PlateResult("", 0.0, None, None, tried)
        text, conf, box, crop = best
        return PlateResult(
            text if conf >= self.min_confidence else "", conf, box, np.ascontiguousarray(crop), tried
        )

    def close(self) -> None:
        """Release both interpreters (safe to call twice)."""
        with self._reader_lock:
            self._reader.close()
        if self._locator is not None:
            with self._locator_lock:
                self._locator.close()
