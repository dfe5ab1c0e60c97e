"""Recognition never holds a decision past ``recognition.max_wait_ms``.

The real tracker decides readiness; the real camera source reads rendered frames with the shipped plate
model on its worker thread, loaded with extra work per frame (a busy CPU). When the rest of a passage
is in, the tracker waits for frames still being read, but never longer than the budget: then it decides
without them, and the plate is unread.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from drivers.camera.files import FileSource
from edge_agent.camera import CameraSource, PresenceGate
from edge_agent.clock import SystemClock
from edge_agent.config.lane import GeometryConfig
from edge_agent.config.rfid import CrossReadRule, TagPatterns
from edge_agent.domain import LoopEvent, Passage
from edge_agent.plate_vote import vote
from edge_agent.tracker import PassageTracker
from tests.edge_agent.test_camera import CFG, SlowReader, _frames

pytestmark = pytest.mark.skipif(not CFG.plate_model.is_file(), reason="plate model not shipped")

# a short lane: every frame between entry and exit lies within the plate camera's range
GEOMETRY = GeometryConfig(
    exit_loop_m=6.0,
    plate_camera_m=1.0,
    rfid_antenna_m=1.0,
    wim_m=1.0,
    container_camera_m=1.0,
    read_range_m=20.0,
)


async def _passage(
    folder: Path, delay_s: float, max_wait_s: float
) -> tuple[Passage, float, PassageTracker, CameraSource]:
    clock = SystemClock()
    reader = SlowReader(delay_s)
    files = FileSource("front", clock=clock.monotonic, path=folder, fps=30.0, loop=True)
    cam = CameraSource(
        "front",
        "plate",
        files,
        None,
        clock,
        plate_reader=reader,
        gate=PresenceGate("entry", 0.0),
        ring_frames=2,
    )
    ready: list[tuple[Passage, float]] = []
    tracker = PassageTracker(
        GEOMETRY,
        TagPatterns(),
        CrossReadRule(),
        clock,
        on_ready=lambda p: ready.append((p, time.monotonic())),
        on_closed=lambda p: None,
    )
    tracker.watch_recognition(cam.pending_since, max_wait_s)

    def emit(event: object) -> None:
        tracker.handle(event)  # type: ignore[arg-type]

    def loop_event(name: str, present: bool) -> None:
        event = LoopEvent(name, present, clock.monotonic())
        cam.observe(event)
        tracker.handle(event)

    task = asyncio.create_task(cam.run(emit))
    try:
        await asyncio.sleep(0.3)  # the camera is up; the road is empty
        loop_event("entry", True)
        await asyncio.sleep(0.2)
        loop_event("entry", False)
        await asyncio.sleep(0.1)
        loop_event("exit", True)  # at the stop line: everything but recognition is in
        complete_at = time.monotonic()
        deadline = complete_at + max_wait_s + 3.0
        while not ready and time.monotonic() < deadline:
            tracker.tick()  # what the lane's ticker does
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        reader.close()
    assert ready, "the passage was never decided"
    passage, ready_at = ready[0]
    return passage, ready_at - complete_at, tracker, cam


def test_the_decision_waits_for_reads_in_flight_within_the_budget(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "f", ["KZT4821"] * 2)
    passage, waited, tracker, cam = asyncio.run(_passage(folder, delay_s=0.25, max_wait_s=3.0))
    assert 0.1 <= waited < 3.0  # it waited, and not for the whole budget
    assert tracker.stats.counters["recognition_wait_expired"] == 0
    assert cam.pending_since() is None
    assert len(passage.plates) == cam.health().counters["frames_read"] >= 2  # every kept frame counted
    assert vote(passage.plates, 0.6).text == "KZT4821"


def test_a_recogniser_past_its_budget_is_decided_without_the_plate(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "f", ["KZT4821"])
    passage, waited, tracker, _ = asyncio.run(_passage(folder, delay_s=1.5, max_wait_s=0.3))
    assert 0.3 <= waited < 0.6  # the budget, then decided
    assert tracker.stats.counters["recognition_wait_expired"] == 1
    assert passage.plates == ()  # the read still in flight is not waited for
    voted = vote(passage.plates, 0.6)
    assert voted.text is None and voted.frames == 0
