"""A simulated serial line on a real pseudo-terminal pair, driven from the asyncio loop.

The device under simulation owns the master side; the agent opens :attr:`PtyPort.path` (or the
optional :attr:`PtyPort.link`, a symlink kept pointing at the current pty, as udev keeps
``/dev/serial/by-id/...``) exactly as it would open a USB-serial adapter. :meth:`PtyPort.unplug` closes
the pair so the agent's reads fail as on a pulled cable; :meth:`PtyPort.plug` makes a fresh pair (a new
``/dev/pts/N``, like a new ``/dev/ttyUSBn``) and re-points the link.

Optionally the line is paced at a baud rate (10 bits a byte, 8N1) so throughput is that of a real line.
Generic: any wire-level simulator that speaks over a serial line can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from pathlib import Path

OnData = Callable[[bytes], None]
MAX_BACKLOG = 1 << 16  # bytes held for a far end that does not read; beyond this, output is dropped


class PtyPort:
    """The device end of a pty pair (see the module docstring). Use inside a running event loop."""

    def __init__(self, on_data: OnData, link: Path | str | None = None, baud: int | None = None) -> None:
        self._on_data = on_data
        self.link = Path(link) if link is not None else None
        self.baud = baud
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._backlog = bytearray()
        self._writer_armed = False
        self._line_free_at = 0.0
        self._generation = 0
        self.dropped_bytes = 0
        self.bytes_written = 0

    @property
    def plugged(self) -> bool:
        """True while the pty pair exists."""
        return self._master is not None

    @property
    def tty_path(self) -> str:
        """The current slave device (``/dev/pts/N``); empty while unplugged."""
        return self._slave_path

    @property
    def path(self) -> str:
        """What the agent should open: the link when one is kept, else the slave device."""
        return str(self.link) if self.link is not None else self._slave_path

    def plug(self) -> None:
        """Create a fresh pty pair (raw mode), start reading it and point the link at it."""
        if self._master is not None:
            return
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation, before the agent ever opens it
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_path = os.ttyname(slave)
        self._generation += 1
        self._line_free_at = loop.time()
        loop.add_reader(master, self._readable)
        if self.link is not None:
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_path)
            tmp.replace(self.link)

    def unplug(self) -> None:
        """Close the pair: the agent's port fails; the link (if any) is removed. Safe to call twice."""
        master, slave = self._master, self._slave
        self._master = self._slave = None
        self._backlog.clear()
        self._generation += 1
        if master is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(master)
        if self._writer_armed:
            loop.remove_writer(master)
            self._writer_armed = False
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in (master, slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._slave_path = ""

    close = unplug

    def write(self, data: bytes) -> None:
        """Send ``data`` to the agent (paced at :attr:`baud` when set); dropped while unplugged."""
        if self._master is None or not data:
            return
        if self.baud is None:
            self._push(data, self._generation)
            return
        loop = asyncio.get_running_loop()
        start = max(loop.time(), self._line_free_at)
        self._line_free_at = start + len(data) * 10 / self.baud
        loop.call_at(self._line_free_at, self._push, data, self._generation)

    def _push(self, data: bytes, generation: int) -> None:
        if self._master is None or generation != self._generation:
            return
        if self._backlog:
            self._queue(data)
            return
        try:
            n = os.write(self._master, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        self.bytes_written += n
        if n < len(data):
            self._queue(data[n:])

    def _queue(self, data: bytes) -> None:
        room = MAX_BACKLOG - len(self._backlog)
        if len(data) > room:
            self.dropped_bytes += len(data) - room
            data = data[:room]
        self._backlog += data
        if not self._writer_armed and self._master is not None:
            asyncio.get_running_loop().add_writer(self._master, self._writable)
            self._writer_armed = True

    def _writable(self) -> None:
        if self._master is None:
            return
        try:
            n = os.write(self._master, self._backlog)
        except BlockingIOError:
            return
        except OSError:
            n = len(self._backlog)
        self.bytes_written += n
        del self._backlog[:n]
        if not self._backlog:
            asyncio.get_running_loop().remove_writer(self._master)
            self._writer_armed = False

    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO: no reader on the far end right now
        if data:
            self._on_data(data)
