"""Cameras plus on-device recognition, as one lane event source per camera."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from drivers.camera.base import Frame, FrameSource
from edge_agent.clock import Clock
from edge_agent.codes import container_valid, normalise_container, normalise_plate
from edge_agent.domain import ContainerRead, DeviceFault, PlateRead
from edge_agent.health import DeviceHealth, DeviceState
from edge_agent.sources import Emit

log = logging.getLogger(__name__)


class Recogniser(Protocol):
    """Turns a frame into plate and container reads (runs in a worker thread)."""

    def recognise(self, frame: Frame, role: str) -> list[PlateRead | ContainerRead]:
        """Everything legible on ``frame`` for a camera of ``role`` (``plate`` or ``container``)."""
        ...


class LabelRecogniser:
    """The simulated recogniser: reads the label a simulated frame carries (no model, no pixels)."""

    confidence = 0.95

    def recognise(self, frame: Frame, role: str) -> list[PlateRead | ContainerRead]:
        """Read the label's plate or container text, validated like a model's output."""
        label = frame.label or {}
        out: list[PlateRead | ContainerRead] = []
        if role == "plate" and label.get("plate"):
            text = normalise_plate(label["plate"] or "")
            if text:
                out.append(PlateRead(text, self.confidence, frame.camera, frame.captured))
        if role == "container" and label.get("container"):
            code = normalise_container(label["container"] or "")
            out.append(
                ContainerRead(code, container_valid(code), self.confidence, frame.camera, frame.captured)
            )
        return out


class CameraSource:
    """One camera: frames in, recognition in a worker thread, reads out."""

    def __init__(
        self, name: str, role: str, frames: FrameSource, recogniser: Recogniser, clock: Clock
    ) -> None:
        self.name = name
        self._role = role
        self._frames = frames
        self._recogniser = recogniser
        self._clock = clock
        self._health = DeviceHealth(name, "camera")

    def health(self) -> DeviceHealth:
        """Frames seen, reads made, recognition errors."""
        return self._health

    async def run(self, emit: Emit) -> None:
        """Stream frames; a recogniser error is counted and reported, never fatal."""
        h = self._health
        h.state = DeviceState.UP
        busy: asyncio.Future[list[PlateRead | ContainerRead]] | None = None
        loop = asyncio.get_running_loop()
        try:
            async for frame in self._frames.frames():
                h.counters["frames"] += 1
                h.last_ok_mono = frame.captured
                if busy is not None and not busy.done():
                    h.counters["frames_skipped"] += 1  # recogniser still on the last frame
                    continue
                busy = loop.run_in_executor(None, self._recogniser.recognise, frame, self._role)
                busy.add_done_callback(lambda fut: self._done(fut, emit))
        finally:
            self._frames.close()

    def _done(self, fut: asyncio.Future[list[PlateRead | ContainerRead]], emit: Emit) -> None:
        h = self._health
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            h.counters["recognition_errors"] += 1
            if h.state is DeviceState.UP:
                log.error("camera %s: recognition failed: %r", self.name, exc)
                h.state = DeviceState.DEGRADED
                emit(DeviceFault(self.name, "recognition", True, repr(exc), self._clock.monotonic()))
            return
        if h.state is DeviceState.DEGRADED:
            h.state = DeviceState.UP
            emit(DeviceFault(self.name, "recognition", False, "recovered", self._clock.monotonic()))
        for read in fut.result():
            h.counters["reads"] += 1
            emit(read)
