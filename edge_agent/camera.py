"""Cameras plus on-device recognition, as one lane event source per camera.

Capture is triggered by loop presence: a camera with ``trigger = "entry_loop"`` keeps the frames it
sees while the entry loop is occupied and for ``tail_s`` after it clears, and ignores the empty road
in between. Kept frames wait in a bounded ring buffer (``ring_frames``); one worker thread per camera
reads them, oldest first, so recognition never runs on the lane's event loop. When recognition falls
behind, the oldest waiting frame is skipped and counted (``frames_skipped`` in the camera's health).

A plate camera emits one :class:`~edge_agent.domain.PlateRead` per frame it read, with empty text when
nothing was legible, so the passage knows how many frames were read, accepted and rejected
(:mod:`edge_agent.plate_vote`). :meth:`CameraSource.pending_since` tells the tracker how old the oldest
frame still waiting for recognition is (``recognition.max_wait_ms``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from drivers.camera.base import CameraError, Frame, FrameSource, LogLimiter, frame_problem
from drivers.camera.simlink import SceneFrame
from edge_agent.clock import Clock
from edge_agent.codes import container_valid, normalise_container, normalise_plate
from edge_agent.domain import ContainerRead, DeviceFault, LaneEvent, LoopEvent, PlateRead
from edge_agent.errors import ConfigError
from edge_agent.health import DeviceHealth, DeviceState
from edge_agent.sources import Emit

if TYPE_CHECKING:
    from edge_agent.config import LaneConfig
    from edge_agent.config.camera import CameraConfig

log = logging.getLogger(__name__)

RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 30.0


class Recogniser(Protocol):
    """Turns a frame into plate and container reads (runs in a worker thread)."""

    def recognise(self, frame: Frame, role: str) -> list[PlateRead | ContainerRead]:
        """Everything legible on ``frame`` for a camera of ``role`` (``plate`` or ``container``)."""
        ...


class PlateResultLike(Protocol):
    """What a plate reader says about one image."""

    @property
    def text(self) -> str:
        """The registration read (``""`` when nothing is legible)."""
        ...

    @property
    def confidence(self) -> float:
        """How sure the reader is, 0..1."""
        ...

    @property
    def crop(self) -> Any:
        """The plate's pixels (B, G, R), or ``None``."""
        ...


class PlateReaderLike(Protocol):
    """Reads the plate on a whole frame or a crop (see :mod:`edge_agent.read`)."""

    def read(self, image: Any) -> PlateResultLike:
        """The plate on ``image`` (h, w, 3 uint8, B, G, R)."""
        ...


class LabelRecogniser:
    """The simulated recogniser: reads the label a simulated frame carries (no model, no pixels)."""

    confidence = 0.95

    def recognise(self, frame: Frame, role: str) -> list[PlateRead | ContainerRead]:
        """Read the label's plate or container text, validated like a model's output."""
        label = (frame.label if isinstance(frame, SceneFrame) else None) or {}
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


class PresenceGate:
    """When a camera captures: while the entry loop is occupied, and ``tail_s`` after it clears."""

    def __init__(self, entry_loop: str, tail_s: float, *, continuous: bool = False) -> None:
        self._entry = entry_loop
        self._tail = tail_s
        self._continuous = continuous
        self._occupied = False
        self._cleared_at: float | None = None

    def observe(self, event: LaneEvent) -> None:
        """Follow the entry loop's presence events."""
        if isinstance(event, LoopEvent) and event.loop == self._entry:
            self._occupied = event.present
            if not event.present:
                self._cleared_at = event.mono

    def is_open(self, now: float) -> bool:
        """Whether a frame captured at ``now`` is kept."""
        if self._continuous or self._occupied:
            return True
        return self._cleared_at is not None and now - self._cleared_at <= self._tail


class CameraSource:
    """One camera: frames in, a bounded ring, recognition in a worker thread, reads out."""

    def __init__(
        self,
        name: str,
        role: str,
        frames: FrameSource,
        recogniser: Recogniser | None,
        clock: Clock,
        *,
        plate_reader: PlateReaderLike | None = None,
        gate: PresenceGate | None = None,
        ring_frames: int = 8,
        max_pixels: int | None = None,
    ) -> None:
        self.name = name
        self._role = role
        self._frames = frames
        self._recogniser = recogniser
        self._plate_reader = plate_reader if role == "plate" else None
        self._clock = clock
        self.gate = gate or PresenceGate("entry", 0.0, continuous=True)
        self._ring: deque[Frame] = deque()
        self._ring_frames = ring_frames
        self._max_pixels = max_pixels
        self._inflight: float | None = None
        self._health = DeviceHealth(name, "camera")
        self._warn = LogLimiter(log)

    def health(self) -> DeviceHealth:
        """Frames seen, kept, skipped under load and rejected; reads made; recognition errors."""
        counters = getattr(self._frames, "counters", None)
        if counters:
            for key, value in counters.items():
                self._health.counters[f"source_{key}"] = value
        return self._health

    def observe(self, event: LaneEvent) -> None:
        """Take a lane event (the entry loop's presence opens and closes the capture window)."""
        self.gate.observe(event)

    def pending_since(self) -> float | None:
        """Capture time of the oldest frame kept but not yet read (``None`` when all are read)."""
        times = [f.captured for f in self._ring]
        if self._inflight is not None:
            times.append(self._inflight)
        return min(times, default=None)

    async def run(self, emit: Emit) -> None:
        """Capture and recognise until cancelled; a lost camera is reported and reopened with backoff."""
        self._health.state = DeviceState.UP
        wake = asyncio.Event()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"recognise-{self.name}")
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._recognise_loop(emit, wake, executor))
                tg.create_task(self._capture_loop(emit, wake))
        finally:
            self._ring.clear()
            self._frames.close()
            executor.shutdown(wait=False, cancel_futures=True)

    async def _capture_loop(self, emit: Emit, wake: asyncio.Event) -> None:
        h = self._health
        backoff = RETRY_INITIAL_S
        while True:
            try:
                async for frame in self._frames.frames():
                    if h.state is DeviceState.DOWN:
                        emit(DeviceFault(self.name, "camera", False, "frames again", self._clock.monotonic()))
                        h.state, h.detail, backoff = DeviceState.UP, "", RETRY_INITIAL_S
                    self._take(frame, wake)
            except CameraError as exc:
                h.counters["camera_errors"] += 1
                if h.state is not DeviceState.DOWN:
                    log.error("camera %s: %s", self.name, exc)
                    emit(DeviceFault(self.name, "camera", True, str(exc), self._clock.monotonic()))
                h.state, h.detail = DeviceState.DOWN, str(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
                continue
            h.detail = "no more frames (replay finished)"
            log.info("camera %s: %s", self.name, h.detail)
            await asyncio.Event().wait()  # a finished replay idles; the lane keeps running

    def _take(self, frame: Frame, wake: asyncio.Event) -> None:
        h = self._health
        h.counters["frames"] += 1
        h.last_ok_mono = frame.captured
        if frame.image is not None and self._max_pixels is not None:
            problem = frame_problem(frame.image, self._max_pixels)
            if problem is not None:
                h.counters["frames_rejected"] += 1
                self._warn.warning("bad", "camera %s: frame rejected: %s", self.name, problem)
                return
        if not self.gate.is_open(frame.captured):
            h.counters["frames_idle"] += 1  # empty road: nothing to read
            return
        if len(self._ring) >= self._ring_frames:
            self._ring.popleft()
            h.counters["frames_skipped"] += 1  # recognition is behind: the oldest waiting frame goes
        self._ring.append(frame)
        h.counters["frames_kept"] += 1
        wake.set()

    async def _recognise_loop(self, emit: Emit, wake: asyncio.Event, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await wake.wait()
            wake.clear()
            while self._ring:
                frame = self._ring.popleft()
                self._inflight = frame.captured
                try:
                    reads = await loop.run_in_executor(executor, self._read, frame)
                except Exception as exc:  # a recogniser bug or a bad frame must not stop the camera
                    self._failed(exc, emit)
                    continue
                finally:
                    self._inflight = None
                self._succeeded(emit)
                c = self._health.counters
                c["frames_read"] += 1
                for read in reads:
                    c["reads" if not isinstance(read, PlateRead) or read.text else "unread_frames"] += 1
                    emit(read)

    def _read(self, frame: Frame) -> list[PlateRead | ContainerRead]:
        """Recognise one frame (worker thread). A plate camera always says something per frame."""
        if self._plate_reader is not None and frame.image is not None:
            result = self._plate_reader.read(frame.image)
            text = normalise_plate(result.text) if result.text else ""
            return [
                PlateRead(text or "", float(result.confidence), frame.camera, frame.captured, result.crop)
            ]
        reads = [] if self._recogniser is None else self._recogniser.recognise(frame, self._role)
        if self._role == "plate" and not any(isinstance(r, PlateRead) for r in reads):
            reads = [*reads, PlateRead("", 0.0, frame.camera, frame.captured)]
        return reads

    def _failed(self, exc: Exception, emit: Emit) -> None:
        h = self._health
        h.counters["recognition_errors"] += 1
        self._warn.warning("recognition", "camera %s: recognition failed: %r", self.name, exc)
        if h.state is DeviceState.UP:
            h.state = DeviceState.DEGRADED
            emit(DeviceFault(self.name, "recognition", True, repr(exc), self._clock.monotonic()))

    def _succeeded(self, emit: Emit) -> None:
        h = self._health
        if h.state is DeviceState.DEGRADED:
            h.state = DeviceState.UP
            emit(DeviceFault(self.name, "recognition", False, "recovered", self._clock.monotonic()))


def frame_source(
    name: str, cam: CameraConfig, clock: Clock, frame_sources: Mapping[str, FrameSource]
) -> FrameSource:
    """Open camera ``name``'s frames as configured (``frame_sources``: the simulator's in-process ones)."""
    from drivers.camera import open_backend

    frames: FrameSource
    if cam.backend == "sim" and name not in frame_sources and cam.socket is not None:
        frames = open_backend("simlink", name, clock=clock.monotonic, socket=cam.socket)
    elif cam.backend == "sim":
        sim = frame_sources.get(name)
        if sim is None:
            raise ConfigError(
                f"devices.cameras.{name}.backend: 'sim' needs the simulator (edge-agent demo); "
                'on a lane use backend = "opencv", "picamera2" or "files"'
            )
        frames = sim
    elif cam.backend == "picamera2":
        frames = open_backend(
            "picamera2",
            name,
            clock=clock.monotonic,
            index=cam.index,
            size=(cam.width, cam.height),
            fps=cam.fps,
        )
    elif cam.backend == "opencv":
        frames = open_backend(
            "opencv",
            name,
            clock=clock.monotonic,
            device=cam.device,
            fps=cam.fps,
            width=cam.width,
            height=cam.height,
            max_pixels=cam.max_pixels,
        )
    else:
        frames = open_backend(
            "files",
            name,
            clock=clock.monotonic,
            path=cam.path,
            fps=cam.fps,
            loop=cam.loop,
            max_pixels=cam.max_pixels,
        )
    return frames


def build_cameras(
    cfg: LaneConfig,
    clock: Clock,
    *,
    frame_sources: Mapping[str, FrameSource],
    recognisers: Mapping[str, Recogniser],
    on_close: Callable[[Callable[[], None]], object],
) -> list[CameraSource]:
    """One :class:`CameraSource` per configured camera, its frame source chosen by ``backend``.

    ``frame_sources`` are the simulator's ``sim`` cameras; ``recognisers`` override recognition for
    named cameras (the simulator reads labels where no model ships yet). Models load here, so a
    missing model or runtime stops the start. ``on_close`` registers what must be released at stop.
    """
    cams = cfg.devices.cameras
    rec = cfg.recognition
    labels: dict[str, Recogniser] = {
        n: LabelRecogniser() for n, c in cams.items() if getattr(c, "read_labels", False)
    }
    recognisers = {**labels, **recognisers}
    by_model = {cam.role for name, cam in cams.items() if name not in recognisers}
    shared: Recogniser | None = None
    if by_model and rec.backend == "sim":
        shared = LabelRecogniser()
    elif "container" in by_model and rec.backend == "tflite":
        from edge_agent.recognition_container import ContainerRecogniser

        containers = ContainerRecogniser.open(
            rec.container_model, num_threads=rec.num_threads, min_confidence=rec.min_confidence
        )
        on_close(containers.close)
        shared = containers
    out: list[CameraSource] = []
    for name, cam in cams.items():
        frames = frame_source(name, cam, clock, frame_sources)
        on_close(frames.close)
        reader: PlateReaderLike | None = None
        recogniser = recognisers.get(name) or shared
        if name not in recognisers and cam.role == "plate" and rec.backend == "tflite":
            from edge_agent.read import locator_model, open_plate_reader

            plate = open_plate_reader(
                rec.plate_model,
                rec.plate_roi.as_tuple(),
                locator_path=locator_model(rec.plate_model),
                num_threads=rec.num_threads,
            )
            on_close(plate.close)
            reader, recogniser = plate, None
        gate = PresenceGate(cfg.devices.loops.entry, cam.tail_s, continuous=cam.trigger == "continuous")
        out.append(
            CameraSource(
                name,
                cam.role,
                frames,
                recogniser,
                clock,
                plate_reader=reader,
                gate=gate,
                ring_frames=cam.ring_frames,
                max_pixels=cam.max_pixels,
            )
        )
    return out
