"""Shared helpers for the Modbus tests (drivers, hw_sim, edge_agent): leak check, running, waiting, time."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """Run ``coro`` on a fresh loop, failing the test if it takes longer than ``timeout``."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


async def until(predicate: Callable[[], bool], limit_s: float = 5.0, what: str = "condition") -> None:
    """Wait on the running loop until ``predicate()`` holds."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def stopped(task: asyncio.Task[None]) -> None:
    """Cancel a source's task and wait for it to finish."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class SteppedClock:
    """Lane time that moves only when the test advances it; ``sleep`` really waits for that."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._start = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def utcnow(self) -> datetime:
        return datetime(2026, 11, 28, 12, 0, tzinfo=UTC) + timedelta(seconds=self.now - self._start)

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), fut))
        await fut

    async def advance(self, seconds: float, step: float = 0.01) -> None:
        """Move time forward in steps, letting every woken task run after each step."""
        end = self.now + seconds
        while True:
            self.now = min(end, self.now + step)
            while self._sleepers and self._sleepers[0][0] <= self.now + 1e-12:
                _, _, fut = heapq.heappop(self._sleepers)
                if not fut.done():
                    fut.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
            if self.now >= end:
                return
