"""The Raspberry Pi camera through picamera2 (imported only when this backend is selected)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from drivers.camera.base import Frame
from drivers.errors import BackendUnavailable


class Picamera2Source:
    """Captures ``RGB888`` frames (B, G, R memory order) at ``size`` and about ``fps``."""

    def __init__(
        self,
        camera: str,
        *,
        clock: Callable[[], float],
        index: int = 0,
        size: tuple[int, int] = (1280, 720),
        fps: float = 5.0,
    ) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:  # not a Pi, or python3-picamera2 missing
            raise BackendUnavailable(
                f"camera {camera!r}: backend 'picamera2' needs the python3-picamera2 package "
                f'on Raspberry Pi OS ({exc}); choose backend = "sim" off the Pi'
            ) from exc
        self.camera = camera
        self._clock = clock
        self._period = 1.0 / fps
        self._cam: Any = Picamera2(index)
        self._cam.configure(self._cam.create_video_configuration(main={"format": "RGB888", "size": size}))
        self._cam.start()
        self._closed = False

    async def frames(self) -> AsyncIterator[Frame]:
        """Capture in a worker thread so the lane loop never waits on the sensor."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            image = await loop.run_in_executor(None, self._cam.capture_array, "main")
            yield Frame(self.camera, self._clock(), image)
            await asyncio.sleep(self._period)

    def close(self) -> None:
        """Stop and close the camera."""
        if not self._closed:
            self._closed = True
            self._cam.stop()
            self._cam.close()
