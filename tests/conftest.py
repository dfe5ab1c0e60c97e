"""Shared fixtures: a real Mosquitto broker (tests/mosquitto.py) and the leak check every test runs under."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

pytest_plugins = ["tests.mosquitto"]
T = TypeVar("T")
_real_run = asyncio.run
TASK_GRACE_S = 1.0


def _checked_run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """``asyncio.run`` that fails when ``main`` returns with tasks of its own still running.

    ``asyncio.run`` cancels whatever is left without a word; a component that forgets a task would
    then pass every test. Tasks get ``TASK_GRACE_S`` to finish what their owner already cancelled.
    """

    async def checked() -> T:
        try:
            return await main
        finally:
            me = asyncio.current_task()
            left = {t for t in asyncio.all_tasks() if t is not me and not t.done()}
            if left:
                await asyncio.wait(left, timeout=TASK_GRACE_S)
            still = sorted(f"{t.get_name()}: {t.get_coro()!r}" for t in left if not t.done())
            if still:
                _leaked_tasks.extend(still)

    return _real_run(checked(), debug=debug)


_leaked_tasks: list[str] = []


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves asyncio tasks, threads or file descriptors (ports, ptys, sockets) behind."""
    threads = set(threading.enumerate())
    fds = _fds()
    _leaked_tasks.clear()
    asyncio.run = _checked_run
    try:
        yield
    finally:
        asyncio.run = _real_run
    if _leaked_tasks:
        raise AssertionError(f"asyncio tasks still running when the test's loop ended: {_leaked_tasks}")
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()  # objects in reference cycles close their descriptors when freed
        extra_threads = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        extra_fds = _fds() - fds
        if not extra_threads and not extra_fds:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    links = {fd: f"/proc/self/fd/{fd}" for fd in extra_fds}
    detail = {fd: os.readlink(link) for fd, link in links.items() if os.path.exists(link)}
    raise AssertionError(f"leaked threads {extra_threads} / file descriptors {detail}")
