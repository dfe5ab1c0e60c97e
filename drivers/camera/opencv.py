"""V4L2 devices, RTSP streams of IP lane cameras and video files, through OpenCV.

OpenCV (``opencv-python-headless``, the ``camera`` extra) is imported only when this backend is
selected. ``device`` is a V4L2 device (``/dev/video0``, or its number ``0``), an ``rtsp://`` (or
``http://``) URL, or a video file. Reads block, so they run in a worker thread; a live source is read
at its own rate and thinned to ``fps`` (so its buffer never fills with stale frames), a video file is
replayed at ``fps``. A live stream that stops delivering raises :class:`CameraError` (the camera
source reports the fault and reopens it); a video file ends, or starts again with ``loop``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np

from drivers.camera.base import MAX_PIXELS, CameraError, Frame, LogLimiter, frame_problem
from drivers.errors import BackendUnavailable

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


def import_cv2(camera: str, backend: str = "opencv") -> Any:
    """The ``cv2`` module, or a clear :class:`BackendUnavailable` for the camera that needs it."""
    try:
        import cv2
    except ImportError as exc:
        raise BackendUnavailable(
            f"camera {camera!r}: backend {backend!r} needs OpenCV "
            f"(pip install 'lane-edge-agent[camera]' or opencv-python-headless): {exc}"
        ) from exc
    return cv2


def _redact(device: str) -> str:
    """``device`` with any ``user:password@`` of a stream URL hidden (it ends up in logs and errors)."""
    if "://" in device and "@" in device.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = device.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return device


class OpencvSource:
    """Frames from a V4L2 device, an RTSP/HTTP stream or a video file (B, G, R, like OpenCV reads them)."""

    def __init__(
        self,
        camera: str,
        *,
        clock: Callable[[], float],
        device: str,
        fps: float = 5.0,
        width: int | None = None,
        height: int | None = None,
        max_pixels: int = MAX_PIXELS,
        loop: bool = False,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self._cv2 = import_cv2(camera)
        self.camera = camera
        self.device = device
        self._clock = clock
        self._period = 1.0 / fps
        self._size = (width, height)
        self._max_pixels = max_pixels
        self._loop = loop
        self.live = device.isdigit() or device.startswith("/dev/") or device.startswith(STREAM_SCHEMES)
        self.counters: Counter[str] = Counter()
        self._warn = LogLimiter(log)
        self._cap: Any = None
        self._lock = threading.Lock()  # the capture is used by one worker thread at a time
        self._closed = False

    def _open(self) -> Any:
        cv2 = self._cv2
        if not self.live and not Path(self.device).is_file():
            raise CameraError(f"camera {self.camera!r}: video file {self.device} does not exist")
        if self.device.isdigit():
            cap = cv2.VideoCapture(int(self.device), cv2.CAP_V4L2)
        elif self.device.startswith("/dev/"):
            cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
        else:
            cap = cv2.VideoCapture(self.device, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"camera {self.camera!r}: cannot open {_redact(self.device)}")
        width, height = self._size
        if self.live:
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if width and height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        return cap

    def _read(self) -> tuple[bool, Any]:
        with self._lock:
            if self._closed or self._cap is None:
                return False, None
            ok, image = self._cap.read()
            if not ok and not self.live and self._loop:
                self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
                self.counters["replays"] += 1
                ok, image = self._cap.read()
            return bool(ok), image

    def _release(self) -> None:
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    async def frames(self) -> AsyncIterator[Frame]:
        """Open the source and yield checked frames at about ``fps`` until closed or lost."""
        loop = asyncio.get_running_loop()
        cap = await loop.run_in_executor(None, self._open)
        with self._lock:
            self._cap = cap
        try:
            due = time.monotonic()
            while not self._closed:
                ok, image = await loop.run_in_executor(None, self._read)
                if self._closed:
                    return
                if not ok:
                    if self.live:
                        self.counters["stream_lost"] += 1
                        raise CameraError(
                            f"camera {self.camera!r}: {_redact(self.device)} stopped delivering frames"
                        )
                    return  # the end of a video file
                now = time.monotonic()
                if self.live and now < due:
                    self.counters["frames_thinned"] += 1  # faster than fps: keep the buffer fresh
                    continue
                due = max(due + self._period, now)
                if isinstance(image, np.ndarray) and image.ndim == 2 and image.dtype == np.uint8:
                    image = np.repeat(image[:, :, None], 3, axis=2)  # a monochrome (IR) sensor
                problem = frame_problem(image, self._max_pixels)
                if problem is not None:
                    self.counters["bad_frames"] += 1
                    self._warn.warning(
                        "bad", "camera %r: bad frame from %s: %s", self.camera, _redact(self.device), problem
                    )
                    continue
                yield Frame(self.camera, self._clock(), image)
                if not self.live:
                    await asyncio.sleep(self._period)
        finally:
            await loop.run_in_executor(None, self._release)

    def close(self) -> None:
        """Stop; the capture is released by the reading task (or here, if it is not running)."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            try:
                if self._cap is not None:
                    self._cap.release()
                    self._cap = None
            finally:
                self._lock.release()
