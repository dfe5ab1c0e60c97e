"""``edge-agent read plate|container FILE...``: the lane's readers on image files, with optional scoring.

Prints one line per image, ``file<TAB>text<TAB>confidence`` (empty text when unread: nothing
legible, or less sure than ``--min-confidence``; for a container code, also a code whose check digit
disagrees). Plates: a 16:9 frame (at least 480 pixels wide) is read through the plate camera's region
of interest (``recognition.plate_roi``), anything else is taken as a crop and read whole. Container
codes: whole doors and sides are searched with the container localiser, crops of the code are read
whole (:mod:`edge_agent.recognition_container`).

``--truth CSV`` (columns ``file,region,text``, a header row optional; rows matched to the images by
file basename; ``region`` is not used) adds a summary: exact-match rate, character accuracy, unread
rate, wrong rate (a confident read that is not the truth) and milliseconds per image (reading only,
decoding excluded). Summary lines start with ``#`` so the output stays a TSV for other tools.

Exit status: 0 when every file could be read as an image (unread images are results, not errors);
1 when at least one file could not (each gets one ``FILE: what was wrong`` line on stderr, the others
are still read); 2 for a usage problem (a truth file that cannot be read, a model that cannot load).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import numpy as np
import numpy.typing as npt

from drivers.camera.files import ImageError, read_image
from edge_agent.camera import PlateReaderLike
from edge_agent.codes import normalise_plate

if TYPE_CHECKING:
    from drivers.inference import Inference

EXIT_OK, EXIT_BAD_FILES, EXIT_USAGE = 0, 1, 2
PROGRESS_EVERY = 100
"""With more files than this, progress goes to stderr every this many files."""

EXAMPLE = """example:
  edge-agent read plate captures/*.jpg
  edge-agent read plate --truth truth.csv --json crops/*.png

truth.csv:
  file,region,text
  car_0001.jpg,120 80 200 100,ABC1234
"""


@dataclass(frozen=True, slots=True)
class PlateReading:
    """What the reader saw on one image: the text (``""`` when unread), its confidence, the crop read."""

    text: str
    confidence: float
    box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 in the image (None: the whole image)
    crop: Any


def is_whole_frame(image: npt.NDArray[np.uint8]) -> bool:
    """Whether ``image`` is a camera frame (16:9, at least 480 wide) rather than a plate crop."""
    h, w = image.shape[:2]
    return bool(w >= 480 and abs(w / h - 16 / 9) < 0.03)


class ClosablePlateReader(PlateReaderLike, Protocol):
    """A plate reader that holds models."""

    def close(self) -> None:
        """Release the models."""
        ...


ROI_READER_INPUT = (48, 128)
"""Input (height, width) of the fixed-ROI plate model: it reads the plate camera's region of interest."""


class RoiPlateReader:
    """Reads a plate with the fixed-ROI plate model: a frame through the plate ROI, a crop whole.

    The preprocessing and decoding are :mod:`edge_agent.recognition`'s, exactly as the model was
    trained. Not thread-safe: one reader per thread (each camera's worker has its own).
    """

    def __init__(self, model: Inference, roi: tuple[float, float, float, float]) -> None:
        self._model = model
        self._roi = roi
        self._model.invoke(np.zeros(self._model.input_shape, dtype=np.float32))  # warm up before a truck

    def read(self, image: npt.NDArray[np.uint8]) -> PlateReading:
        """The plate on ``image`` (h, w, 3 uint8, B, G, R)."""
        from edge_agent.recognition import ctc_greedy, preprocess, roi_pixels

        h, w = image.shape[:2]
        roi = self._roi if is_whole_frame(image) else (0.0, 0.0, 1.0, 1.0)
        _, in_h, in_w, _ = self._model.input_shape
        probs = self._model.invoke(preprocess(image, roi, (in_h, in_w))[None, :, :, None])
        text, conf = ctc_greedy(probs.reshape(probs.shape[-2], probs.shape[-1]))
        box = roi_pixels(roi, w, h)
        return PlateReading(normalise_plate(text) or "", conf, box, image[box[1] : box[3], box[0] : box[2]])

    def close(self) -> None:
        """Release the interpreter."""
        self._model.close()


def open_plate_reader(
    model_path: Path,
    roi: tuple[float, float, float, float],
    *,
    locator_path: Path | None = None,
    num_threads: int = 1,
) -> ClosablePlateReader:
    """The plate reader the shipped models make: fixed-ROI, or crop reader plus localiser.

    A model whose input is :data:`ROI_READER_INPUT` reads the plate camera's region of interest
    (:class:`RoiPlateReader`); any other is the crop reader of
    :class:`edge_agent.recognition_plate.PlateReader`, which finds the plate in a frame with the
    localiser at ``locator_path`` (when that file exists). Reads come back without a confidence floor:
    callers apply theirs (the passage vote, ``--min-confidence``).
    """
    from drivers.inference import open_interpreter

    model = open_interpreter(model_path, num_threads=num_threads)
    if tuple(model.input_shape[1:3]) == ROI_READER_INPUT:
        return RoiPlateReader(model, roi)
    # the two-stage reader ships with its models (imported only for them)
    two_stage = importlib.import_module("edge_agent.recognition_plate")
    locator = None
    if locator_path is not None and locator_path.is_file():
        locator = open_interpreter(locator_path, num_threads=num_threads)
    reader: ClosablePlateReader = two_stage.PlateReader(model, locator, min_confidence=0.0)
    return reader


def locator_model(model_path: Path) -> Path:
    """Where the localiser ships: beside the plate model (``plate_locator.tflite``)."""
    return model_path.with_name("plate_locator.tflite")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between ``a`` and ``b``."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def load_truth(path: Path, normalise: Callable[[str], str | None] = normalise_plate) -> dict[str, str]:
    """``file basename -> text`` from a ``file,region,text`` CSV (``ValueError`` naming the problem).

    ``normalise`` turns the text column into what a read is compared with (a plate by default).
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from exc
    truth: dict[str, str] = {}
    for n, row in enumerate(rows, 1):
        if not row or (n == 1 and [c.strip().lower() for c in row[:3]] == ["file", "region", "text"]):
            continue
        if len(row) != 3:
            raise ValueError(f"{path}:{n}: expected 3 columns file,region,text, got {len(row)}")
        name = Path(row[0].strip()).name
        if not name:
            raise ValueError(f"{path}:{n}: empty file name")
        truth[name] = normalise(row[2]) or ""
    return truth


@dataclass(slots=True)
class Score:
    """Running totals against ground truth."""

    scored: int = 0
    exact: int = 0
    unread: int = 0
    wrong: int = 0
    chars: float = 0.0
    no_truth: int = 0
    read_s: float = 0.0
    images: int = 0

    def add(self, read: str, truth: str) -> bool:
        """Score one read; True when it is exact."""
        self.scored += 1
        if read == truth:
            self.exact += 1
        elif not read:
            self.unread += 1
        else:
            self.wrong += 1
        self.chars += max(0.0, 1.0 - edit_distance(read, truth) / max(1, len(truth)))
        return read == truth

    def summary(self) -> dict[str, Any]:
        """Rates over the scored images; ``ms_per_image`` over every image read."""
        n = max(1, self.scored)
        return {
            "images": self.images,
            "scored": self.scored,
            "no_truth": self.no_truth,
            "exact_match": round(self.exact / n, 4),
            "char_accuracy": round(self.chars / n, 4),
            "unread_rate": round(self.unread / n, 4),
            "wrong_rate": round(self.wrong / n, 4),
            "ms_per_image": round(1000.0 * self.read_s / max(1, self.images), 3),
        }


CONTAINER_EXAMPLE = """example:
  edge-agent read container gate/*.jpg
  edge-agent read container --truth truth.csv --json doors/*.png

truth.csv:
  file,region,text
  door_0001.jpg,,MSCU1234565
"""


@dataclass(frozen=True, slots=True)
class Reading:
    """One image's read as the command prints it: text (``""`` unread), confidence, extra JSON fields."""

    text: str
    confidence: float
    extra: dict[str, Any]


class ImageReader(Protocol):
    """What the command runs over each image."""

    def __call__(self, image: npt.NDArray[np.uint8]) -> Reading:
        """Read one image."""
        ...


def _plate_reader(args: argparse.Namespace) -> tuple[ImageReader, Callable[[], None]]:
    from edge_agent.config.camera import TfliteRecognitionConfig

    cfg = TfliteRecognitionConfig(backend="tflite")
    model = args.model or cfg.plate_model
    reader = open_plate_reader(model, cfg.plate_roi.as_tuple(), locator_path=locator_model(model))

    def read(image: npt.NDArray[np.uint8]) -> Reading:
        got = reader.read(image)
        text = got.text if got.confidence >= args.min_confidence else ""
        return Reading(text, got.confidence, {})

    return read, reader.close


def _container_reader(args: argparse.Namespace) -> tuple[ImageReader, Callable[[], None]]:
    from edge_agent.config.camera import TfliteRecognitionConfig
    from edge_agent.recognition_container import ContainerReader

    cfg = TfliteRecognitionConfig(backend="tflite")
    model = args.model or cfg.container_model
    locator = container_locator_model(model)
    reader = ContainerReader.open(
        model, locator if locator.is_file() else None, min_confidence=args.min_confidence
    )

    def read(image: npt.NDArray[np.uint8]) -> Reading:
        got = reader.read(image)
        extra: dict[str, Any] = {"size_type": got.size_type}
        if not got.code and got.reason:
            extra["unread"] = got.reason
        return Reading(got.code, got.confidence, extra)

    return read, reader.close


def container_locator_model(model_path: Path) -> Path:
    """Where the container localiser ships: beside the reader (``container_locator.tflite``)."""
    return model_path.with_name("container_locator.tflite")


def _normalise_container(raw: str) -> str | None:
    from edge_agent.codes import normalise_container

    return normalise_container(raw) or None


_KINDS: dict[str, tuple[Callable[[argparse.Namespace], tuple[ImageReader, Callable[[], None]]], Any]] = {
    "plate": (_plate_reader, normalise_plate),
    "container": (_container_reader, _normalise_container),
}


def _add(read_sub: Any, kind: str, help_text: str, description: str, example: str, floor: float) -> None:
    p = read_sub.add_parser(
        kind,
        help=help_text,
        description=description,
        epilog=example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--truth", type=Path, help="ground truth CSV: file,region,text")
    p.add_argument("--json", action="store_true", help="one JSON object per image, then a summary object")
    p.add_argument(
        "--min-confidence",
        type=float,
        default=floor,
        help=f"less sure than this is unread (default {floor})",
    )
    p.add_argument("--model", type=Path, default=None, help=f"{kind} reader model (default: the shipped one)")
    p.set_defaults(func=run, read_kind=kind)


def register(subparsers: Any) -> None:
    """Add ``edge-agent read plate`` and ``edge-agent read container``."""
    read = subparsers.add_parser("read", help="run the lane's recognisers on image files")
    read_sub = read.add_subparsers(dest="read_command", required=True)
    _add(
        read_sub,
        "plate",
        "read the licence plate on images (frames or crops)",
        __doc__.split("\n\n", 1)[1],
        EXAMPLE,
        0.6,
    )
    _add(
        read_sub,
        "container",
        "read the ISO 6346 container code on images (doors, sides or crops of the code)",
        CONTAINER_DOC,
        CONTAINER_EXAMPLE,
        0.5,
    )


CONTAINER_DOC = """One line per image, file<TAB>code<TAB>confidence: the 11 characters of the code without
spaces, empty when unread (no code found, the check digit disagrees, two different valid codes, or less sure
than --min-confidence). Whole doors and sides are searched for the code with the localiser; crops of
the code are read whole. --json adds the size/type code (e.g. 45G1) when one was read, and why a code
was unread. --truth as for plates (the text column is the 11-character code)."""


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The command's body."""
    out, err = out or sys.stdout, err or sys.stderr
    kind = getattr(args, "read_kind", "plate")
    name = f"edge-agent read {kind}"
    opener, normalise = _KINDS[kind]
    truth: dict[str, str] | None = None
    if args.truth is not None:
        try:
            truth = load_truth(args.truth, normalise)
        except ValueError as exc:
            print(f"{name}: {exc}", file=err)
            return EXIT_USAGE
    try:
        reader, close = opener(args)
    except (ImportError, ValueError, OSError) as exc:
        print(f"{name}: cannot load the {kind} model: {exc}", file=err)
        return EXIT_USAGE
    score, bad = Score(), 0
    total = len(args.files)
    try:
        for n, path in enumerate(args.files, 1):
            if total > PROGRESS_EVERY and n % PROGRESS_EVERY == 0:
                print(f"read {kind}: {n}/{total} files", file=err, flush=True)
            try:
                image = read_image(path)
            except ImageError as exc:
                bad += 1
                print(f"{name}: {exc}", file=err)
                continue
            t0 = time.perf_counter()
            got = reader(image)
            score.read_s += time.perf_counter() - t0
            score.images += 1
            record: dict[str, Any] = {
                "file": str(path),
                "text": got.text,
                "confidence": round(got.confidence, 3),
            }
            record |= got.extra
            if truth is not None:
                expected = truth.get(path.name)
                if expected is None:
                    score.no_truth += 1
                    print(f"{name}: {path}: no row in {args.truth}", file=err)
                else:
                    record |= {"truth": expected, "exact": score.add(got.text, expected)}
            if args.json:
                print(json.dumps(record), file=out)
            else:
                print(f"{path}\t{got.text}\t{got.confidence:.3f}", file=out)
    finally:
        close()
    if truth is not None:
        summary = score.summary() | {"bad_files": bad}
        if args.json:
            print(json.dumps({"summary": summary}), file=out)
        else:
            for key, value in summary.items():
                print(f"# {key}\t{value}", file=out)
    return EXIT_BAD_FILES if bad else EXIT_OK
