"""The container-code renderer: deterministic, labels that match the pixels, every layout, held-out faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.codes import container_valid
from hw_sim import render_door
from hw_sim import render_fonts as fonts
from hw_sim.render_container import (
    LAYOUTS,
    ContainerImage,
    code_crop,
    container_scene,
    legible,
    main,
    random_code,
    random_size_type,
    render_container,
)

SIZE = (320, 180)


def _render(seed: int, **kw: object) -> ContainerImage:
    return render_container(np.random.default_rng(seed), SIZE, **kw)  # type: ignore[arg-type]


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    a, b, c = _render(5), _render(5), _render(6)
    assert np.array_equal(a.image, b.image)
    assert (a.code, a.code_box, a.layout) == (b.code, b.code_box, b.layout)
    assert not np.array_equal(a.image, c.image)


def test_random_codes_have_valid_check_digits_and_invalid_ones_do_not() -> None:
    rng = np.random.default_rng(1)
    codes = [random_code(rng) for _ in range(200)]
    assert all(container_valid(c) for c in codes)
    assert {c[3] for c in codes} <= {"U", "J", "Z"}
    assert not any(container_valid(random_code(rng, valid=False)) for _ in range(50))


def test_random_size_types_are_four_characters_from_the_table() -> None:
    rng = np.random.default_rng(2)
    seen = {random_size_type(rng) for _ in range(300)}
    assert {"22G1", "45G1", "42G1"} <= seen
    assert all(len(s) == 4 and s[2].isalpha() for s in seen)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_paints_the_given_code_inside_its_box(layout: str) -> None:
    for seed in range(4):
        img = _render(seed, code="MSCU1234565", layout=layout)
        assert (img.code, img.layout) == ("MSCU1234565", layout)
        assert img.image.shape == (SIZE[1], SIZE[0], 3)
        assert img.image.dtype == np.uint8
        assert img.code_box is not None
        x0, y0, x1, y1 = img.code_box
        assert 0 <= x0 < x1 <= SIZE[0]
        assert 0 <= y0 < y1 <= SIZE[1]
        tall = (y1 - y0) > (x1 - x0)
        assert tall == (layout == "vertical")


def test_the_code_box_holds_the_painted_code() -> None:
    """Painting another code with the same seed changes pixels inside the box and nowhere outside it."""
    for seed in range(8):
        a = container_scene(np.random.default_rng(seed), SIZE, "MSCU1234565", size_type=None)
        b = container_scene(np.random.default_rng(seed), SIZE, "TGHU9876540", size_type=None)
        assert a.code_box is not None
        differs = np.abs(np.asarray(a.image, dtype=int) - np.asarray(b.image, dtype=int)).max(axis=2) > 40
        x0, y0, x1, y1 = a.code_box
        assert differs[y0:y1, x0:x1].sum() > 0.05 * (x1 - x0) * (y1 - y0)
        outside = differs.copy()
        outside[max(0, y0 - 2) : y1 + 2, max(0, x0 - 2) : x1 + 2] = False
        assert not outside.any()


def test_a_labelled_code_is_legible_in_the_damaged_frame() -> None:
    for seed in range(20):
        img = _render(seed, code="MSCU1234565")
        if img.code_box is not None:
            assert legible(img.image, img.code_box)
            x0, y0, x1, y1 = img.code_box
            assert img.image[y0:y1, x0:x1].std() > 4


def test_no_code_gives_no_box() -> None:
    for seed in range(5):
        img = _render(seed, code=None)
        assert (img.code, img.code_box, img.size_type_box, img.layout) == (None, None, None, "none")
        with pytest.raises(ValueError, match="code"):
            code_crop(np.random.default_rng(0), img)


def test_random_images_label_what_they_paint() -> None:
    nones = 0
    for seed in range(60):
        img = _render(seed)
        if img.code is None:
            nones += 1
            assert img.code_box is None
        else:
            assert container_valid(img.code)
            assert img.code_box is not None
        if img.size_type is not None:
            assert img.size_type_box is not None
    assert nones <= 10


def test_size_type_gets_its_own_box_apart_from_the_code() -> None:
    img = _render(3, code="MSCU1234565", size_type="45G1", layout="one_line")
    assert img.size_type == "45G1"
    assert img.size_type_box is not None
    assert img.code_box is not None
    assert img.size_type_box != img.code_box


def test_other_sizes_render() -> None:
    for size in ((640, 360), (1280, 720), (200, 200)):
        img = render_container(np.random.default_rng(9), size, "MSCU1234565")
        assert img.image.shape == (size[1], size[0], 3)


def test_code_crop_contains_the_box() -> None:
    img = _render(4, code="MSCU1234565", layout="one_line")
    assert img.code_box is not None
    x0, y0, x1, y1 = img.code_box
    for seed in range(10):
        crop = code_crop(np.random.default_rng(seed), img)
        assert crop.shape[0] >= y1 - y0
        assert crop.shape[1] >= x1 - x0
    tight = code_crop(np.random.default_rng(0), img, loose=0.0)
    assert tight.shape[0] <= (y1 - y0) * 1.4 + 2


def test_held_out_faces_and_paints_are_never_in_training() -> None:
    assert not set(fonts.CONTAINER_HELD_OUT) & set(fonts.CONTAINER_TRAIN)
    assert not set(render_door.PAINTS_HELD_OUT) & set(render_door.PAINTS_TRAIN)
    assert not set(render_door.BACKGROUNDS_HELD_OUT) & set(render_door.BACKGROUNDS_TRAIN)


def test_held_out_uses_only_held_out_faces(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[fonts.FontSpec | None] = []
    real = fonts.load

    def spy(spec: fonts.FontSpec | None, size: int) -> fonts.Font:
        used.append(spec)
        return real(spec, size)

    monkeypatch.setattr(fonts, "load", spy)
    for seed in range(4):
        used.clear()
        _render(seed, code="MSCU1234565", held_out=True)
        code_faces = {s for s in used if s not in render_door.SMALL_FACES}
        assert code_faces
        if fonts.installed(fonts.CONTAINER_HELD_OUT):
            assert code_faces <= set(fonts.CONTAINER_HELD_OUT)


def test_unknown_layout_and_bad_code_are_errors() -> None:
    with pytest.raises(ValueError, match="layout"):
        _render(1, layout="diagonal")
    with pytest.raises(ValueError, match="11"):
        _render(1, code="MSCU123")


def test_the_script_writes_pngs_and_truth(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--count", "3", "--seed", "7", "--size", "160x90"]) == 0
    lines = (tmp_path / "truth.csv").read_text().splitlines()
    assert lines[0] == "file,region,text"
    assert len(lines) == 4
    assert len(list(tmp_path.glob("*.png"))) == 3
