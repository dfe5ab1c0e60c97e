"""Every uplink test must leave no paho, store or connect threads behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

_OURS = ("paho-mqtt-client-edge", "store:", "mqtt-connect:")


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 2.0
    while True:
        left = [t.name for t in threading.enumerate() if t.name.startswith(_OURS)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not left, f"threads left behind: {left}"
