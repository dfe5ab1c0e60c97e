"""Injected clocks: real time for the service, a scaled clock for accelerated simulation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    """Time as the lane sees it: monotonic seconds for correlation, UTC for records."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (lane time)."""
        ...

    def utcnow(self) -> datetime:
        """The current UTC time (timezone-aware)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of lane time."""
        ...


class SystemClock:
    """Wall time: what the service uses."""

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    def utcnow(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Lane time running ``factor`` times faster than wall time (simulation only).

    Lane seconds = wall seconds x factor, measured from creation; UTC advances likewise from the
    wall time at creation so records stay plausible.
    """

    def __init__(self, factor: float = 1.0) -> None:
        if factor <= 0:
            raise ValueError("time factor must be positive")
        self.factor = factor
        self._mono0 = time.monotonic()
        self._utc0 = datetime.now(UTC)

    def monotonic(self) -> float:
        """Lane seconds since creation (plus the wall monotonic origin)."""
        return self._mono0 + (time.monotonic() - self._mono0) * self.factor

    def utcnow(self) -> datetime:
        """UTC advancing at the scaled rate."""
        return self._utc0 + timedelta(seconds=(time.monotonic() - self._mono0) * self.factor)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of lane time (``seconds / factor`` of wall time)."""
        await asyncio.sleep(max(0.0, seconds) / self.factor)


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event) -> None:
    """Sleep ``seconds`` of lane time, or less if ``wake`` is set meanwhile."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waker = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, waker):
            task.cancel()
        await asyncio.gather(sleeper, waker, return_exceptions=True)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a component's background task and wait for it to end (``None``, done or the caller: no-op)."""
    if task is None or task.done() or task is asyncio.current_task():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
