"""Shared helpers for the RFID tests (drivers, hw_sim, edge_agent): a leak check, deadlines, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """Run ``coro`` on a fresh loop, failing the test if it takes longer than ``timeout``."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


async def until(predicate: Callable[[], bool], within: float = 5.0, what: str = "condition") -> None:
    """Wait on the running loop until ``predicate()`` holds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
