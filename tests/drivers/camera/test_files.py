"""Image files are hostile input: bounded, validated, skipped with an error naming the file, counted."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.camera.base import CameraError, Frame
from drivers.camera.files import FileSource, ImageError, read_image
from drivers.camera.opencv import OpencvSource


def _png(path: Path, w: int = 64, h: int = 32, mode: str = "RGB") -> Path:
    Image.new(mode, (w, h), 128).save(path)
    return path


def test_read_image_gives_bgr_order(tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    Image.new("RGB", (40, 20), (255, 0, 0)).save(path)
    image = read_image(path)
    assert image.shape == (20, 40, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == (0, 0, 255)  # B, G, R


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "1"])
def test_other_pixel_layouts_are_converted(tmp_path: Path, mode: str) -> None:
    image = read_image(_png(tmp_path / f"m.{'tif' if mode == 'I;16' else 'png'}", mode=mode))
    assert image.shape == (32, 64, 3) and image.dtype == np.uint8


def test_each_bad_file_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "text.png").write_text("not an image at all")
    (tmp_path / "empty.jpg").write_bytes(b"")
    good = _png(tmp_path / "good.png", 200, 100).read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    _png(tmp_path / "tiny.png", 8, 8)
    _png(tmp_path / "huge.png", 3000, 3000)
    cases = {
        "text.png": "not an image",
        "empty.jpg": "empty file",
        "cut.png": "damaged or truncated",
        "tiny.png": "too small",
        "huge.png": "over the limit of 1000000 pixels",
        "missing.png": "cannot read",
    }
    for name, why in cases.items():
        with pytest.raises(ImageError, match=why) as err:
            read_image(tmp_path / name, max_pixels=1_000_000)
        assert str(tmp_path / name) in str(err.value)
    with pytest.raises(ImageError, match="over the limit of 100 bytes"):
        read_image(tmp_path / "good.png", max_bytes=100)


def test_a_replay_skips_bad_files_counts_them_and_logs_at_a_bounded_rate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(3):
        _png(tmp_path / f"{i}a.png")
        (tmp_path / f"{i}b.jpg").write_text("garbage")
    source = FileSource("front", clock=time.monotonic, path=tmp_path, fps=500.0)

    async def all_frames() -> list[Frame]:
        return [f async for f in source.frames()]

    with caplog.at_level(logging.WARNING, logger="drivers.camera.files"):
        frames = asyncio.run(all_frames())
    source.close()
    assert len(frames) == 3
    assert source.counters["bad_files"] == 3
    warnings = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1 and "0b.jpg" in warnings[0].getMessage()  # the first, then suppressed


def test_a_folder_without_images_or_a_missing_path_is_a_camera_error(tmp_path: Path) -> None:
    async def first(source: FileSource) -> None:
        async for _ in source.frames():
            return

    with pytest.raises(CameraError, match="no image files"):
        asyncio.run(first(FileSource("front", clock=time.monotonic, path=tmp_path)))
    with pytest.raises(CameraError, match="does not exist"):
        asyncio.run(first(FileSource("front", clock=time.monotonic, path=tmp_path / "nope")))


def test_opencv_reports_a_missing_video_and_an_unreachable_stream_without_its_password(
    tmp_path: Path,
) -> None:
    pytest.importorskip("cv2")

    async def first(source: OpencvSource) -> None:
        try:
            async for _ in source.frames():
                return
        finally:
            source.close()

    with pytest.raises(CameraError, match="does not exist"):
        asyncio.run(first(OpencvSource("front", clock=time.monotonic, device=str(tmp_path / "v.avi"))))
    stream = OpencvSource("front", clock=time.monotonic, device="rtsp://admin:s3cret@127.0.0.1:9/lane")
    assert stream.live
    with pytest.raises(CameraError, match="cannot open") as err:
        asyncio.run(asyncio.wait_for(first(stream), 60))
    assert "s3cret" not in str(err.value) and "***@127.0.0.1:9" in str(err.value)


@given(st.binary(max_size=4096), st.sampled_from([".png", ".jpg", ".bmp", ".tif", ".webp"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_bytes_are_an_image_or_an_image_error_never_a_crash(
    tmp_path: Path, data: bytes, suffix: str
) -> None:
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except ImageError as exc:
        error = str(exc)
    else:
        error = ""
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert not error or str(path) in error


@given(st.integers(0, 2000))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_png_cut_anywhere_is_rejected_cleanly(tmp_path: Path, cut: int) -> None:
    whole = _png(tmp_path / "w.png", 120, 60)
    Image.effect_noise((120, 60), 40).convert("RGB").save(whole)
    data = whole.read_bytes()
    part = tmp_path / "cut.png"
    part.write_bytes(data[: min(cut, len(data) - 1)])
    with pytest.raises(ImageError, match=r"cut\.png"):
        read_image(part)
