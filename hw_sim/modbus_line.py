"""An RS-485 line made of two ptys: real serial file semantics, paced at a baud rate, with faults.

``PtyLine`` opens two pseudo-terminals and relays bytes between their master ends, the way a
null-modem cable (or socat ``pty,pty``) would. The agent opens :attr:`PtyLine.agent_path`, the
simulated device opens :attr:`PtyLine.device_path`; both are ordinary tty paths that pyserial (and so
pymodbus) opens like ``/dev/ttyUSB0``.

A pty moves bytes instantly, which would make RTU look infinitely fast; the relay therefore delivers
each chunk no sooner than the line could have carried it (11 bits a character at ``baud``), so the
poll rate the agent achieves over it is the one a real line would allow. Faults: :attr:`cut`
(nothing passes either way: a broken cable) and :attr:`corrupt_replies` (one bit of every reply
flipped: the agent sees CRC errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from types import TracebackType

from drivers.modbus.line import char_time


class PtyLine:
    """Two ptys joined by a paced relay; an async context manager (close is idempotent)."""

    def __init__(self, baud: int = 19200, *, paced: bool = True) -> None:
        self.baud = baud
        self.paced = paced
        self.cut = False
        self.corrupt_replies = False
        self.bytes_to_device = 0
        self.bytes_to_agent = 0
        self._fds: list[int] = []
        self._masters: tuple[int, int] = (-1, -1)
        self.agent_path = ""
        self.device_path = ""
        self._free_at = [0.0, 0.0]  # per direction: when the line is next idle (loop time)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handles: set[asyncio.TimerHandle] = set()

    async def __aenter__(self) -> PtyLine:
        self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        """Create both ptys and start relaying (on the running loop)."""
        self._loop = asyncio.get_running_loop()
        ma, sa = os.openpty()
        mb, sb = os.openpty()
        self._fds = [ma, sa, mb, sb]
        for fd in (sa, sb):
            tty.setraw(fd)  # no echo, no line discipline until pyserial configures the port
        for fd in (ma, mb):
            os.set_blocking(fd, False)
        self._masters = (ma, mb)
        self.agent_path = os.ttyname(sa)
        self.device_path = os.ttyname(sb)
        self._loop.add_reader(ma, self._relay, 0)
        self._loop.add_reader(mb, self._relay, 1)

    def close(self) -> None:
        """Stop relaying and close every fd; safe to call twice."""
        if self._loop is not None:
            for fd in self._masters:
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_reader(fd)
            self._loop = None
        for h in self._handles:
            h.cancel()
        self._handles.clear()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def _relay(self, direction: int) -> None:
        """Bytes arrived on master ``direction`` (0: from the agent, 1: from the device)."""
        src = self._masters[direction]
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO while nobody holds the slave end open
            return
        if not data or self.cut:
            return
        if direction == 1 and self.corrupt_replies:
            data = data[:-1] + bytes([data[-1] ^ 0x01])
        assert self._loop is not None
        now = self._loop.time()
        start = max(now, self._free_at[direction])
        done = start + (len(data) * char_time(self.baud) if self.paced else 0.0)
        self._free_at[direction] = done
        dst = self._masters[1 - direction]
        if done <= now:
            self._deliver(dst, data, direction)
        else:
            handle: asyncio.TimerHandle | None = None

            def fire() -> None:
                if handle is not None:
                    self._handles.discard(handle)
                self._deliver(dst, data, direction)

            handle = self._loop.call_at(done, fire)
            self._handles.add(handle)

    def _deliver(self, dst: int, data: bytes, direction: int) -> None:
        if self.cut:
            return
        with contextlib.suppress(OSError):
            os.write(dst, data)
        if direction == 0:
            self.bytes_to_device += len(data)
        else:
            self.bytes_to_agent += len(data)
