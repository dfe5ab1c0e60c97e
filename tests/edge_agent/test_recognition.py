"""The shipped TFLite models, run by the real LiteRT interpreter, read rendered plates and container codes."""

from __future__ import annotations

import string
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from drivers.camera.base import Frame
from drivers.camera.simlink import SceneFrame
from edge_agent.codes import check_digit
from edge_agent.config.camera import TfliteRecognitionConfig
from edge_agent.domain import ContainerRead, PlateRead
from edge_agent.recognition import (
    CHARSET,
    TfliteRecogniser,
    _area_weights,
    ctc_greedy,
    find_lines,
    preprocess,
    preprocess_lines,
)
from hw_sim.render import render_frame
from hw_sim.world import Scene

# Seeds well away from the training (1_000_000+) and validation (5_000_000+) sets.
SEEDS = range(100, 140)
# Measured on these seeds (plate: 85 % with the shipped plate_ocr.tflite), less a margin for 40 samples.
PLATE_MIN_ACCURACY = 0.75
CONTAINER_MIN_ACCURACY = 0.95


CONTAINER_MODEL = TfliteRecognitionConfig(backend="tflite").container_model
ROLES = ("plate", "container") if CONTAINER_MODEL.is_file() else ("plate",)
needs_container_model = pytest.mark.skipif(
    not CONTAINER_MODEL.is_file(),
    reason=f"container model not shipped yet ({CONTAINER_MODEL.name}, issue #11)",
)


@pytest.fixture(scope="module")
def recogniser() -> Iterator[TfliteRecogniser]:
    rec = TfliteRecogniser(TfliteRecognitionConfig(backend="tflite"), roles=ROLES)
    yield rec
    rec.close()
    rec.close()


def _plate_text(rng: np.random.Generator) -> str:
    n = int(rng.integers(2, 9))
    return "".join(str(c) for c in rng.choice(list(CHARSET), n))


def _container_code(rng: np.random.Generator) -> str:
    head = "".join(str(c) for c in rng.choice(list(string.ascii_uppercase), 3)) + "U"
    head += "".join(str(c) for c in rng.choice(list(string.digits), 6))
    return head + str(check_digit(head))


def _frame(scene: Scene, role: str, seed: int) -> Frame:
    return Frame("cam", 12.5, render_frame(scene, role, seed=seed))


def test_reads_rendered_plates(recogniser: TfliteRecogniser) -> None:
    rng = np.random.default_rng(77)
    right = 0
    for seed in SEEDS:
        text = _plate_text(rng)
        reads = recogniser.recognise(_frame(Scene(text, None), "plate", seed), "plate")
        assert len(reads) <= 1
        if reads:
            read = reads[0]
            assert isinstance(read, PlateRead)
            assert (read.camera, read.mono) == ("cam", 12.5)
            assert 0.5 <= read.confidence <= 1.0
            right += read.text == text
    assert right / len(SEEDS) >= PLATE_MIN_ACCURACY


@needs_container_model
def test_reads_rendered_container_codes_and_checks_them(recogniser: TfliteRecogniser) -> None:
    rng = np.random.default_rng(78)
    right = 0
    for seed in SEEDS:
        code = _container_code(rng)
        reads = recogniser.recognise(_frame(Scene(None, code), "container", seed), "container")
        if reads:
            read = reads[0]
            assert isinstance(read, ContainerRead)
            if read.code == code:
                right += 1
                assert read.check_ok
    assert right / len(SEEDS) >= CONTAINER_MIN_ACCURACY


@needs_container_model
def test_a_wrong_check_digit_is_read_as_painted_and_flagged(recogniser: TfliteRecogniser) -> None:
    good = "CSQU3054383"
    bad = good[:10] + "4"
    for seed in range(200, 205):
        reads = recogniser.recognise(_frame(Scene(None, bad), "container", seed), "container")
        if reads:
            read = reads[0]
            assert isinstance(read, ContainerRead)
            assert read.code == bad
            assert not read.check_ok
            return
    pytest.fail("no read of a clean code in five frames")


def test_illegible_plate_gives_no_read(recogniser: TfliteRecogniser) -> None:
    reads = sum(
        len(recogniser.recognise(_frame(Scene(None, None), "plate", seed), "plate"))
        for seed in range(300, 320)
    )
    assert reads <= 1  # the card: a blank plate is read as text 3-9 % of the time at the 0.5 floor


@needs_container_model
def test_no_code_on_the_container_gives_no_read(recogniser: TfliteRecogniser) -> None:
    for seed in range(300, 315):
        assert recogniser.recognise(_frame(Scene(None, None), "container", seed), "container") == []


def test_a_frame_without_pixels_gives_nothing(recogniser: TfliteRecogniser) -> None:
    assert recogniser.recognise(SceneFrame("cam", 1.0, None, {"plate": "ABC"}), "plate") == []


def test_unknown_role_is_an_error(recogniser: TfliteRecogniser) -> None:
    image = render_frame(Scene("ABC", None), "plate", seed=1)
    with pytest.raises(ValueError, match="role"):
        recogniser.recognise(Frame("cam", 1.0, image), "rear")


def test_reads_under_the_floor_are_dropped_and_counted() -> None:
    rec = TfliteRecogniser(TfliteRecognitionConfig(backend="tflite", min_confidence=1.0), roles=("plate",))
    try:
        frames = [_frame(Scene("KX42", None), "plate", seed) for seed in range(400, 405)]
        texts = [rec.read_text(f.image, "plate") for f in frames]
        reads = [rec.recognise(f, "plate") for f in frames]
        unsure = sum(1 for text, conf in texts if text and conf < 1.0)
        assert unsure > 0
        assert sum(len(r) for r in reads) == len(frames) - unsure
        assert rec.below_floor == unsure
    finally:
        rec.close()


def test_concurrent_recognition_matches_sequential(recogniser: TfliteRecogniser) -> None:
    frames = [_frame(Scene(t, None), "plate", s) for s, t in enumerate(["AB12CD", "7TRK", "Q9Q9Q9", "ZZ1"])]
    expected = [recogniser.read_text(f.image, "plate") for f in frames]
    results: dict[int, list[tuple[str, float]]] = {}

    def work(worker: int) -> None:
        results[worker] = [recogniser.read_text(f.image, "plate") for f in frames * 3]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(results[i] == expected * 3 for i in range(4))


# ------------------------------------------------------------------------------------------ pure parts


def _onehot(classes: list[int], p: float = 0.9) -> np.ndarray:
    probs = np.full((len(classes), 37), (1 - p) / 36, dtype=np.float32)
    probs[np.arange(len(classes)), classes] = p
    return probs


def test_ctc_greedy_collapses_repeats_and_splits_on_blank() -> None:
    a, b, blank = CHARSET.index("A"), CHARSET.index("B"), 36
    text, conf = ctc_greedy(_onehot([blank, a, a, blank, a, b, b, blank]))
    assert text == "AAB"
    assert conf == pytest.approx(0.9)


def test_ctc_greedy_confidence_is_the_weakest_character() -> None:
    probs = _onehot([CHARSET.index("7"), 36, CHARSET.index("X")])
    probs[2] = 0.0
    probs[2, CHARSET.index("X")] = 0.4
    probs[2, 36] = 0.35
    text, confidence = ctc_greedy(probs)
    assert text == "7X" and confidence == pytest.approx(0.4)


def test_ctc_greedy_all_blank_is_no_text() -> None:
    assert ctc_greedy(_onehot([36] * 5))[0] == ""


def test_area_weights_average_the_covered_pixels() -> None:
    w = _area_weights(10, 4)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    assert w.shape == (4, 10)
    np.testing.assert_allclose(w[0, :3], [0.4, 0.4, 0.2], rtol=1e-6)


def test_preprocess_is_gray_in_unit_range_of_the_model_size() -> None:
    image = render_frame(Scene("ABC123", None), "plate", seed=3)
    x = preprocess(image, (0.3, 0.5, 0.7, 0.78), (48, 128))
    assert x.shape == (48, 128) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() - x.min() > 0.9


def test_preprocess_does_not_stretch_a_flat_crop_into_text() -> None:
    flat = np.full((100, 200, 3), 120, dtype=np.uint8)
    flat[::2, ::2] += 3  # faint sensor noise
    x = preprocess(flat, (0.0, 0.0, 1.0, 1.0), (32, 64))
    assert x.max() - x.min() < 0.25


@pytest.mark.parametrize(
    "image",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)],
)
def test_preprocess_rejects_what_is_not_a_bgr_frame(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected"):
        preprocess(image, (0.0, 0.0, 1.0, 1.0), (8, 8))


def test_preprocess_rejects_an_empty_region() -> None:
    with pytest.raises(ValueError, match="empty"):
        preprocess(np.zeros((10, 10, 3), np.uint8), (0.5, 0.5, 0.55, 0.55), (8, 8))


def _painted(lines: list[str], size: int = 22) -> np.ndarray:
    """White text on corrugated dark steel, one entry per line, as a B, G, R frame."""
    img = Image.new("RGB", (256, 130), (30, 40, 120))
    d = ImageDraw.Draw(img)
    for x in range(0, 256, 8):
        d.rectangle((x, 0, x + 3, 130), fill=(20, 28, 95))
    font = ImageFont.load_default(size)
    y = 20
    for line in lines:
        d.text((20, y), line, font=font, fill=(235, 235, 235))
        y += int(size * 1.6)
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def _view(image: np.ndarray) -> np.ndarray:
    return preprocess(image, (0.0, 0.0, 1.0, 1.0), (128, 256))


def test_find_lines_one_painted_line() -> None:
    lines = find_lines(_view(_painted(["CSQU 305438 3"])))
    assert len(lines) == 1
    top, bottom = lines[0]
    assert 10 < top < bottom < 60


def test_find_lines_two_painted_lines_top_first() -> None:
    lines = find_lines(_view(_painted(["CSQU", "305438 3"])))
    assert len(lines) == 2
    (t1, b1), (t2, b2) = lines
    assert t1 < b1 <= t2 < b2


def test_find_lines_nothing_painted_is_the_whole_crop() -> None:
    assert find_lines(_view(_painted([]))) == [(0, 128)]
    assert find_lines(np.zeros((64, 100), np.float32)) == [(0, 64)]


def test_preprocess_lines_lays_two_lines_end_to_end() -> None:
    one = preprocess_lines(_painted(["CSQU 305438 3"]), (0.0, 0.0, 1.0, 1.0), (32, 256))
    two = preprocess_lines(_painted(["CSQU", "305438 3"]), (0.0, 0.0, 1.0, 1.0), (32, 256))
    for strip in (one, two):
        assert strip.shape == (32, 256) and strip.dtype == np.float32
        assert strip.min() >= 0.0 and strip.max() <= 1.0
    ink = two[6:26].max(axis=0) > 0.6  # columns with white paint
    # "CSQU" at the left of the first line's band, then blank steel, then "305438 3" in the second band.
    assert ink[:64].any() and not ink[80:120].any() and ink[140:].any()
    assert (one[6:26].max(axis=0) > 0.6)[80:120].any()  # one line runs straight through
