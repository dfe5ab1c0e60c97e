"""The one interface every input device presents to the lane.

A source runs until cancelled, turning what its device says into :data:`~edge_agent.domain.LaneEvent`
objects handed to ``emit`` (a plain callable on the lane's event loop; it never blocks). A source
survives its device: faults are reported as :class:`~edge_agent.domain.DeviceFault` events and in
:meth:`EventSource.health`, then retried with capped backoff; ``run`` returns or raises only on
cancellation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from edge_agent.domain import LaneEvent
from edge_agent.health import DeviceHealth

Emit = Callable[[LaneEvent], None]


class EventSource(Protocol):
    """A device feeding the lane (RFID reader, loop card, WIM controller, camera + recogniser)."""

    name: str

    async def run(self, emit: Emit) -> None:
        """Read the device forever, emitting lane events; clean up on cancellation."""
        ...

    def health(self) -> DeviceHealth:
        """The device's current health."""
        ...
