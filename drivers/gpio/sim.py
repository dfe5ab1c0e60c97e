"""In-process simulated GPIO: records every change with a time; inputs can be driven."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from drivers.gpio.base import EdgeCallback


@dataclass(frozen=True, slots=True)
class PinChange:
    """One recorded level change."""

    pin: int
    value: bool
    at: float  # time.monotonic()


class SimGpio:
    """A simulated pin bank (gpiozero ``MockPin`` in spirit): observable and drivable.

    ``loopback`` wires output pins to input pins (output -> input), the way a lamp's read-back
    contact follows its relay: the input then follows the output until :meth:`disconnect` cuts the
    wire (a dead lamp) and :meth:`drive` sets the input on its own (a welded relay).
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, loopback: Mapping[int, int] | None = None
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._levels: dict[int, bool] = {}
        self._outputs: set[int] = set()
        self._inputs: set[int] = set()
        self._watchers: dict[int, list[EdgeCallback]] = {}
        self._loopback: dict[int, int] = dict(loopback or {})
        self.history: list[PinChange] = []
        self.closed = False

    def setup_output(self, pin: int, *, initial: bool = False) -> None:
        """Declare an output at ``initial``."""
        with self._lock:
            self._outputs.add(pin)
            self._levels[pin] = initial
            self.history.append(PinChange(pin, initial, self._clock()))
            wired = self._loopback.get(pin)
        if wired is not None and wired in self._inputs:
            self._set_input(wired, initial)

    def setup_input(self, pin: int, *, pull_up: bool = True) -> None:
        """Declare an input; it idles at the pull level (or follows its looped-back output)."""
        with self._lock:
            self._inputs.add(pin)
            source = next((o for o, i in self._loopback.items() if i == pin and o in self._outputs), None)
            level = self._levels[source] if source is not None else pull_up
            self._levels.setdefault(pin, level)

    def write(self, pin: int, value: bool) -> None:
        """Drive an output; writing an undeclared pin is a programming error."""
        with self._lock:
            if pin not in self._outputs:
                raise ValueError(f"pin {pin} is not set up as an output")
            if self._levels.get(pin) != value:
                self._levels[pin] = value
                self.history.append(PinChange(pin, value, self._clock()))
            wired = self._loopback.get(pin)
        if wired is not None and wired in self._inputs:
            self._set_input(wired, value)

    def read(self, pin: int) -> bool:
        """Return the pin's current level."""
        with self._lock:
            if pin not in self._inputs and pin not in self._outputs:
                raise ValueError(f"pin {pin} is not set up")
            return self._levels[pin]

    def watch(self, pin: int, callback: EdgeCallback, *, debounce_ms: int = 0) -> None:
        """Register an edge callback (the simulator has no bounce, so ``debounce_ms`` is unused)."""
        with self._lock:
            if pin not in self._inputs:
                raise ValueError(f"pin {pin} is not set up as an input")
            self._watchers.setdefault(pin, []).append(callback)

    def drive(self, pin: int, value: bool) -> None:
        """Simulate the outside world changing an input's level."""
        with self._lock:
            if pin not in self._inputs:
                raise ValueError(f"pin {pin} is not set up as an input")
        self._set_input(pin, value)

    def connect(self, output: int, input_pin: int) -> None:
        """Wire ``output`` to ``input_pin`` (the input follows the output from now on)."""
        with self._lock:
            self._loopback[output] = input_pin
            level = self._levels.get(output) if output in self._outputs else None
        if level is not None and input_pin in self._inputs:
            self._set_input(input_pin, level)

    def disconnect(self, output: int) -> None:
        """Cut the loopback wire from ``output``; its input keeps its last level."""
        with self._lock:
            self._loopback.pop(output, None)

    def _set_input(self, pin: int, value: bool) -> None:
        with self._lock:
            changed = self._levels.get(pin) != value
            self._levels[pin] = value
            callbacks = list(self._watchers.get(pin, ())) if changed else []
            if changed:
                self.history.append(PinChange(pin, value, self._clock()))
        for cb in callbacks:
            cb(pin, value)

    def close(self) -> None:
        """All outputs low; idempotent."""
        with self._lock:
            if self.closed:
                return
            for pin in sorted(self._outputs):
                if self._levels.get(pin):
                    self._levels[pin] = False
                    self.history.append(PinChange(pin, False, self._clock()))
            self.closed = True
