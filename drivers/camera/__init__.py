"""Frame sources: one protocol, several backends, chosen by config.

Backends are named in :data:`BACKENDS` as ``"module:Class"`` and imported only when selected (the
pattern of :mod:`drivers.gpio`), so a missing camera library (picamera2 off a Pi, OpenCV where the
``camera`` extra is not installed) fails only for the user who selected that backend, with
:class:`~drivers.errors.BackendUnavailable`.

Every backend is built as ``Class(camera_name, clock=..., **options)`` and implements
:class:`~drivers.camera.base.FrameSource`. The ``sim`` backend is the simulator's camera: the simulator
builds it (it needs the scenario player to show it scenes) and hands it to the agent.
"""

from __future__ import annotations

from typing import Any, cast

from drivers.backends import load_backend
from drivers.camera.base import Frame, FrameSource

BACKENDS: dict[str, str] = {
    "picamera2": "drivers.camera.picamera2:Picamera2Source",
    "opencv": "drivers.camera.opencv:OpencvSource",
    "files": "drivers.camera.files:FileSource",
    "sim": "hw_sim.camera:SimCamera",
    "simlink": "drivers.camera.simlink:SimLinkSource",
}
"""Backend name (a camera's ``backend`` key) -> ``module:Class``."""


def backend_class(name: str) -> type[Any]:
    """Import and return the class of camera backend ``name`` (``ConfigError`` for an unknown name)."""
    return load_backend(BACKENDS, name, "camera")


def open_backend(name: str, camera: str, /, **options: Any) -> FrameSource:
    """Create camera backend ``name`` for the camera called ``camera`` with its ``options``.

    Raises :class:`~drivers.errors.BackendUnavailable` when the backend's library cannot load on
    this machine, naming what to install or which backend to choose instead.
    """
    cls = backend_class(name)
    return cast(FrameSource, cls(camera, **options))


__all__ = ["BACKENDS", "Frame", "FrameSource", "backend_class", "open_backend"]
