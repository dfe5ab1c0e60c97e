"""Synthetic container-code data: crops for the reader, whole pictures for the localiser.

Both come from :func:`hw_sim.render_container.render_container` (doors and sides, corrugation, paint,
distractor text, damage) and are turned into model inputs by the agent's own code:
:func:`edge_agent.recognition_container.container_input` for a crop (vertical codes cut into their
characters, others into their lines, laid end to end) and
:func:`edge_agent.recognition_locate.locator_input` for a whole picture.

Reader samples: 72 % crops around the painted code (label: the 11 characters), 18 % around the
size/type code (label: e.g. ``45G1``; the same reader reads both), 10 % crops of the picture away from
both (distractor text, ribs, rust; label ``""``: the reader learns to say nothing). The crop is
jittered and loose by a random margin, as a localiser's box is. Validation (``held_out=True``) is
painted with the renderer's held-out faces and styles.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.recognition_container import CONTAINER_INPUT, container_input
from edge_agent.recognition_locate import locator_input
from hw_sim.render_container import ContainerImage, code_crop, render_container

SIZES = ((640, 360), (640, 360), (800, 450), (640, 480), (512, 384))
"""Picture sizes drawn per reader sample (16:9 mostly, some 4:3)."""
FRAME_SIZES = ((512, 288), (640, 360), (512, 384), (576, 324))
"""Picture sizes drawn per localiser sample (its input is 256 wide: larger renders add nothing)."""
Box = tuple[int, int, int, int]


def _picture(
    rng: np.random.Generator, held_out: bool, sizes: tuple[tuple[int, int], ...] = SIZES
) -> ContainerImage:
    size = sizes[int(rng.integers(len(sizes)))]
    return render_container(rng, size, held_out=held_out)


def box_crop(rng: np.random.Generator, image: np.ndarray, box: Box, loose: float) -> np.ndarray:
    """A crop around ``box``: each side moved by up to a tenth of the box's smaller side, plus a margin."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0)
    jit = rng.uniform(-0.1, 0.1, 4) * side
    m = loose * side
    cx0 = int(np.clip(x0 - m + jit[0], 0, w - 2))
    cy0 = int(np.clip(y0 - m + jit[1], 0, h - 2))
    cx1 = int(np.clip(x1 + m + jit[2], cx0 + 2, w))
    cy1 = int(np.clip(y1 + m + jit[3], cy0 + 2, h))
    return np.ascontiguousarray(image[cy0:cy1, cx0:cx1])


def _overlaps(a: Box, b: Box | None) -> bool:
    return b is not None and a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _background(rng: np.random.Generator, pic: ContainerImage) -> np.ndarray | None:
    """A text-line-shaped crop that misses the code and the size/type code (``None`` if none fits)."""
    h, w = pic.image.shape[:2]
    for _ in range(8):
        bh = int(rng.uniform(0.04, 0.15) * h)
        bw = int(bh * (rng.uniform(0.15, 0.5) if rng.random() < 0.2 else rng.uniform(1.5, 7.0)))
        if bw < 8 or bh < 8 or bw >= w or bh >= h:
            continue
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        box = (x0, y0, x0 + bw, y0 + bh)
        if not _overlaps(box, pic.code_box) and not _overlaps(box, pic.size_type_box):
            return np.ascontiguousarray(pic.image[y0 : y0 + bh, x0 : x0 + bw])
    return None


def crop_sample(seed: int, *, held_out: bool = False) -> tuple[np.ndarray, str]:
    """One reader sample: the input (grey in [0, 1], :data:`CONTAINER_INPUT`) and its label."""
    rng = np.random.default_rng([seed, 17])
    pic = _picture(rng, held_out)
    pick = rng.random()
    if pick < 0.72 and pic.code_box is not None and pic.code is not None:
        crop, label = code_crop(rng, pic, loose=float(rng.uniform(0.03, 0.3))), pic.code
    elif pick < 0.90 and pic.size_type_box is not None and pic.size_type is not None:
        crop, label = (
            box_crop(rng, pic.image, pic.size_type_box, float(rng.uniform(0.05, 0.35))),
            pic.size_type,
        )
    else:
        got = _background(rng, pic)
        if got is None and pic.code_box is not None and pic.code is not None:
            crop, label = code_crop(rng, pic, loose=0.1), pic.code
        elif got is None:
            crop, label = pic.image, ""
        else:
            crop, label = got, ""
    return container_input(crop, CONTAINER_INPUT), label


def frame_sample(seed: int, *, held_out: bool = False) -> tuple[np.ndarray, np.ndarray, Box | None]:
    """One localiser sample: the input (uint8), two input-space boxes and the code's picture box.

    The boxes are the code's and the size/type's, ``[[cx, cy, w, h], [cx, cy, w, h]]`` (zeros for an
    absent one).
    """
    rng = np.random.default_rng([seed, 19])
    pic = _picture(rng, held_out, FRAME_SIZES)
    x, lb = locator_input(pic.image)
    target = np.zeros((2, 4), dtype=np.float32)
    for k, box in enumerate(
        (pic.code_box if pic.code else None, pic.size_type_box if pic.size_type else None)
    ):
        if box is not None:
            x0, y0, x1, y1 = (v * lb.scale for v in box)
            target[k] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
    return np.round(x * 255).astype(np.uint8), target, pic.code_box
