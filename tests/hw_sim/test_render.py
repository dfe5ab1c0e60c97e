"""The scene renderer: deterministic frames, text inside the region of interest, graceful font fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw_sim.render import (
    CONTAINER_ROI,
    PLATE_ROI,
    find_fonts,
    load_font,
    render_frame,
    roi_box,
)
from hw_sim.world import Scene


def test_frame_is_bgr_uint8_of_the_requested_size() -> None:
    frame = render_frame(Scene("ABC1234", None), "plate", seed=1, size=(320, 240))
    assert frame.shape == (240, 320, 3)
    assert frame.dtype == np.uint8
    assert frame.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("role", ["plate", "container"])
def test_same_seed_same_frame_other_seed_other_frame(role: str) -> None:
    scene = Scene("ABC1234", "CSQU3054383")
    a = render_frame(scene, role, seed=7)
    b = render_frame(scene, role, seed=7)
    c = render_frame(scene, role, seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("role", "roi", "one", "other"),
    [
        ("plate", PLATE_ROI, Scene("ABC", None), Scene("XYZ", None)),
        ("container", CONTAINER_ROI, Scene(None, "CSQU3054383"), Scene(None, "MWCU6059784")),
    ],
)
def test_the_text_is_drawn_inside_the_region_of_interest(
    role: str, roi: tuple[float, float, float, float], one: Scene, other: Scene
) -> None:
    a = render_frame(one, role, seed=3)
    b = render_frame(other, role, seed=3)
    differs = np.any(a != b, axis=2)
    assert differs.any()
    x0, y0, x1, y1 = roi_box(roi, a.shape[1], a.shape[0])
    margin = 6  # lens blur spreads a few pixels
    outside = differs.copy()
    outside[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin] = False
    assert not outside.any()


def test_illegible_plate_and_missing_code_still_render() -> None:
    plate = render_frame(Scene(None, None), "plate", seed=5)
    box = render_frame(Scene(None, None), "container", seed=5)
    assert plate.shape == box.shape == (360, 640, 3)
    assert plate.std() > 5  # a truck is there, not a blank frame


def test_unknown_role_is_an_error() -> None:
    with pytest.raises(ValueError, match="role"):
        render_frame(Scene("A", None), "rear", seed=1)


def test_without_any_font_file_pil_default_is_used() -> None:
    frame = render_frame(Scene("ABC1234", None), "plate", seed=2, fonts=[])
    assert frame.shape == (360, 640, 3)
    assert load_font(Path("/nonexistent/font.ttf"), 20).getbbox("A")[2] > 0


def test_find_fonts_only_returns_existing_files(tmp_path: Path) -> None:
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    (full / "dejavu").mkdir(parents=True)
    (full / "dejavu" / "DejaVuSans-Bold.ttf").write_bytes(b"")
    assert find_fonts((empty,)) == ()
    assert find_fonts((empty, full)) == (full / "dejavu" / "DejaVuSans-Bold.ttf",)
