"""CameraSource on real frames: the entry loop opens capture, a bounded ring, the shipped model reads.

Frames are rendered by ``hw_sim.render`` and replayed from files; the plate model is the shipped one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from drivers.camera.files import FileSource
from edge_agent.camera import CameraSource, PlateResultLike, PresenceGate
from edge_agent.clock import SystemClock
from edge_agent.config.camera import TfliteRecognitionConfig
from edge_agent.domain import DeviceFault, LaneEvent, LoopEvent, PlateRead
from edge_agent.health import DeviceState
from edge_agent.read import ClosablePlateReader, open_plate_reader
from hw_sim.render import render_frame
from hw_sim.world import Scene

CFG = TfliteRecognitionConfig(backend="tflite")
pytestmark = pytest.mark.skipif(not CFG.plate_model.is_file(), reason="plate model not shipped")


def _frames(folder: Path, plates: list[str | None]) -> Path:
    folder.mkdir(exist_ok=True)
    for i, plate in enumerate(plates):
        frame = render_frame(Scene(plate, None), "plate", seed=9_100_000 + i, size=(640, 360))
        Image.fromarray(frame[:, :, ::-1]).save(folder / f"{i:03d}.png")
    return folder


class SlowReader:
    """The shipped reader, loaded with extra work per frame (as a busy CPU would be)."""

    def __init__(self, delay_s: float) -> None:
        self.inner: ClosablePlateReader = open_plate_reader(CFG.plate_model, CFG.plate_roi.as_tuple())
        self.delay_s = delay_s

    def read(self, image: Any) -> PlateResultLike:
        time.sleep(self.delay_s)
        return self.inner.read(image)

    def close(self) -> None:
        self.inner.close()


async def _run_for(
    cam: CameraSource, seconds: float, during: Callable[[], object] | None = None
) -> list[LaneEvent]:
    events: list[LaneEvent] = []
    task = asyncio.create_task(cam.run(events.append))
    await asyncio.sleep(seconds)
    if during is not None:
        during()
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return events


def _camera(
    path: Path, reader: Any, *, fps: float, gate: PresenceGate | None = None, ring: int = 8
) -> CameraSource:
    clock = SystemClock()
    files = FileSource("front", clock=clock.monotonic, path=path, fps=fps, loop=True)
    return CameraSource(
        "front", "plate", files, None, clock, plate_reader=reader, gate=gate, ring_frames=ring
    )


def test_capture_follows_the_entry_loop_and_its_tail(tmp_path: Path) -> None:
    reader = open_plate_reader(CFG.plate_model, CFG.plate_roi.as_tuple())
    gate = PresenceGate("entry", tail_s=0.3)
    cam = _camera(_frames(tmp_path / "f", ["KZT4821"] * 3), reader, fps=40.0, gate=gate)
    marks: dict[str, float] = {}

    async def scenario() -> list[LaneEvent]:
        events: list[LaneEvent] = []
        task = asyncio.create_task(cam.run(events.append))
        await asyncio.sleep(0.4)
        assert not events  # empty road: nothing kept, nothing read
        marks["on"] = time.monotonic()
        cam.observe(LoopEvent("entry", True, marks["on"]))
        await asyncio.sleep(0.4)
        marks["off"] = time.monotonic()
        cam.observe(LoopEvent("entry", False, marks["off"]))
        await asyncio.sleep(0.9)  # tail 0.3 s, then idle again
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return events

    try:
        events = asyncio.run(scenario())
    finally:
        reader.close()
    reads = [e for e in events if isinstance(e, PlateRead)]
    assert reads and all(r.text == "KZT4821" and r.crop is not None for r in reads)
    assert all(marks["on"] <= r.mono <= marks["off"] + 0.3 + 0.05 for r in reads)
    counters = cam.health().counters
    assert counters["frames_idle"] > 10 and counters["frames_read"] == len(reads)


def test_a_slow_recogniser_skips_the_oldest_frames_and_counts_them(tmp_path: Path) -> None:
    reader = SlowReader(0.15)
    cam = _camera(_frames(tmp_path / "f", ["ABC123", "ABC123"]), reader, fps=60.0, ring=2)
    pending: list[float | None] = []

    try:
        events = asyncio.run(_run_for(cam, 0.6, lambda: pending.append(cam.pending_since())))
    finally:
        reader.close()
    c = cam.health().counters
    assert c["frames_skipped"] > 10  # ~60 frames a second, ~7 read
    assert c["frames_read"] + c["frames_skipped"] <= c["frames_kept"]
    assert pending[0] is not None  # frames were waiting for recognition
    assert 3 <= c["frames_read"] <= 10
    assert all(isinstance(e, PlateRead) for e in events)


def test_an_illegible_plate_is_a_frame_read_with_nothing_legible(tmp_path: Path) -> None:
    reader = open_plate_reader(CFG.plate_model, CFG.plate_roi.as_tuple())
    cam = _camera(_frames(tmp_path / "f", [None, None]), reader, fps=30.0)
    try:
        events = asyncio.run(_run_for(cam, 0.3))
    finally:
        reader.close()
    reads = [e for e in events if isinstance(e, PlateRead)]
    assert reads and all(r.text == "" for r in reads)
    assert cam.health().counters["unread_frames"] == len(reads)


def test_a_lost_camera_is_a_fault_then_comes_back(tmp_path: Path) -> None:
    reader = open_plate_reader(CFG.plate_model, CFG.plate_roi.as_tuple())
    folder = tmp_path / "later"
    cam = _camera(folder, reader, fps=30.0)
    try:
        events = asyncio.run(_run_for(cam, 0.3, lambda: _frames(folder, ["ABC123"])))
    finally:
        reader.close()
    faults = [e for e in events if isinstance(e, DeviceFault)]
    assert [(f.kind, f.active) for f in faults] == [("camera", True), ("camera", False)]
    assert "does not exist" in faults[0].detail
    assert cam.health().state is DeviceState.UP
    assert any(isinstance(e, PlateRead) and e.text == "ABC123" for e in events)
