"""The digital I/O protocol every GPIO backend implements (BCM pin numbers, True = high)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

EdgeCallback = Callable[[int, bool], None]
"""Called with (pin, new level) after debounce; may run on a backend thread."""


class DigitalIO(Protocol):
    """A bank of GPIO pins."""

    def setup_output(self, pin: int, *, initial: bool = False) -> None:
        """Make ``pin`` an output driven to ``initial`` from the first instant."""
        ...

    def setup_input(self, pin: int, *, pull_up: bool = True) -> None:
        """Make ``pin`` an input with the given pull."""
        ...

    def write(self, pin: int, value: bool) -> None:
        """Drive an output pin."""
        ...

    def read(self, pin: int) -> bool:
        """Read the level of an input (or the driven level of an output)."""
        ...

    def watch(self, pin: int, callback: EdgeCallback, *, debounce_ms: int = 0) -> None:
        """Call ``callback`` on every (debounced) level change of input ``pin``."""
        ...

    def close(self) -> None:
        """Release the pins (outputs go low). Safe to call twice."""
        ...
