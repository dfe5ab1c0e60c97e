"""Supervising a polled Modbus device: connect, poll, count failures, back off, report up/down.

:class:`PollSupervisor` runs one device's poll cycle forever on an injected ``sleep`` (so simulated
time works): it connects (capped exponential backoff while it cannot), runs the cycle every
``interval``, and after ``fault_after`` failed cycles in a row (at once when it cannot connect)
calls ``on_down(reason)`` once; the first good cycle after that calls ``on_up()``. Each failure
episode is logged once, with context.

:class:`Conditions` keeps a device's active fault conditions and says what to report when one
starts or ends, one condition at a time: the lane tracks faults per device, so clearing one
condition while another is still active re-reports the remaining one instead of clearing the device.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.errors import DeviceDisconnected, DeviceError
from drivers.modbus.client import Backoff, ModbusLink

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Transition:
    """What to report: condition ``kind`` is (still) active, or the device is clear."""

    kind: str
    active: bool
    detail: str


class Conditions:
    """The active fault conditions of one device, keyed (e.g. ``stuck_loop:entry``)."""

    def __init__(self) -> None:
        self._active: dict[str, tuple[str, str]] = {}

    @property
    def active(self) -> dict[str, tuple[str, str]]:
        """Key -> (kind, detail) of every active condition."""
        return dict(self._active)

    def is_active(self, key: str) -> bool:
        """Tell whether the keyed condition is active."""
        return key in self._active

    def start(self, key: str, kind: str, detail: str) -> Transition | None:
        """Condition ``key`` begins; return what to report (``None`` if it was already active)."""
        if key in self._active:
            return None
        self._active[key] = (kind, detail)
        return Transition(kind, True, detail)

    def end(self, key: str, detail: str) -> Transition | None:
        """Condition ``key`` ends; return what to report (``None`` if it was not active)."""
        if self._active.pop(key, None) is None:
            return None
        if self._active:
            kind, still = next(reversed(self._active.values()))
            return Transition(kind, True, still)
        return Transition(key.split(":", 1)[0], False, detail)


class PollSupervisor:
    """Runs ``cycle`` on ``link`` every ``interval``, with backoff and up/down reporting."""

    def __init__(
        self,
        link: ModbusLink,
        *,
        interval: float,
        fault_after: int,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]],
        now: Callable[[], float],
    ) -> None:
        self.link = link
        self.interval = interval
        self.fault_after = fault_after
        self.backoff = backoff
        self._sleep = sleep
        self._now = now
        self.failures = 0
        self.down = False
        self.last_error = ""
        self.last_ok: float | None = None
        self._ever_connected = False

    async def run(
        self,
        cycle: Callable[[], Awaitable[None]],
        on_down: Callable[[str], None],
        on_up: Callable[[], None],
    ) -> None:
        """Poll forever (until cancelled); the link is closed on the way out."""
        task = asyncio.current_task()
        try:
            while True:
                delay = await self._once(cycle, on_down, on_up)
                if task is not None and task.cancelling():
                    # Python 3.11's asyncio.wait_for (inside pymodbus) can swallow a cancellation that
                    # lands as a reply arrives; honour it here so the lane can always shut down.
                    raise asyncio.CancelledError
                await self._sleep(delay)
        finally:
            self.link.close()

    async def _once(
        self,
        cycle: Callable[[], Awaitable[None]],
        on_down: Callable[[str], None],
        on_up: Callable[[], None],
    ) -> float:
        counters = self.link.counters
        if not self.link.connected:
            try:
                await self.link.connect()
            except DeviceDisconnected as exc:
                self._failed(str(exc), on_down, immediate=True)
                return self.backoff.next()
            if self._ever_connected:
                counters["reconnects"] += 1
            self._ever_connected = True
        try:
            await cycle()
        except DeviceError as exc:
            self._failed(str(exc), on_down, immediate=False)
            return self.interval if self.link.connected else self.backoff.next()
        self.backoff.reset()
        self.last_ok = self._now()
        if self.failures:
            log.info("%s: answering again after %d failed poll(s)", self.link.name, self.failures)
        self.failures = 0
        if self.down:
            self.down = False
            on_up()
        return self.interval

    def _failed(self, reason: str, on_down: Callable[[str], None], *, immediate: bool) -> None:
        self.failures += 1
        self.link.counters["failed_polls"] += 1
        self.last_error = reason
        if self.failures == 1:
            log.warning("%s: %s (at %s)", self.link.name, reason, self.link.endpoint.describe())
        if not self.down and (immediate or self.failures >= self.fault_after):
            self.down = True
            log.error("%s: device down after %d failed attempt(s): %s", self.link.name, self.failures, reason)
            on_down(reason)
