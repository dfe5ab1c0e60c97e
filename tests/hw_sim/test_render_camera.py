"""SimCamera with rendered pixels: frames carry an image and the label, renders are cached per scene."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from drivers.camera.simlink import SceneFrame
from hw_sim.camera import SimCamera
from hw_sim.world import Scene


async def _take(cam: SimCamera, n: int) -> list[SceneFrame]:
    out: list[SceneFrame] = []
    async for frame in cam.frames():
        out.append(frame)
        if len(out) == n:
            break
    cam.close()
    return out


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def _camera(**kw: object) -> SimCamera:
    return SimCamera("front", clock=lambda: 1.0, sleep=_no_sleep, fps=50.0, **kw)  # type: ignore[arg-type]


def test_rendered_frames_carry_pixels_and_the_label() -> None:
    cam = _camera(render=True, role="plate", size=(320, 180), variants=2)
    cam.scene = Scene("ABC1234", None)
    frames = asyncio.run(_take(cam, 5))
    assert all(f.image is not None and f.image.shape == (180, 320, 3) for f in frames)
    assert all(f.label == {"plate": "ABC1234", "container": None} for f in frames)
    assert cam.renders == 2  # two variants, then served from the cache
    assert not np.array_equal(frames[0].image, frames[1].image)
    assert np.array_equal(frames[0].image, frames[2].image)


def test_renders_repeat_across_cameras_built_alike() -> None:
    one, two = _camera(render=True, role="container"), _camera(render=True, role="container")
    one.scene = two.scene = Scene(None, "CSQU3054383")
    a, b = asyncio.run(_take(one, 1)), asyncio.run(_take(two, 1))
    assert np.array_equal(a[0].image, b[0].image)


def test_without_render_frames_have_no_pixels() -> None:
    cam = _camera()
    cam.scene = Scene("ABC1234", None)
    frames = asyncio.run(_take(cam, 2))
    assert [f.image for f in frames] == [None, None]
    assert cam.renders == 0


def test_variants_must_be_positive() -> None:
    with pytest.raises(ValueError, match="variants"):
        _camera(variants=0)
