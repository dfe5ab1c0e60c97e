"""The plate renderer: labels are registrations only, renders are seeded, held-out styles stay held out."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from hw_sim import render_fonts
from hw_sim.render_damage import camera_damage, perspective_coeffs, plate_crop
from hw_sim.render_plate import (
    BACKGROUNDS_HELD_OUT,
    BACKGROUNDS_TRAIN,
    random_registration,
    render_plate,
)
from hw_sim.render_scene import truck_front

LABEL = re.compile(r"[A-Z0-9]{1,8}")


def test_registrations_are_1_to_8_plate_characters_of_every_length() -> None:
    rng = np.random.default_rng(1)
    texts = [random_registration(rng) for _ in range(2000)]
    assert all(LABEL.fullmatch(t) for t in texts)
    assert {len(t) for t in texts} == set(range(1, 9))


@pytest.mark.parametrize("seed", range(20))
def test_the_label_is_the_registration_and_its_box_is_inside_the_plate(seed: int) -> None:
    plate = render_plate(np.random.default_rng(seed))
    assert LABEL.fullmatch(plate.text)
    w, h = plate.image.size
    x0, y0, x1, y1 = plate.text_box
    px0, py0, px1, py1 = plate.plate_box
    assert 0 <= px0 <= x0 < x1 <= px1 <= w and 0 <= py0 <= y0 < y1 <= py1 <= h
    assert (x1 - x0) > 0.2 * (px1 - px0) or len(plate.text) <= 2  # the registration is the big text


def test_a_given_registration_is_painted_and_labelled_as_given() -> None:
    plate = render_plate(np.random.default_rng(3), "AB12CD")
    assert plate.text == "AB12CD"
    x0, y0, x1, y1 = plate.text_box
    ink = np.asarray(plate.image.convert("L"))[y0:y1, x0:x1]
    assert ink.std() > 20  # something is painted there


def test_a_plate_without_registration_has_an_empty_label() -> None:
    assert render_plate(np.random.default_rng(4), "").text == ""


def test_same_seed_same_crop_other_seed_other_crop() -> None:
    def crop(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return plate_crop(rng, render_plate(rng, "7TRK210"))

    assert np.array_equal(crop(5), crop(5))
    assert not np.array_equal(crop(5), crop(6))


@pytest.mark.parametrize("seed", range(10))
def test_crops_are_bgr_uint8_plates_at_camera_resolution(seed: int) -> None:
    rng = np.random.default_rng(seed)
    crop = plate_crop(rng, render_plate(rng))
    assert crop.dtype == np.uint8 and crop.ndim == 3 and crop.shape[2] == 3
    assert 30 <= crop.shape[1] <= 400 and crop.shape[1] > crop.shape[0]


def test_held_out_faces_and_pictures_are_never_training_ones() -> None:
    assert not set(render_fonts.REGISTRATION_HELD_OUT) & set(render_fonts.REGISTRATION_TRAIN)
    assert not set(BACKGROUNDS_HELD_OUT) & set(BACKGROUNDS_TRAIN)


def test_every_background_family_renders() -> None:
    for i, family in enumerate(BACKGROUNDS_TRAIN + BACKGROUNDS_HELD_OUT):
        plate = render_plate(np.random.default_rng(i), "ABC123", backgrounds=(family,))
        assert plate.image.size[0] > plate.image.size[1]


def test_without_any_installed_face_pil_default_is_used() -> None:
    missing = (
        render_fonts.FontSpec("debian", "nowhere/none.ttf"),
        render_fonts.FontSpec("fontpkg_none", "x.ttf"),
    )
    assert render_fonts.installed(missing) == ()
    plate = render_plate(np.random.default_rng(2), "XY12", registration_fonts=missing)
    assert plate.text == "XY12"


def test_perspective_coefficients_map_corners_back() -> None:
    src = ((0.0, 0.0), (100.0, 0.0), (100.0, 50.0), (0.0, 50.0))
    dst = ((10.0, 5.0), (120.0, 12.0), (115.0, 70.0), (8.0, 60.0))
    a, b, c, d, e, f, g, h = perspective_coeffs(src, dst)
    for (x, y), (u, v) in zip(dst, src, strict=True):
        s = g * x + h * y + 1
        assert abs((a * x + b * y + c) / s - u) < 1e-6 and abs((d * x + e * y + f) / s - v) < 1e-6


@pytest.mark.parametrize("seed", range(8))
def test_truck_fronts_carry_the_plate_box_and_distractors(seed: int) -> None:
    front = truck_front(np.random.default_rng(seed), (640, 360), "KZT4821")
    assert front.text == "KZT4821" and front.plate_box is not None
    x0, y0, x1, y1 = front.plate_box
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360
    assert 0.04 * 640 < x1 - x0 < 0.35 * 640
    bgr = camera_damage(np.random.default_rng(seed), front.image, blur_ref=y1 - y0)
    assert bgr.shape == (360, 640, 3)


def test_a_cab_without_a_plate_has_no_box() -> None:
    front = truck_front(np.random.default_rng(1), (320, 180), None, plate=False)
    assert front.plate_box is None and front.text is None
    assert isinstance(front.image, Image.Image)
