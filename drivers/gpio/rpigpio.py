"""RPi.GPIO backend (BCM numbering). On a Raspberry Pi 5 the same module comes from ``rpi-lgpio``.

``RPi.GPIO`` is imported when the backend is created, never at module import, so this module loads
on any machine; off a Pi the import error becomes :class:`~drivers.errors.BackendUnavailable`.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from drivers.errors import BackendUnavailable, ConfigError
from drivers.gpio.base import EdgeCallback

_CHOOSE = 'choose backend = "sim" or "simboard" in the GPIO config section (e.g. signal.gpio.backend = "sim")'


def load_rpi_gpio() -> Any:
    """Import ``RPi.GPIO``; any failure becomes :class:`BackendUnavailable` that says what to do."""
    try:
        return importlib.import_module("RPi.GPIO")
    except RuntimeError as exc:  # RPi.GPIO off a Pi: "This module can only be run on a Raspberry Pi!"
        raise BackendUnavailable(
            f"GPIO backend 'rpigpio' cannot run on this machine ({exc}); {_CHOOSE}"
        ) from exc
    except ImportError as exc:
        raise BackendUnavailable(
            "GPIO backend 'rpigpio' needs the RPi.GPIO module "
            "(pip install 'lane-edge-agent[pi]'; on a Raspberry Pi 5 install rpi-lgpio instead): "
            f"{exc}; off a Pi {_CHOOSE}"
        ) from exc


class RpiGpio:
    """Pins of the Pi's header through RPi.GPIO, BCM numbering, ``True`` = high."""

    def __init__(self, *, warnings: bool = False) -> None:
        gpio = load_rpi_gpio()
        gpio.setwarnings(warnings)
        mode = gpio.getmode()
        if mode is None:
            gpio.setmode(gpio.BCM)
        elif mode != gpio.BCM:
            raise ConfigError("RPi.GPIO is already in BOARD numbering in this process; the agent uses BCM")
        self._gpio = gpio
        self._lock = threading.Lock()
        self._outputs: set[int] = set()
        self._inputs: set[int] = set()
        self._watched: dict[int, list[EdgeCallback]] = {}
        self._closed = False

    def setup_output(self, pin: int, *, initial: bool = False) -> None:
        """Make ``pin`` an output at ``initial`` from the first instant (``setup(..., initial=)``)."""
        g = self._gpio
        g.setup(pin, g.OUT, initial=g.HIGH if initial else g.LOW)
        with self._lock:
            self._outputs.add(pin)

    def setup_input(self, pin: int, *, pull_up: bool = True) -> None:
        """Make ``pin`` an input with the internal pull-up (or pull-down)."""
        g = self._gpio
        g.setup(pin, g.IN, pull_up_down=g.PUD_UP if pull_up else g.PUD_DOWN)
        with self._lock:
            self._inputs.add(pin)

    def write(self, pin: int, value: bool) -> None:
        """Drive an output pin (``ValueError`` for a pin not set up as an output, like every backend)."""
        if pin not in self._outputs:
            raise ValueError(f"pin {pin} is not set up as an output")
        g = self._gpio
        g.output(pin, g.HIGH if value else g.LOW)

    def read(self, pin: int) -> bool:
        """Read the level of an input, or the driven level of an output."""
        return bool(self._gpio.input(pin))

    def watch(self, pin: int, callback: EdgeCallback, *, debounce_ms: int = 0) -> None:
        """Call ``callback(pin, level)`` on both edges; runs on RPi.GPIO's event thread."""
        g = self._gpio
        if pin not in self._inputs:
            raise ValueError(f"pin {pin} is not set up as an input")
        with self._lock:
            callbacks = self._watched.get(pin)
            first = callbacks is None
            self._watched.setdefault(pin, []).append(callback)
        if first:
            kwargs: dict[str, Any] = {"callback": self._dispatch}
            if debounce_ms > 0:
                kwargs["bouncetime"] = debounce_ms
            g.add_event_detect(pin, g.BOTH, **kwargs)

    def _dispatch(self, pin: int) -> None:
        level = bool(self._gpio.input(pin))
        with self._lock:
            callbacks = list(self._watched.get(pin, ()))
        for cb in callbacks:
            cb(pin, level)

    def close(self) -> None:
        """Drive outputs low, then ``cleanup`` only the pins this backend set up. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            outputs, pins = sorted(self._outputs), sorted(self._outputs | self._inputs)
            watched = sorted(self._watched)
        g = self._gpio
        for pin in watched:
            g.remove_event_detect(pin)
        for pin in outputs:
            g.output(pin, g.LOW)
        if pins:
            g.cleanup(pins)
