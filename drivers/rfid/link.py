"""A serial port on the asyncio loop: opened with ``serial.serial_for_url``, never blocking the loop.

Where the port has a file descriptor (a tty, a pty, ``socket://``) bytes are read from a
``loop.add_reader`` callback; otherwise (``loop://`` and other URL handlers) a reader thread polls the
port and hands bytes over with ``call_soon_threadsafe``. A read or write error, or end of file, closes
the link and resolves :attr:`SerialLink.lost` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import serial

from drivers.errors import DeviceDisconnected

log = logging.getLogger(__name__)

OnBytes = Callable[[bytes], None]
_THREAD_POLL_S = 0.05


def resolve_port(port: str) -> str:
    """Return the device a configured port names now: URLs unchanged, filesystem paths through symlinks.

    A ``/dev/serial/by-id/...`` link may point at a different ``/dev/ttyUSBn`` after a replug, so this
    is called before every open.
    """
    if "://" in port:
        return port
    return os.path.realpath(port)


class SerialLink:
    """One open serial port feeding ``on_bytes`` on the loop; ``lost`` resolves when it breaks."""

    def __init__(self, port: Any, on_bytes: OnBytes, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self._port = port
        self._on_bytes = on_bytes
        self._loop = loop
        self.name = name
        self.lost: asyncio.Future[DeviceDisconnected] = loop.create_future()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    @classmethod
    async def open(cls, port: str, baud: int, on_bytes: OnBytes) -> SerialLink:
        """Resolve and open ``port`` (8N1 at ``baud``) in an executor thread and start reading.

        Raises :class:`~drivers.errors.DeviceDisconnected` when the port cannot be opened.
        """
        loop = asyncio.get_running_loop()
        target = resolve_port(port)
        try:
            ser = await loop.run_in_executor(None, _open_port, target, baud)
        except (OSError, ValueError, serial.SerialException) as exc:
            raise DeviceDisconnected(f"cannot open {port} ({target}): {exc}") from exc
        link = cls(ser, on_bytes, loop, target)
        link._start()
        return link

    def _start(self) -> None:
        fileno = getattr(self._port, "fileno", None)
        fd: int | None = None
        if fileno is not None:
            with contextlib.suppress(Exception):
                fd = int(fileno())
        if fd is not None and fd >= 0:
            self._fd = fd
            self._loop.add_reader(fd, self._readable)
        else:
            self._port.timeout = _THREAD_POLL_S
            self._thread = threading.Thread(target=self._pump, name=f"serial-{self.name}", daemon=True)
            self._thread.start()

    def _readable(self) -> None:
        try:
            data = self._port.read(4096)
        except (OSError, serial.SerialException) as exc:
            self._fail(f"read failed: {exc}")
            return
        if data:
            self._on_bytes(bytes(data))

    def _pump(self) -> None:  # reader thread (ports without a file descriptor)
        while not self._stop.is_set():
            try:
                data = self._port.read(4096)
            except Exception as exc:  # any failure of the port ends the link
                if not self._stop.is_set():
                    self._loop.call_soon_threadsafe(self._fail, f"read failed: {exc}")
                return
            if data:
                self._loop.call_soon_threadsafe(self._deliver, bytes(data))

    def _deliver(self, data: bytes) -> None:
        if not self._closed:
            self._on_bytes(data)

    def write(self, data: bytes) -> bool:
        """Send ``data``; a failure closes the link and returns ``False``."""
        if self._closed:
            return False
        try:
            self._port.write(data)
        except (OSError, serial.SerialException) as exc:
            self._fail(f"write failed: {exc}")
            return False
        return True

    def _fail(self, reason: str) -> None:
        if not self.lost.done():
            self.lost.set_result(DeviceDisconnected(f"{self.name}: {reason}"))
        self._shutdown()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._fd is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
        with contextlib.suppress(Exception):
            self._port.close()

    async def close(self) -> None:
        """Stop reading and close the port; safe to call twice."""
        if not self.lost.done():
            self.lost.set_result(DeviceDisconnected(f"{self.name}: closed"))
        self._shutdown()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            await asyncio.to_thread(thread.join, 2.0)


def _open_port(target: str, baud: int) -> Any:
    return serial.serial_for_url(
        target, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=0, write_timeout=0.5
    )
