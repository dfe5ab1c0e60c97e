"""The frame-source contract, run against every backend that loads here.

opencv replays a video file written by ``cv2.VideoWriter`` in the test; files replays PNG and JPEG
images written in the test (and a video); sim renders the simulator's frames. Every backend must hand
over checked (h, w, 3) uint8 frames with rising lane times, at about its fps, and stop when closed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drivers.camera import BACKENDS, backend_class, open_backend
from drivers.camera.base import Frame, FrameSource, frame_problem
from drivers.errors import BackendUnavailable, ConfigError
from hw_sim.world import Scene

cv2 = pytest.importorskip("cv2")

W, H, N = 160, 90, 6


def _pattern(i: int) -> np.ndarray:
    """A frame whose mean brightness encodes ``i`` (survives JPEG and MJPG)."""
    img = np.full((H, W, 3), 30 + 30 * i, dtype=np.uint8)
    img[10:30, 10 + 10 * i : 30 + 10 * i] = 255
    return img


def _video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    assert writer.isOpened()
    for i in range(N):
        writer.write(_pattern(i))
    writer.release()
    return path


def _images(folder: Path) -> Path:
    folder.mkdir()
    for i in range(N):
        rgb = _pattern(i)[:, :, ::-1]
        Image.fromarray(rgb).save(folder / f"{i:03d}.{'png' if i % 2 else 'jpg'}")
    return folder


def _clock() -> Callable[[], float]:
    ticks = itertools.count(1)
    return lambda: 100.0 + next(ticks) * 0.01


def _sim(_: Path) -> FrameSource:
    from hw_sim.camera import SimCamera

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(seconds)

    cam = open_backend(
        "sim", "front", clock=_clock(), sleep=no_wait, fps=50.0, render=True, size=(W * 2, H * 2)
    )
    assert isinstance(cam, SimCamera)
    cam.scene = Scene("ABC123", None)
    return cam


BUILDERS: dict[str, Callable[[Path], FrameSource]] = {
    "opencv": lambda d: open_backend(
        "opencv", "front", clock=_clock(), device=str(_video(d / "v.avi")), fps=50.0
    ),
    "files-images": lambda d: open_backend(
        "files", "front", clock=_clock(), path=_images(d / "imgs"), fps=50.0
    ),
    "files-video": lambda d: open_backend(
        "files", "front", clock=_clock(), path=_video(d / "v.avi"), fps=50.0
    ),
    "sim": _sim,
}


async def _take(source: FrameSource, n: int, limit_s: float = 10.0) -> list[Frame]:
    out: list[Frame] = []

    async def pull() -> None:
        async for frame in source.frames():
            out.append(frame)
            if len(out) == n:
                return

    await asyncio.wait_for(pull(), limit_s)
    return out


def test_every_named_backend_is_in_the_table() -> None:
    assert {"picamera2", "opencv", "files", "sim"} <= set(BACKENDS)
    with pytest.raises(ConfigError, match="unknown camera backend 'usb'"):
        backend_class("usb")


def test_picamera2_off_a_pi_is_a_clear_error_for_who_selects_it() -> None:
    with pytest.raises(BackendUnavailable, match="picamera2"):
        open_backend("picamera2", "front", clock=time.monotonic)


@pytest.mark.parametrize("backend", sorted(BUILDERS))
def test_frames_are_checked_bgr_arrays_with_rising_lane_times(backend: str, tmp_path: Path) -> None:
    source = BUILDERS[backend](tmp_path)
    try:
        frames = asyncio.run(_take(source, 4))
    finally:
        source.close()
    assert [f.camera for f in frames] == ["front"] * 4
    assert all(frame_problem(f.image) is None for f in frames)
    times = [f.captured for f in frames]
    assert times == sorted(times) and len(set(times)) == 4


@pytest.mark.parametrize("backend", ["opencv", "files-images", "files-video"])
def test_recorded_traffic_replays_in_order_at_its_fps(backend: str, tmp_path: Path) -> None:
    source = BUILDERS[backend](tmp_path)
    t0 = time.perf_counter()
    try:
        frames = asyncio.run(_take(source, N))
    finally:
        source.close()
    elapsed = time.perf_counter() - t0
    assert elapsed >= (N - 1) / 50.0 * 0.8  # paced, not dumped
    brightness = [float(f.image.mean()) for f in frames]
    assert brightness == sorted(brightness)  # frame i before frame i + 1
    assert all(f.image.shape == (H, W, 3) for f in frames)


@pytest.mark.parametrize("backend", sorted(BUILDERS))
def test_close_stops_the_stream_and_is_safe_twice(backend: str, tmp_path: Path) -> None:
    source = BUILDERS[backend](tmp_path)

    async def scenario() -> int:
        got = 0
        async for _ in source.frames():
            got += 1
            if got == 2:
                source.close()
        return got

    got = asyncio.run(asyncio.wait_for(scenario(), 10.0))
    source.close()
    assert got <= 3  # at most the frame already in hand after close


def test_a_finished_video_ends_unless_looped(tmp_path: Path) -> None:
    video = _video(tmp_path / "v.avi")
    once = open_backend("files", "front", clock=_clock(), path=video, fps=200.0)
    looped = open_backend("files", "front", clock=_clock(), path=video, fps=200.0, loop=True)

    async def count(source: FrameSource) -> int:
        return len([f async for f in source.frames()])

    try:
        assert asyncio.run(asyncio.wait_for(count(once), 10.0)) == N
        assert len(asyncio.run(_take(looped, N * 2 + 1))) == N * 2 + 1
    finally:
        once.close()
        looped.close()
    assert looped.counters["replays"] >= 2  # type: ignore[attr-defined]


def test_without_opencv_only_who_selects_it_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = _images(tmp_path / "imgs")
    script = f"""
import asyncio, sys, time
sys.modules["cv2"] = None  # as on a machine without the camera extra
from drivers.camera import open_backend
from drivers.errors import BackendUnavailable
files = open_backend("files", "front", clock=time.monotonic, path={str(folder)!r}, fps=100.0)
async def first():
    async for f in files.frames():
        return f
print("files ok", asyncio.run(first()).image.shape)
try:
    open_backend("opencv", "front", clock=time.monotonic, device="rtsp://cam/1")
except BackendUnavailable as exc:
    print("opencv:", exc)
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert f"files ok ({H}, {W}, 3)" in run.stdout
    assert "opencv: camera 'front': backend 'opencv' needs OpenCV" in run.stdout
    assert "opencv-python-headless" in run.stdout
