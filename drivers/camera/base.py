"""What every camera backend delivers: timestamped frames, checked before anyone reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from drivers.errors import DeviceError

MAX_PIXELS = 4608 * 3496
"""The largest frame any backend hands on (the Raspberry Pi HQ/v3 camera's full sensor, ~16 MP)."""


class CameraError(DeviceError):
    """A camera cannot deliver frames (not found, stream lost, file unreadable)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame.

    ``image`` is an (h, w, 3) uint8 array in B, G, R memory order (picamera2's ``RGB888``, OpenCV's
    native order). A simulator's frame (:class:`drivers.camera.simlink.SceneFrame`) also says what its
    scene shows; a camera's never does.
    """

    camera: str
    captured: float  # lane monotonic seconds
    image: Any = None


class FrameSource(Protocol):
    """A camera: an async stream of frames."""

    def frames(self) -> AsyncIterator[Frame]:
        """Yield frames until cancelled; raise :class:`CameraError` when the camera is lost."""
        ...

    def close(self) -> None:
        """Release the camera; safe to call twice."""
        ...


def frame_problem(image: Any, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why ``image`` is not a usable frame, or ``None`` when it is one.

    A usable frame is a C-ordered-or-not (h, w, 3) ``uint8`` numpy array, at least 16 x 16 pixels and
    at most ``max_pixels``. Frames are hostile input: a decoder or a driver can hand over anything.
    """
    if not isinstance(image, np.ndarray):
        return f"not an image array ({type(image).__name__})"
    if image.dtype != np.uint8:
        return f"pixel type {image.dtype}, expected uint8"
    if image.ndim != 3 or image.shape[2] != 3:
        return f"shape {image.shape}, expected (height, width, 3)"
    h, w = int(image.shape[0]), int(image.shape[1])
    if h < 16 or w < 16:
        return f"{w}x{h} pixels is too small (at least 16x16)"
    if h * w > max_pixels:
        return f"{w}x{h} pixels is over the limit of {max_pixels} pixels"
    return None


class LogLimiter:
    """Log the first occurrence of each key, then at most once per ``interval_s`` with a count.

    Bad frames can arrive at the camera's frame rate; the log must not.
    """

    def __init__(self, logger: Any, interval_s: float = 60.0, *, clock: Any = None) -> None:
        import time

        self._log = logger
        self._interval = interval_s
        self._clock = clock or time.monotonic
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` at WARNING unless ``key`` was logged within the interval; True if logged."""
        now = float(self._clock())
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        n = self._suppressed.pop(key, 0)
        self._log.warning(msg + (f" ({n} similar suppressed)" if n else ""), *args)
        return True
