"""The localiser's pure parts: the letterboxed input, peak picking, box decoding, NMS, padding."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.recognition_locate import (
    LOCATOR_INPUT,
    STRIDE,
    Letterbox,
    box_iou,
    decode,
    locator_input,
    pad_box,
    shrink,
)

CELLS = (LOCATOR_INPUT[0] // STRIDE, LOCATOR_INPUT[1] // STRIDE)


def _output(peaks: list[tuple[int, int, float, float, float]]) -> np.ndarray:
    """A fake localiser output with peaks at (row, col, prob, width px, height px) of the input."""
    out = np.zeros((*CELLS, 3), dtype=np.float32)
    for y, x, p, w, h in peaks:
        out[y, x] = (p, np.log(w / STRIDE), np.log(h / STRIDE))
    return out


@pytest.mark.parametrize(
    ("size", "scale"), [((1280, 720), 0.2), ((640, 480), 0.3), ((1920, 1080), 256 / 1920)]
)
def test_the_input_is_the_frame_letterboxed_into_the_model_size(size: tuple[int, int], scale: float) -> None:
    w, h = size
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    frame[:, : w // 2] = 200
    x, lb = locator_input(frame)
    assert x.shape == LOCATOR_INPUT and x.dtype == np.float32
    assert lb.scale == pytest.approx(scale) and (lb.width, lb.height) == (w, h)
    assert x.min() >= 0.0 and x.max() <= 1.0
    used_w = round(w * scale)
    assert x[:, : used_w // 2 - 1].mean() > 0.9 and x[:, used_w // 2 + 1 : used_w].mean() < 0.1


def test_shrink_averages_blocks() -> None:
    gray = np.kron(np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((5, 5), dtype=np.float32))
    np.testing.assert_allclose(shrink(gray, 2, 3), np.arange(6).reshape(2, 3), atol=1e-5)


def test_a_peak_becomes_a_box_in_frame_pixels() -> None:
    lb = Letterbox(0.2, 1280, 720)  # 1280 x 720 shrunk 5x
    (cand,) = decode(_output([(20, 30, 0.9, 40.0, 20.0)]), lb)
    cx, cy = (30 + 0.5) * STRIDE / 0.2, (20 + 0.5) * STRIDE / 0.2
    assert cand.score == pytest.approx(0.9)
    assert cand.box == (round(cx - 100), round(cy - 50), round(cx + 100), round(cy + 50))


def test_below_threshold_and_non_maxima_are_not_candidates() -> None:
    lb = Letterbox(1.0, 256, 144)
    out = _output([(10, 10, 0.2, 30, 15), (20, 40, 0.8, 30, 15)])
    out[20, 41, 0] = 0.7  # a shoulder of the same peak, not a peak
    cands = decode(out, lb, threshold=0.3)
    assert [c.score for c in cands] == [pytest.approx(0.8)]


def test_overlapping_candidates_keep_the_best_and_order_is_by_score() -> None:
    lb = Letterbox(1.0, 256, 144)
    out = _output([(10, 10, 0.6, 40, 20), (10, 12, 0.9, 40, 20), (25, 50, 0.7, 40, 20)])
    cands = decode(out, lb, threshold=0.3, iou=0.4)
    assert [round(c.score, 1) for c in cands] == [0.9, 0.7]


def test_top_k_bounds_the_candidates() -> None:
    lb = Letterbox(1.0, 256, 144)
    peaks = [(5 + 6 * (i // 8), 4 + 7 * (i % 8), 0.5 + i / 100, 12.0, 6.0) for i in range(20)]
    assert len(decode(_output(peaks), lb, top_k=3)) == 3


def test_boxes_are_clipped_to_the_frame() -> None:
    lb = Letterbox(1.0, 256, 144)
    (cand,) = decode(_output([(0, 0, 0.9, 60, 30)]), lb)
    assert cand.box[0] == 0 and cand.box[1] == 0


def test_iou_and_padding() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    assert pad_box((100, 100, 200, 150), 1280, 720) == (92, 92, 208, 157)
    assert pad_box((0, 0, 100, 50), 90, 40) == (0, 0, 90, 40)
