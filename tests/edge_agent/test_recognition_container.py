"""The container reader's own code: preprocessing of vertical and horizontal codes, the choice of a read.

The shipped models are exercised in ``test_container_models.py``; here the pure parts are checked on
pictures drawn in the test itself (PIL text), so the ground truth does not come from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from edge_agent.recognition import luma, stretch
from edge_agent.recognition_container import (
    CONTAINER_INPUT,
    ContainerReader,
    _Read,
    container_input,
    is_vertical,
    vertical_rows,
)
from edge_agent.recognition_locate import Candidate

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        return ImageFont.load_default(size)


def vertical_code(text: str, char_h: int = 24, gap: int = 8) -> np.ndarray:
    """``text`` painted one character per line, white on a dark wall, as B, G, R."""
    font = _font(char_h)
    w, h = char_h + 16, len(text) * (char_h + gap) + 2 * gap
    img = Image.new("RGB", (w, h), (40, 60, 90))
    d = ImageDraw.Draw(img)
    for i, ch in enumerate(text):
        d.text(
            (w // 2, gap + i * (char_h + gap) + char_h // 2), ch, fill=(235, 235, 235), font=font, anchor="mm"
        )
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def horizontal_code(lines: list[str], char_h: int = 24) -> np.ndarray:
    """``lines`` painted black on a yellow wall, as B, G, R."""
    font = _font(char_h)
    w = max(len(t) for t in lines) * char_h + 20
    h = len(lines) * int(char_h * 1.6) + 12
    img = Image.new("RGB", (w, h), (30, 190, 230))
    d = ImageDraw.Draw(img)
    for i, t in enumerate(lines):
        d.text((10, 6 + i * int(char_h * 1.6)), t, fill=(20, 20, 20), font=font)
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


@pytest.mark.parametrize("text", ["MSKU9070323", "CSQU3054383", "TGHU8765436"])
def test_a_vertical_code_is_cut_into_its_characters(text: str) -> None:
    crop = vertical_code(text)
    assert is_vertical(crop)
    rows = vertical_rows(stretch(luma(crop)))
    assert len(rows) == len(text)
    assert all(b > a for a, b in rows)
    assert rows == sorted(rows)


def test_characters_set_close_together_are_still_cut_apart() -> None:
    crop = vertical_code("MSKU9070323", char_h=24, gap=0)
    rows = vertical_rows(stretch(luma(crop)))
    assert 10 <= len(rows) <= 12


def test_a_blank_post_is_one_band() -> None:
    crop = np.full((300, 30, 3), 90, dtype=np.uint8)
    assert vertical_rows(stretch(luma(crop))) == [(0, 300)]


def test_inputs_have_the_reader_shape_and_range() -> None:
    for crop in (
        vertical_code("MSKU9070323"),
        horizontal_code(["MSCU 123456 5"]),
        horizontal_code(["MSCU", "123456 5"]),
    ):
        x = container_input(crop)
        assert x.shape == CONTAINER_INPUT
        assert x.dtype == np.float32
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert float(x.std()) > 0.1  # the text is there, stretched


def test_a_two_line_code_is_laid_end_to_end() -> None:
    one = container_input(horizontal_code(["MSCU"]))
    two = container_input(horizontal_code(["MSCU", "123456 5"]))

    # ink (dark) spans further along the strip when the second line follows the first
    def ink_end(x: np.ndarray) -> int:
        cols = np.flatnonzero((x < 0.5).sum(axis=0) > 0)
        return int(cols.max()) if cols.size else 0

    assert ink_end(two) > ink_end(one) * 1.8


class _NoModel:
    input_shape = (1, *CONTAINER_INPUT, 1)

    def invoke(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - choose() never calls it
        raise AssertionError("not used")

    def close(self) -> None:
        pass


def _reader(floor: float = 0.5) -> ContainerReader:
    return ContainerReader(_NoModel(), None, min_confidence=floor)


BOX = (0, 0, 10, 10)


def test_a_valid_read_is_the_code_and_a_size_type_read_its_size_type() -> None:
    got = _reader().choose([_Read(BOX, "CSQU3054383", 0.9, 0.8), _Read(BOX, "45G1", 0.8, 0.6)])
    assert (got.code, got.size_type, got.reason) == ("CSQU3054383", "45G1", "")


def test_a_wrong_check_digit_is_unread_with_the_reason() -> None:
    got = _reader().choose([_Read(BOX, "CSQU3054384", 0.99, 0.9)])
    assert got.code == ""
    assert "check digit" in got.reason
    assert got.raw == "CSQU3054384"


def test_two_different_valid_codes_as_sure_as_each_other_are_unread() -> None:
    got = _reader().choose([_Read(BOX, "CSQU3054383", 0.9, 0.9), _Read(BOX, "MSKU9070323", 0.88, 0.9)])
    assert got.code == ""
    assert "two different valid codes" in got.reason


def test_a_much_surer_code_wins_over_a_weak_second_box() -> None:
    got = _reader().choose([_Read(BOX, "CSQU3054383", 0.95, 0.9), _Read(BOX, "MSKU9070323", 0.3, 0.4)])
    assert got.code == "CSQU3054383"


def test_below_the_floor_is_unread() -> None:
    got = _reader(0.8).choose([_Read(BOX, "CSQU3054383", 0.6, 0.9)])
    assert got.code == ""
    assert "below" in got.reason


def test_an_unambiguous_confusion_is_corrected() -> None:
    got = _reader().choose([_Read(BOX, "CSQU30S4383", 0.9, 0.9)])
    assert got.code == "CSQU3054383"


def test_nothing_read_is_unread() -> None:
    got = _reader().choose([_Read(BOX, "", 1.0, 1.0)])
    assert (got.code, got.size_type, got.reason) == ("", None, "no text read")


class _Blank(_NoModel):
    """A reader that sees nothing: every step is the CTC blank."""

    def invoke(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((1, CONTAINER_INPUT[1] // 4, 37), dtype=np.float32)
        out[..., -1] = 1.0
        return out


class _EdgeBoxes(ContainerReader):
    """The localiser's box clipped at the picture's edge to a sliver (as a real one gave on a render)."""

    def locate(self, image: np.ndarray) -> list[Candidate]:
        h, w = image.shape[:2]
        return [Candidate((w - 3, h - 60, w, h), 0.9), Candidate((10, 10, 200, 60), 0.8)]


def test_a_sliver_box_at_the_edge_is_skipped_not_an_error() -> None:
    reader = _EdgeBoxes(_Blank(), None)
    got = reader.read(np.full((480, 640, 3), 128, dtype=np.uint8))
    assert got.code == ""
    assert got.candidates == 1  # the sliver was not read; the other box was
