"""Shared helpers for the RFID tests (drivers, hw_sim, edge_agent): a leak check, deadlines, waiting."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

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


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves threads or file descriptors (ports, ptys, sockets) behind."""
    threads = set(threading.enumerate())
    fds = _fds()
    yield
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        extra_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        extra_fds = _fds() - fds
        if not extra_threads and not extra_fds:
            return
        time.sleep(0.02)
    detail = {fd: os.readlink(f"/proc/self/fd/{fd}")
              for fd in extra_fds if os.path.exists(f"/proc/self/fd/{fd}")}
    raise AssertionError(f"leaked threads {extra_threads} / file descriptors {detail}")
