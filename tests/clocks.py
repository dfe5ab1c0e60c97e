"""A hand-driven clock for unit tests of time-dependent lane logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """Lane time that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._utc0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        self._start = start

    def monotonic(self) -> float:
        return self.now

    def utcnow(self) -> datetime:
        return self._utc0 + timedelta(seconds=self.now - self._start)

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds
