"""Simulated cameras: the scenario player shows scenes; each camera streams frames of what it sees."""

from __future__ import annotations

import asyncio
import zlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal

from drivers.camera.simlink import SceneFrame
from hw_sim.world import Scene

PREFETCH_SCENES = 3
"""How many expected scenes ahead a rendering camera keeps rendered."""


class SimCamera:
    """One simulated camera; a frame carries the scene it shows as its label.

    With ``render`` the frame also carries pixels: the scene drawn by :mod:`hw_sim.render` for this
    camera's ``role`` at ``size``. Each scene is rendered ``variants`` times (different placement,
    exposure and noise, seeded from the scene text and the camera name, so runs repeat exactly) in a
    worker thread, and the renders are cached for the last few scenes. The first sight of a scene
    renders its first variant at once and the others in the background, and a frame's time is the
    instant the scene was seen (not when its pixels were ready), so rendering does not shift frames
    in lane time or thin them out: the camera keeps its frame rate while the render takes its time.
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
        self._cache: OrderedDict[tuple[Scene, int], asyncio.Future[Any]] = OrderedDict()
        self._expected: deque[Scene] = deque()
        self._last_seen: Scene | None = None
        self._closed = False

    async def frames(self) -> AsyncIterator[SceneFrame]:
        """Yield a frame every period while a scene is in view."""
        shown = 0
        if self.render:  # fonts and the noise bank load once, before the first truck (not counted)
            from hw_sim.render import render_frame

            warm = Scene("WARMUP", None)
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: render_frame(warm, self.role, seed=0, size=self.size)
            )
        while not self._closed:
            scene = self.scene
            seen = self._clock()
            if self.render and scene != self._last_seen:
                self._last_seen = scene
                self._prefetch(scene)
            if scene is not None:
                image = None
                if self.render:
                    for later in range(1, self.variants):
                        self._render(scene, later)
                    image = await self._image(scene, shown % self.variants)
                shown += 1
                self.frames_sent += 1
                label = {"plate": scene.plate, "container": scene.container}
                yield SceneFrame(self.camera, seen, image, label)
            await self._sleep_lane(max(0.0, self._period - (self._clock() - seen)))

    def expect(self, scenes: Iterable[Scene], ahead: int = PREFETCH_SCENES) -> None:
        """The scenes this camera will be shown, in order: each is rendered while ``ahead`` trucks away.

        A simulation that runs faster than real time gives a camera only a few wall milliseconds per
        truck; rendering ahead keeps the frames coming at the camera's rate.
        """
        self._expected = deque(scenes)
        self._ahead = ahead

    def _prefetch(self, scene: Scene | None) -> None:
        """``scene`` came into view: forget the expected scenes up to it, start rendering the next ones."""
        if scene is not None and scene in self._expected:
            while self._expected and self._expected.popleft() != scene:
                pass
        for upcoming in list(self._expected)[: getattr(self, "_ahead", 0)]:
            for variant in range(self.variants):
                self._render(upcoming, variant)

    def _render(self, scene: Scene, variant: int) -> asyncio.Future[Any]:
        """The render of ``scene``'s ``variant``: cached, or started now in a worker thread."""
        key = (scene, variant)
        future = self._cache.get(key)
        if future is None:
            from hw_sim.render import render_frame

            text = f"{self.camera}|{self.role}|{scene.plate}|{scene.container}|{variant}"
            seed = zlib.crc32(text.encode())
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                None, lambda: render_frame(scene, self.role, seed=seed, size=self.size)
            )
            self.renders += 1
            self._cache[key] = future
            while len(self._cache) > (PREFETCH_SCENES + 4) * self.variants:
                self._cache.popitem(last=False)
        return future

    async def _image(self, scene: Scene, variant: int) -> Any:
        return await asyncio.shield(self._render(scene, variant))

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
