"""Reading an ISO 6346 container code from any picture: a whole door or side, or a crop of the code.

Public API (used by the container camera, ``edge-agent read container`` and the benchmark)::

    reader = ContainerReader.open("models/container_reader.tflite", "models/container_locator.tflite")
    result = reader.read(image_bgr_uint8)  # -> ContainerResult(code, size_type, confidence, box, ...)
    reader.close()

Two of our own int8 models. The localiser (``container_locator.tflite``, the plate localiser's
CenterNet design and decoding, :mod:`edge_agent.recognition_locate`) finds the painted code block
(one line, two lines, or one character per line down a post) and the size/type code in the whole
picture. Each candidate box, padded a little, is cut out and turned into one line of text: a tall
crop (:func:`is_vertical`) is cut into its characters (:func:`vertical_rows`) laid end to end; any
other crop has its one or two lines found and laid end to end
(:func:`edge_agent.recognition.preprocess_lines`). The reader (``container_reader.tflite``) reads
that 32 x 256 strip with CTC over ``0-9A-Z``.

A read is a code only when :func:`edge_agent.container_code.validate` accepts it: 11 characters in
the owner/category/serial/check shape with an agreeing check digit, after correcting only the
unambiguous confusions. A 4-character read that is a valid size/type code is the size/type. Right or
absent: no valid read, or two different valid codes as good as each other, is unread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from drivers.camera.base import Frame
from edge_agent.container_code import ContainerCode, validate, validate_size_type
from edge_agent.domain import ContainerRead, PlateRead
from edge_agent.recognition import WHOLE, FloatArray, ctc_greedy, luma, preprocess_lines, resample, stretch
from edge_agent.recognition_locate import LOCATOR_INPUT, Candidate, decode, locator_input, pad_box
from edge_agent.recognition_plate import MIN_SIZE, BgrImage, check_image

if TYPE_CHECKING:
    from drivers.inference import Inference

CONTAINER_INPUT = (32, 256)
"""The container reader's input (height, width): the code's lines (or characters) laid end to end."""
CROP_MAX_SIZE = (480, 320)
"""A picture at most this wide and tall is also read whole, as a crop of the code."""
VERTICAL_ASPECT = 2.0
"""A crop at least this many times taller than wide holds a vertical code (one character per line)."""
MAX_ROWS = 12
"""The most character rows a vertical code is cut into (11 characters, and one spare for a gap)."""


def is_vertical(crop: BgrImage) -> bool:
    """Whether ``crop`` is a vertical code: one character per line, top to bottom."""
    h, w = crop.shape[:2]
    return bool(h >= VERTICAL_ASPECT * w)


def vertical_rows(gray: FloatArray, max_rows: int = MAX_ROWS) -> list[tuple[int, int]]:
    """The character rows of a vertical code (grey in [0, 1]) as ``(top, bottom)`` bands, top to bottom.

    A row's edge energy (differences across and down) is high on a character and low in the gaps
    between characters; runs of rows above a fifth of the peak are characters. A run much taller than
    the typical one is two or more characters set close together and is cut into equal parts. Runs
    too short to be a character (noise, a scratch) are dropped. No clear rows: the whole crop.
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
    tall = [b - a for a, b in runs]
    if not tall:
        return [(0, h)]
    typical = float(np.median(sorted(tall)[len(tall) // 3 :]))  # the shorter third may be noise
    rows: list[tuple[int, int]] = []
    for a, b in runs:
        if b - a < max(2.0, 0.35 * typical):
            continue
        parts = max(1, round((b - a) / typical)) if b - a > 1.6 * typical else 1
        step = (b - a) / parts
        rows.extend((round(a + i * step), round(a + (i + 1) * step)) for i in range(parts))
    return rows[:max_rows] if rows else [(0, h)]


def vertical_strip(crop: BgrImage, size: tuple[int, int] = CONTAINER_INPUT) -> FloatArray:
    """The reader's input for a vertical code: each character row scaled to the height, laid end to end."""
    out_h, out_w = size
    gray = luma(crop)
    view_w = max(8, min(64, gray.shape[1]))
    view_h = max(16, round(gray.shape[0] * view_w / gray.shape[1]))
    view = stretch(resample(gray, view_h, view_w))
    scale = gray.shape[0] / view_h
    parts: list[FloatArray] = []
    for top, bottom in vertical_rows(view):
        margin = 0.15 * (bottom - top)
        y0 = max(0, int((top - margin) * scale))
        y1 = min(gray.shape[0], int(np.ceil((bottom + margin) * scale)))
        band = gray[y0 : max(y1, y0 + 2)]
        width = max(2, min(out_w, round(band.shape[1] * out_h / band.shape[0])))
        if parts:
            parts.append(np.full((out_h, max(2, out_h // 8)), float(np.median(band)), dtype=np.float32))
        parts.append(resample(band, out_h, width))
    strip = np.concatenate(parts, axis=1)
    if strip.shape[1] > out_w:
        strip = resample(strip, out_h, out_w)
    elif strip.shape[1] < out_w:
        pad = np.full((out_h, out_w - strip.shape[1]), float(np.median(strip)), dtype=np.float32)
        strip = np.concatenate([strip, pad], axis=1)
    return stretch(strip)


def container_input(crop: BgrImage, size: tuple[int, int] = CONTAINER_INPUT) -> FloatArray:
    """The reader's input for a crop of a code: vertical codes by character, others by line."""
    if is_vertical(crop):
        return vertical_strip(crop, size)
    return preprocess_lines(crop, WHOLE, size, max_lines=2)


@dataclass(frozen=True)
class ContainerResult:
    """One container code read from one picture.

    ``code`` is the 11-character code (``""`` when unread); ``size_type`` the size/type code when one
    was read (else ``None``); ``confidence`` the code read's (the weakest character's probability;
    0.0 when no code was read); ``box`` where the code is (``x0, y0, x1, y1``); ``raw`` what the
    reader saw in that box before validation; ``candidates`` how many crops were read; ``reason`` why
    the best read was refused when ``code`` is empty.
    """

    code: str
    size_type: str | None
    confidence: float
    box: tuple[int, int, int, int] | None
    raw: str
    candidates: int
    reason: str = ""


@dataclass(frozen=True)
class _Read:
    box: tuple[int, int, int, int]
    raw: str
    confidence: float
    score: float  # the localiser's (1.0 for the whole picture)


class ContainerReader:
    """The container localiser and reader together (thread-safe: each model behind its own lock)."""

    def __init__(
        self,
        reader: Inference,
        locator: Inference | None = None,
        *,
        min_confidence: float = 0.5,
        top_k: int = 4,
        locator_threshold: float = 0.3,
    ) -> None:
        if tuple(reader.input_shape[1:3]) != CONTAINER_INPUT:
            raise ValueError(f"container reader input {reader.input_shape}, expected {CONTAINER_INPUT}")
        if locator is not None and tuple(locator.input_shape[1:3]) != LOCATOR_INPUT:
            raise ValueError(f"container localiser input {locator.input_shape}, expected {LOCATOR_INPUT}")
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
    ) -> ContainerReader:
        """Load the models with LiteRT (or tflite-runtime); no localiser: every picture is a crop."""
        from drivers.inference import open_interpreter

        reader = open_interpreter(reader_path, num_threads)
        locator = open_interpreter(locator_path, num_threads) if locator_path is not None else None
        return cls(reader, locator, min_confidence=min_confidence)

    def read_crop(self, crop: BgrImage) -> tuple[str, float]:
        """The raw read of a crop of a code: text (``[A-Z0-9]``, may be empty) and confidence; no floor."""
        x = container_input(check_image(crop), CONTAINER_INPUT)[None, :, :, None]
        with self._reader_lock:
            probs = self._reader.invoke(x)
        return ctc_greedy(probs.reshape(probs.shape[-2], probs.shape[-1]))

    def locate(self, image: BgrImage) -> list[Candidate]:
        """The localiser's code and size/type boxes in ``image``, best first (none without a localiser)."""
        if self._locator is None:
            return []
        x, letterbox = locator_input(check_image(image), LOCATOR_INPUT)
        with self._locator_lock:
            out = self._locator.invoke(x[None, :, :, None])
        return decode(out[0], letterbox, threshold=self.locator_threshold, top_k=self.top_k)

    def _boxes(self, image: BgrImage) -> list[tuple[tuple[int, int, int, int], float]]:
        h, w = image.shape[:2]
        found = [(pad_box(c.box, w, h, 0.06, 0.12), c.score) for c in self.locate(image)]
        small = w <= CROP_MAX_SIZE[0] and h <= CROP_MAX_SIZE[1]
        if not found or small or is_vertical(image) or w >= 3 * h:
            found.append(((0, 0, w, h), 1.0 if not found else 0.5))
        return found

    def read(self, image: BgrImage) -> ContainerResult:
        """The container code in ``image`` (a whole door or side, or a crop); ``code`` empty when unread."""
        image = check_image(image)
        reads: list[_Read] = []
        for box, score in self._boxes(image):
            x0, y0, x1, y1 = box
            if x1 - x0 < MIN_SIZE[0] or y1 - y0 < MIN_SIZE[1]:
                continue  # a sliver of a box: nothing legible (and check_image would refuse it)
            raw, conf = self.read_crop(image[y0:y1, x0:x1])
            reads.append(_Read(box, raw, conf, score))
        return self.choose(reads)

    def choose(self, reads: list[_Read]) -> ContainerResult:
        """The result from the crops' reads: the best valid code, right or absent."""
        size_type = None
        st_reads = [(r.confidence, t) for r in reads if (t := validate_size_type(r.raw)) is not None]
        if st_reads:
            size_type = max(st_reads)[1]
        codes: list[tuple[float, str, _Read]] = []
        reason = "no text read" if not any(r.raw for r in reads) else ""
        for r in reads:
            got = validate(r.raw)
            if not isinstance(got, ContainerCode):
                if not reason or len(r.raw) >= 8:
                    reason = got.reason
                continue
            codes.append((r.confidence * (0.5 + 0.5 * r.score), got.code, r))
        if not codes:
            best_raw = max(reads, key=lambda r: len(r.raw), default=None)
            return ContainerResult(
                "", size_type, 0.0, None, best_raw.raw if best_raw else "", len(reads), reason
            )
        codes.sort(key=lambda t: -t[0])
        _, code, best = codes[0]
        rivals = [c for c in codes[1:] if c[1] != code and c[2].confidence >= self.min_confidence]
        if rivals and best.confidence - rivals[0][2].confidence < 0.1:
            return ContainerResult(
                "", size_type, best.confidence, best.box, best.raw, len(reads),
                f"two different valid codes: {code} and {rivals[0][1]}",
            )  # fmt: skip
        if best.confidence < self.min_confidence:
            return ContainerResult(
                "", size_type, best.confidence, best.box, best.raw, len(reads),
                f"confidence {best.confidence:.2f} below {self.min_confidence:.2f}",
            )  # fmt: skip
        return ContainerResult(code, size_type, best.confidence, best.box, best.raw, len(reads))

    def close(self) -> None:
        """Release both interpreters (safe to call twice)."""
        with self._reader_lock:
            self._reader.close()
        if self._locator is not None:
            with self._locator_lock:
                self._locator.close()


class ContainerRecogniser:
    """The container camera's recogniser (``camera.Recogniser``): one :class:`ContainerReader` per lane.

    A frame gives at most one :class:`~edge_agent.domain.ContainerRead`, and only a validated code
    (check digit agreeing, at or above the floor); anything else is counted in ``unread``.
    """

    def __init__(self, reader: ContainerReader) -> None:
        self._reader = reader
        self.unread = 0

    @classmethod
    def open(cls, model: Path, *, num_threads: int = 1, min_confidence: float = 0.5) -> ContainerRecogniser:
        """Load the reader at ``model`` and, beside it, ``container_locator.tflite`` when it ships."""
        locator = model.with_name("container_locator.tflite")
        return cls(
            ContainerReader.open(
                model,
                locator if locator.is_file() else None,
                num_threads=num_threads,
                min_confidence=min_confidence,
            )
        )

    def recognise(self, frame: Frame, role: str) -> list[PlateRead | ContainerRead]:
        """The container code legible on ``frame`` (nothing for another role, or when unread)."""
        if role != "container" or frame.image is None:
            return []
        got = self._reader.read(frame.image)
        if not got.code:
            self.unread += 1
            return []
        return [ContainerRead(got.code, True, got.confidence, frame.camera, frame.captured)]

    def close(self) -> None:
        """Release the models."""
        self._reader.close()
