"""Digital inputs and outputs: one protocol, several backends (sim, simboard, RPi.GPIO).

Backends are named in :data:`BACKENDS` as ``"module:Class"`` and imported only when selected
(python-can's ``Bus(interface=...)`` pattern), so a missing vendor library fails only for the user
who asked for it, with :class:`~drivers.errors.BackendUnavailable`.
"""

from __future__ import annotations

from typing import Any, cast

from drivers.backends import load_backend
from drivers.gpio.base import DigitalIO, EdgeCallback

BACKENDS: dict[str, str] = {
    "sim": "drivers.gpio.sim:SimGpio",
    "simboard": "drivers.gpio.simboard:SimBoardGpio",
    "rpigpio": "drivers.gpio.rpigpio:RpiGpio",
}
"""Backend name (the config's ``backend`` key) -> ``module:Class``."""


def backend_class(name: str) -> type[Any]:
    """Import and return the class of backend ``name`` (``ConfigError`` for an unknown name)."""
    return load_backend(BACKENDS, name, "GPIO")


def open_backend(name: str, /, **options: Any) -> DigitalIO:
    """Create the GPIO backend ``name`` with its config ``options`` (keys = constructor keywords).

    Raises :class:`~drivers.errors.BackendUnavailable` when the backend's library cannot load on
    this machine (e.g. RPi.GPIO off a Raspberry Pi), naming the backend to choose instead.
    """
    cls = backend_class(name)
    return cast(DigitalIO, cls(**options))


__all__ = ["BACKENDS", "DigitalIO", "EdgeCallback", "backend_class", "open_backend"]
