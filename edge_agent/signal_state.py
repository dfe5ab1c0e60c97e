"""The signal's state file: what must survive a restart (lane closed, officer hold), written durably.

The file is JSON, replaced atomically (write a temporary file, ``fsync`` it, ``rename`` over the old one,
``fsync`` the directory), so a power cut leaves either the old state or the new one, never a torn file.
Writes happen on one background thread and coalesce: the event loop only hands over the latest state
and never waits on the SD card. :meth:`StateFile.flush` waits (bounded) until what was handed over is on
disk; the signal calls it when it stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_STATE_BYTES = 64 * 1024
"""A state file larger than this is not ours (refused as unreadable)."""


def default_state_file(store_path: Path) -> Path:
    """Where the state file lives when ``signal.state_file`` is not set: beside the store."""
    return store_path.with_name(store_path.stem + ".signal.json")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` durably: temp file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_state(path: Path) -> dict[str, Any] | None:
    """The recorded state, or None when there is no file; raises ``ValueError`` for a bad one."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(raw) > MAX_STATE_BYTES:
        raise ValueError(f"larger than {MAX_STATE_BYTES} bytes")
    state = json.loads(raw)
    if not isinstance(state, dict):
        raise ValueError("not a JSON object")
    return state


class StateFile:
    """Coalescing, durable writer of one state file on its own thread (``close`` is safe twice)."""

    def __init__(self, path: Path, counters: Counter[str] | None = None) -> None:
        self.path = path
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self._cond = threading.Condition()
        self._pending: bytes | None = None
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def save(self, state: dict[str, Any]) -> None:
        """Hand over the latest state (returns at once; an older state not yet written is dropped)."""
        data = json.dumps(state, sort_keys=True).encode()
        with self._cond:
            if self._closed:
                return
            if self._pending is not None:
                self.counters["state_coalesced"] += 1
            self._pending = data
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="signal-state", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Wait until every state handed over is written (or failed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout_s)

    def close(self, timeout_s: float = 2.0) -> None:
        """Write what is pending, then stop the thread."""
        self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return
                data, self._pending, self._busy = self._pending, None, True
            try:
                write_atomically(self.path, data)
                self.counters["state_writes"] += 1
            except OSError as exc:
                self.counters["state_write_errors"] += 1
                if self.counters["state_write_errors"] == 1 or self.counters["state_write_errors"] % 100 == 0:
                    log.warning(
                        "cannot record signal state in %s (%d failures): %s",
                        self.path,
                        self.counters["state_write_errors"],
                        exc,
                    )
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
