"""A simulated UHF RFID reader on a real pseudo-terminal, speaking R2000 frames or ASCII lines.

The agent opens :attr:`SimulatedRfidReader.port` as it would a USB-serial reader. In ``r2000`` mode the
simulator answers commands (firmware version, RF power, work antenna, real-time and session
inventory) with the real bytes: one tag report per tag in its field on the selected antenna, then an
end-of-round frame, or error 0x36 when no tag answers. In ``ascii`` mode it streams
``EPC,antenna,rssi`` lines for the tags in its field every ``ascii_interval_s``.

Fault injection: :meth:`unplug` / :meth:`replug`, :meth:`inject_junk`, :attr:`split_frames`,
:meth:`corrupt_checksums`, :attr:`reply_delay_s`, :attr:`silent`, :meth:`fail_inventory`.
Everything the agent sent is kept in :attr:`commands`.

    async with SimulatedRfidReader(protocol="r2000", link_path=tmp / "rfid") as sim:
        sim.set_tags([FieldTag("30...", antenna=1, rssi_dbm=-50)])
        ... open sim.port ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Literal

from drivers.rfid import r2000
from drivers.rfid.ascii import encode_line
from hw_sim.pty import PtyPort
from hw_sim.world import FieldTag

Cmd = r2000.Cmd


class SimulatedRfidReader:
    """A wire-level reader simulator (implements :class:`hw_sim.world.TagField`)."""

    def __init__(
        self,
        protocol: Literal["r2000", "ascii"] = "r2000",
        link_path: Path | str | None = None,
        *,
        address: int = 0x01,
        firmware: tuple[int, int] = (1, 9),
        connected_antennas: tuple[int, ...] = (1, 2, 3, 4),
        baud: int | None = None,
        ascii_interval_s: float = 0.1,
    ) -> None:
        self.protocol = protocol
        self.address = address
        self.firmware = firmware
        self.connected_antennas = connected_antennas
        self.ascii_interval_s = ascii_interval_s
        self.pty = PtyPort(self._on_data, link=link_path, baud=baud)
        self.commands: list[r2000.Frame] = []
        self.stats: Counter[str] = Counter()
        self.work_antenna = 1
        self.rf_power_dbm: int | None = None
        # fault knobs
        self.silent = False
        self.split_frames = False
        self.reply_delay_s = 0.0
        self._corrupt_next = 0
        self._inventory_error: int | None = None
        self._inventory_error_left: int | None = None
        self._tags: list[FieldTag] = []
        self._parser = r2000.FrameParser()
        self._ascii_task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.TimerHandle] = set()
        self._closed = False

    async def __aenter__(self) -> SimulatedRfidReader:
        self.pty.plug()
        if self.protocol == "ascii":
            self._ascii_task = asyncio.create_task(self._stream_lines(), name="sim-rfid-ascii")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop and unplug; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        task, self._ascii_task = self._ascii_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._cancel_pending()
        self.pty.unplug()

    @property
    def port(self) -> str:
        """The path the agent opens (the link when one was asked for, else the current pty)."""
        return self.pty.path

    @property
    def tty_path(self) -> str:
        """The current ``/dev/pts/N`` behind the port."""
        return self.pty.tty_path

    # ---- the world ------------------------------------------------------------------------------

    def set_tags(self, tags: list[FieldTag]) -> None:
        """Replace the tags in the reader's field."""
        self._tags = list(tags)

    # ---- faults ---------------------------------------------------------------------------------

    def unplug(self) -> None:
        """Pull the cable: the pty pair closes (and the link disappears)."""
        self._cancel_pending()
        self._parser = r2000.FrameParser()
        self.pty.unplug()

    def replug(self) -> None:
        """Plug back in: a new pty pair (a new ``/dev/pts/N``); the link is re-pointed."""
        self.pty.plug()

    def inject_junk(self, data: bytes) -> None:
        """Write ``data`` onto the line now, between frames."""
        self.pty.write(data)

    def corrupt_checksums(self, frames: int) -> None:
        """Send the next ``frames`` frames with a wrong check byte."""
        self._corrupt_next += frames

    def fail_inventory(self, code: int | None, times: int | None = None) -> None:
        """Answer inventory commands with error ``code`` (``times`` times, or until cleared with ``None``)."""
        self._inventory_error = code
        self._inventory_error_left = times

    # ---- R2000 side -----------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        self.stats["bytes_received"] += len(data)
        if self.protocol != "r2000":
            return
        for frame in self._parser.feed(data):
            self.commands.append(frame)
            if self.silent or frame.addr not in (r2000.BROADCAST, self.address):
                continue
            replies = self._answer(frame)
            if replies:
                self._send(replies)

    def _answer(self, f: r2000.Frame) -> list[bytes]:
        a = self.address
        if f.cmd == Cmd.GET_FIRMWARE_VERSION:
            return [r2000.encode_firmware_version(a, *self.firmware)]
        if f.cmd == Cmd.SET_RF_POWER and f.data:
            self.rf_power_dbm = f.data[0]
            return [r2000.encode_status(a, f.cmd, r2000.Status.SUCCESS)]
        if f.cmd == Cmd.SET_WORK_ANTENNA and len(f.data) == 1:
            antenna = f.data[0] + 1
            if antenna not in self.connected_antennas:
                return [r2000.encode_status(a, f.cmd, r2000.Status.ANTENNA_MISSING)]
            self.work_antenna = antenna
            return [r2000.encode_status(a, f.cmd, r2000.Status.SUCCESS)]
        if f.cmd in r2000.INVENTORY_CMDS:
            return self._inventory(f)
        if f.cmd == Cmd.RESET:
            return []  # a real reader reboots silently
        return [r2000.encode_status(a, f.cmd, r2000.Status.FAIL)]

    def _inventory(self, f: r2000.Frame) -> list[bytes]:
        a = self.address
        if self._inventory_error is not None:
            code = self._inventory_error
            if self._inventory_error_left is not None:
                self._inventory_error_left -= 1
                if self._inventory_error_left <= 0:
                    self._inventory_error = self._inventory_error_left = None
            return [r2000.encode_status(a, f.cmd, code)]
        repeat = max(1, f.data[-1]) if f.data else 1
        here = [t for t in self._tags if t.antenna == self.work_antenna]
        if not here:
            return [r2000.encode_status(a, f.cmd, r2000.Status.NO_TAG)]
        out = [
            r2000.encode_tag_report(a, f.cmd, t.antenna, t.epc, t.rssi_dbm)
            for _ in range(repeat)
            for t in here
        ]
        self.stats["tag_reports"] += len(out)
        return [*out, r2000.encode_round_end(a, f.cmd, self.work_antenna, len(out), len(out))]

    def _send(self, frames: list[bytes]) -> None:
        out: list[bytes] = []
        for frame in frames:
            if self._corrupt_next > 0 and self.protocol == "r2000":
                self._corrupt_next -= 1
                frame = frame[:-1] + bytes(((frame[-1] + 1) & 0xFF,))
            out.append(frame)
        self.stats["frames_sent"] += len(out)
        if self.split_frames:
            chunks = [piece for frame in out for piece in _halves(frame)]
        else:
            chunks = [b"".join(out)]
        self._later(self.reply_delay_s, chunks)

    def _later(self, delay: float, chunks: list[bytes]) -> None:
        if delay <= 0 and len(chunks) == 1:
            self.pty.write(chunks[0])
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._pending = {h for h in self._pending if h.when() > now}
        step = 0.002 if len(chunks) > 1 else 0.0
        for i, chunk in enumerate(chunks):
            self._pending.add(loop.call_later(delay + i * step, self.pty.write, chunk))

    def _cancel_pending(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()

    # ---- ASCII side -----------------------------------------------------------------------------

    async def _stream_lines(self) -> None:
        while True:
            await asyncio.sleep(self.ascii_interval_s)
            if self.silent or not self.pty.plugged:
                continue
            lines = [encode_line(t.epc, t.antenna, round(t.rssi_dbm, 1)) for t in self._tags]
            if lines:
                self.stats["tag_reports"] += len(lines)
                self._send(lines)


def _halves(frame: bytes) -> list[bytes]:
    """Split a frame in three uneven pieces (header alone, then the body in two)."""
    if len(frame) < 4:
        return [frame]
    mid = 2 + (len(frame) - 2) // 2
    return [frame[:1], frame[1:mid], frame[mid:]]
