"""Simulated cameras: the scenario player shows scenes; each camera streams frames of what it sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from drivers.camera.base import Frame
from hw_sim.world import Scene


class SimCamera:
    """One simulated camera; a frame carries the scene it shows as its label (no pixels)."""

    def __init__(
        self, camera: str, *, clock: Callable[[], float], sleep: Callable[[float], object], fps: float = 5.0
    ) -> None:
        self.camera = camera
        self._clock = clock
        self._sleep = sleep
        self._period = 1.0 / fps
        self.scene: Scene | None = None
        self.frames_sent = 0
        self._closed = False

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield a frame every period while a scene is in view."""
        while not self._closed:
            scene = self.scene
            if scene is not None:
                self.frames_sent += 1
                yield Frame(
                    self.camera, self._clock(), None, {"plate": scene.plate, "container": scene.container}
                )
            await self._sleep_lane(self._period)

    async def _sleep_lane(self, seconds: float) -> None:
        result = self._sleep(seconds)
        if asyncio.iscoroutine(result):
            await result

    def close(self) -> None:
        """Stop streaming."""
        self._closed = True


class SimCameraRig:
    """All simulated cameras of a lane (implements :class:`hw_sim.world.CameraRig`)."""

    def __init__(self) -> None:
        self.cameras: dict[str, SimCamera] = {}

    def add(self, camera: SimCamera) -> SimCamera:
        """Register a camera by its name."""
        self.cameras[camera.camera] = camera
        return camera

    def show(self, camera: str, scene: Scene | None) -> None:
        """Put ``scene`` in front of ``camera``."""
        cam = self.cameras.get(camera)
        if cam is not None:
            cam.scene = scene
