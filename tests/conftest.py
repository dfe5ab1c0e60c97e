"""Shared fixtures: a real Mosquitto broker (tests/mosquitto.py) and the leak check every test runs under."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.mosquitto"]


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves threads or file descriptors (ports, ptys, sockets, files) behind."""
    threads = set(threading.enumerate())
    fds = _fds()
    yield
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
