"""Simulated cameras: the scenario player shows scenes; each camera streams frames of what it sees."""

from __future__ import annotations

import asyncio
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from drivers.camera.base import Frame
from hw_sim.world import Scene


class SimCamera:
    """One simulated camera; a frame carries the scene it shows as its label.

    With ``render`` the frame also carries pixels: the scene drawn by :mod:`hw_sim.render` for this
    camera's ``role`` at ``size``. Each scene is rendered ``variants`` times (different placement,
    exposure and noise, seeded from the scene text and the camera name, so runs repeat exactly) in a
    worker thread, and the renders are cached for the last few scenes.
    """

    def __init__(
        self,
        camera: str,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], object],
        fps: float = 5.0,
        render: bool = False,
        role: Literal["plate", "container"] = "plate",
        size: tuple[int, int] = (640, 360),
        variants: int = 3,
    ) -> None:
        if variants < 1:
            raise ValueError("variants must be at least 1")
        self.camera = camera
        self._clock = clock
        self._sleep = sleep
        self._period = 1.0 / fps
        self.render = render
        self.role = role
        self.size = size
        self.variants = variants
        self.scene: Scene | None = None
        self.frames_sent = 0
        self.renders = 0
        self._cache: OrderedDict[tuple[Scene, int], Any] = OrderedDict()
        self._closed = False

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield a frame every period while a scene is in view."""
        shown = 0
        while not self._closed:
            scene = self.scene
            if scene is not None:
                image = await self._image(scene, shown % self.variants) if self.render else None
                shown += 1
                self.frames_sent += 1
                yield Frame(
                    self.camera, self._clock(), image, {"plate": scene.plate, "container": scene.container}
                )
            await self._sleep_lane(self._period)

    async def _image(self, scene: Scene, variant: int) -> Any:
        key = (scene, variant)
        image = self._cache.get(key)
        if image is None:
            from hw_sim.render import render_frame

            text = f"{self.camera}|{self.role}|{scene.plate}|{scene.container}|{variant}"
            seed = zlib.crc32(text.encode())
            loop = asyncio.get_running_loop()
            image = await loop.run_in_executor(
                None, lambda: render_frame(scene, self.role, seed=seed, size=self.size)
            )
            self.renders += 1
            self._cache[key] = image
            while len(self._cache) > 4 * self.variants:
                self._cache.popitem(last=False)
        return image

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
