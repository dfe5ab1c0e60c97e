"""Synthetic training data, cut and scaled by the agent's own code.

The plate reader learns from plate crops: a plate painted by :mod:`hw_sim.render_plate` (state and
province styles), put on a bumper, tilted and damaged by :mod:`hw_sim.render_damage`, and turned into
the model input by :func:`edge_agent.recognition.preprocess_crop` (the exact lane-side path). Its
validation set (``held_out=True``) is painted with registration faces and background pictures that
training never sees, so it predicts accuracy on plates of a style the model has not met.

The container reader learns from crops of container doors and sides painted by
:mod:`hw_sim.render_container`, made by :mod:`training.synth_container` (``crop_sample``).

Only numpy, pillow and the repository are needed (no TensorFlow), so the data can be inspected alone::

    python training/synth.py --model plate --count 2000 --seed 1 --out /tmp/plate.npz
"""

from __future__ import annotations

import argparse
import multiprocessing
import string
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # synth_container, however this is imported

from edge_agent.codes import check_digit
from edge_agent.recognition import CHARSET, READER_INPUT, preprocess, preprocess_crop, preprocess_lines
from hw_sim import render_fonts
from hw_sim.render import CONTAINER_ROI, Roi, render_frame
from hw_sim.render_damage import plate_crop
from hw_sim.render_plate import BACKGROUNDS_HELD_OUT, BACKGROUNDS_TRAIN, render_plate
from hw_sim.world import Scene


@dataclass(frozen=True)
class ModelShape:
    """The fixed input of one model and the region its camera role looks at."""

    role: str
    input_hw: tuple[int, int]
    roi: Roi
    max_len: int
    max_lines: int  # 1: the ROI as is (preprocess); more: lines found and laid end to end
    wide_only: bool  # keep only 16:9 frames (the region's aspect then carries the O/0 width cue)
    step_px: int  # input columns per output step (CTC time resolution)
    epochs: int  # training epochs of the shipped model
    crops: bool = False  # samples are plate crops (render_plate), not camera frames


SHAPES = {
    "plate": ModelShape(
        "plate", READER_INPUT, (0.0, 0.0, 1.0, 1.0), 8, 1, wide_only=False, step_px=4, epochs=12, crops=True
    ),
    "container": ModelShape(
        "container", (32, 256), CONTAINER_ROI, 11, 2, wide_only=False, step_px=4, epochs=8, crops=True
    ),
}

FRAME_SIZES = ((640, 360), (640, 360), (640, 360), (800, 450), (480, 270), (640, 480))
"""Frame sizes drawn per sample; a ``wide_only`` model drops the samples that draw the 4:3 one."""
ILLEGIBLE_SHARE = 0.12
_LENGTHS = (1, 2, 3, 4, 5, 6, 7, 8)
_LENGTH_P = (0.02, 0.03, 0.05, 0.08, 0.12, 0.25, 0.30, 0.15)


def random_plate(rng: np.random.Generator) -> str:
    """A plate number: random characters, or the common letters-then-digits shape."""
    n = int(rng.choice(_LENGTHS, p=_LENGTH_P))
    if rng.random() < 0.5:
        return "".join(str(c) for c in rng.choice(list(CHARSET), n))
    letters = int(rng.integers(0, n + 1))
    return "".join(str(c) for c in rng.choice(list(string.ascii_uppercase), letters)) + "".join(
        str(c) for c in rng.choice(list(string.digits), n - letters)
    )


def random_container(rng: np.random.Generator) -> str:
    """An ISO 6346 code; one in ten carries a wrong check digit (the model must read, not compute)."""
    owner = "".join(str(c) for c in rng.choice(list(string.ascii_uppercase), 3))
    category = str(rng.choice(["U", "U", "U", "U", "J", "Z"]))
    serial = "".join(str(c) for c in rng.choice(list(string.digits), 6))
    digit = check_digit(owner + category + serial)
    if rng.random() < 0.1:
        digit = int(rng.integers(0, 10))
    return f"{owner}{category}{serial}{digit}"


CROP_BLANK_SHARE = 0.04
"""Share of plate crops painted without a registration (label ``""``): the reader learns silence."""


def crop_sample(seed: int, *, held_out: bool = False) -> tuple[np.ndarray, str]:
    """One plate crop as the reader's input, and its label (``""`` for a plate with no registration)."""
    rng = np.random.default_rng([seed, 11])
    text = "" if rng.random() < CROP_BLANK_SHARE else None
    if held_out:
        plate = render_plate(
            rng, text, registration_fonts=render_fonts.REGISTRATION_HELD_OUT, backgrounds=BACKGROUNDS_HELD_OUT
        )
    else:
        plate = render_plate(rng, text, backgrounds=BACKGROUNDS_TRAIN)
    return preprocess_crop(plate_crop(rng, plate), READER_INPUT), plate.text


def sample(shape: ModelShape, seed: int, *, augment: bool = True) -> tuple[np.ndarray, str] | None:
    """One (input, label) pair; the label is ``""`` for an illegible plate or no readable code.

    ``None`` when the seed draws a frame size the model does not train on (see ``wide_only``).
    For plate crops, ``augment=False`` means the held-out validation style (unseen faces, pictures).
    """
    if shape.crops and shape.role == "container":
        from training import synth_container  # the door renderer is only imported for the container reader

        return synth_container.crop_sample(seed, held_out=not augment)
    if shape.crops:
        return crop_sample(seed, held_out=not augment)
    rng = np.random.default_rng([seed, 7])
    text: str | None = None
    if rng.random() >= ILLEGIBLE_SHARE:
        text = random_plate(rng) if shape.role == "plate" else random_container(rng)
    scene = Scene(text, None) if shape.role == "plate" else Scene(None, text)
    size = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    if shape.wide_only and size[0] * 9 != size[1] * 16:
        return None
    frame = render_frame(scene, shape.role, seed=seed, size=size)
    roi = shape.roi
    if augment:
        x0, y0, x1, y1 = roi
        dw, dh = (x1 - x0) * 0.04, (y1 - y0) * 0.04
        jx, jy = rng.uniform(-dw, dw, 2), rng.uniform(-dh, dh, 2)
        roi = (x0 + jx[0], y0 + jy[0], x1 + jx[1], y1 + jy[1])
    if shape.max_lines > 1:
        return preprocess_lines(frame, roi, shape.input_hw, shape.max_lines), text or ""
    return preprocess(frame, roi, shape.input_hw), text or ""


def _work(args: tuple[str, int, int, bool]) -> tuple[np.ndarray, list[str]]:
    name, start, count, augment = args
    shape = SHAPES[name]
    kept: list[np.ndarray] = []
    labels: list[str] = []
    for i in range(count):
        got = sample(shape, start + i, augment=augment)
        if got is not None:
            kept.append(np.round(got[0] * 255.0).astype(np.uint8))
            labels.append(got[1])
    xs = np.stack(kept) if kept else np.empty((0, *shape.input_hw), dtype=np.uint8)
    return xs, labels


def synthesise(
    name: str, count: int, seed: int, *, augment: bool = True, workers: int = 2
) -> tuple[np.ndarray, list[str]]:
    """The samples of model ``name`` from seeds ``seed .. seed+count-1`` (uint8 inputs, labels)."""
    chunk = max(1, count // (workers * 8))
    jobs = [(name, seed + s, min(chunk, count - s), augment) for s in range(0, count, chunk)]
    if workers <= 1:
        parts = [_work(j) for j in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_work, jobs)
    xs = np.concatenate([p[0] for p in parts])
    labels = [label for p in parts for label in p[1]]
    return xs, labels


def main() -> None:
    """Write a data set to an ``.npz`` file (``x``: uint8 inputs, ``y``: labels)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(SHAPES), required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    xs, labels = synthesise(a.model, a.count, a.seed, augment=not a.no_augment, workers=a.workers)
    np.savez_compressed(a.out, x=xs, y=np.array(labels))
    print(f"{len(labels)} samples -> {a.out}")


if __name__ == "__main__":
    main()
