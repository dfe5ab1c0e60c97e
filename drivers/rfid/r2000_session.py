"""The R2000 protocol backend of :class:`drivers.rfid.reader.TagReader`: ask, wait, inventory.

Checks the reader answers (firmware version), sets RF power, then runs inventory rounds on each
configured antenna at the cadence. Every reply must arrive within ``reply_timeout_s``;
``silent_after`` consecutive timeouts mean a silent reader. Reader error codes raise a
:class:`~drivers.rfid.reader.ReaderFault`, cleared by the next clean round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drivers.rfid import r2000
from drivers.rfid.link import SerialLink
from drivers.rfid.reader import ReaderFault, Silent, TagSeen

if TYPE_CHECKING:
    from drivers.rfid.reader import TagReader


class R2000Session:
    """The R2000 binary protocol for one :class:`TagReader`."""

    def __init__(self, reader: TagReader) -> None:
        s = reader.settings
        bad = [a for a in s.antennas if not 1 <= a <= 4]
        if bad or not s.antennas:
            raise ValueError(f"antennas {s.antennas} must be 1-4 and not empty")
        self.reader = reader
        self._parser = r2000.FrameParser()
        self._waiter: tuple[Callable[[r2000.Reply], bool], asyncio.Future[r2000.Reply]] | None = None
        self._fault_code: int | None = None

    def reset(self) -> None:
        """A new link: no partial frame."""
        self._parser = r2000.FrameParser()

    def feed(self, data: bytes) -> None:
        """Frame the bytes, count garbage, hand replies on."""
        reader, p = self.reader, self._parser
        junk, bad = p.junk_bytes, p.checksum_errors
        frames = p.feed(data)
        reader.count_bad(p.junk_bytes - junk, p.checksum_errors - bad, data)
        reader.stats["frames"] += len(frames)
        for frame in frames:
            if reader.settings.address != r2000.BROADCAST and frame.addr != reader.settings.address:
                reader.stats["foreign_frames"] += 1
                continue
            self._on_reply(r2000.decode_reply(frame))

    def _on_reply(self, reply: r2000.Reply) -> None:
        reader = self.reader
        if isinstance(reply, r2000.TagReport):
            reader.hand_on(TagSeen(reply.epc, reply.antenna, float(reply.rssi_dbm)), reader.settings.antennas)
        elif isinstance(reply, r2000.Malformed):
            reader.stats["malformed"] += 1
            reader.throttle.warn(
                "malformed",
                "%s: malformed reply to 0x%02X on %s: %s (data %s)",
                reader.name,
                reply.cmd,
                reader.port_in_use,
                reply.reason,
                reply.data.hex(" "),
            )
        waiter = self._waiter
        if waiter is not None and not waiter[1].done() and waiter[0](reply):
            waiter[1].set_result(reply)

    async def _request(
        self, link: SerialLink, frame: bytes, want: Callable[[r2000.Reply], bool]
    ) -> r2000.Reply | None:
        """Send ``frame`` and wait for the first reply ``want`` accepts: ``None`` on timeout."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[r2000.Reply] = loop.create_future()
        self._waiter = (want, fut)
        try:
            if not link.write(frame):
                raise await link.lost
            waits: set[asyncio.Future[Any]] = {fut, link.lost}
            done, _ = await asyncio.wait(
                waits, timeout=self.reader.settings.reply_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._waiter = None
            if not fut.done():
                fut.cancel()
        if link.lost.done():
            raise link.lost.result()
        if fut in done:
            return fut.result()
        self.reader.stats["timeouts"] += 1
        if self._parser.pending:
            self.reader.stats["junk_bytes"] += self._parser.pending
            self._parser.discard_partial()
        return None

    async def _ask(
        self, link: SerialLink, frame: bytes, want: Callable[[r2000.Reply], bool], what: str
    ) -> r2000.Reply:
        """:meth:`_request`, retried up to ``silent_after`` times; then the reader is silent."""
        s = self.reader.settings
        for _ in range(max(1, s.silent_after)):
            reply = await self._request(link, frame, want)
            if reply is not None:
                return reply
        raise Silent(
            f"no reply to {what} from {link.name} within {s.reply_timeout_s:g} s, "
            f"{max(1, s.silent_after)} times"
        )

    async def converse(self, link: SerialLink) -> None:
        """Identify the reader, set RF power, then inventory every antenna in turn, forever."""
        s = self.reader.settings
        addr = s.address
        version = await self._ask(
            link,
            r2000.get_firmware_version(addr),
            _answers(r2000.Cmd.GET_FIRMWARE_VERSION),
            "firmware version request",
        )
        detail = (
            f"firmware {version.major}.{version.minor}"
            if isinstance(version, r2000.FirmwareVersion)
            else "reader answers"
        )
        if s.rf_power_dbm is not None:
            self._check_status(
                await self._ask(
                    link,
                    r2000.set_rf_power(addr, s.rf_power_dbm),
                    _answers(r2000.Cmd.SET_RF_POWER),
                    "set RF power",
                )
            )
        self.reader.link_up(link, detail)
        cycle = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            antenna = s.antennas[cycle % len(s.antennas)]
            cycle += 1
            if len(s.antennas) > 1 or cycle == 1:
                self._check_status(
                    await self._ask(
                        link,
                        r2000.set_work_antenna(addr, antenna),
                        _answers(r2000.Cmd.SET_WORK_ANTENNA),
                        "set work antenna",
                    )
                )
            if s.inventory == "session":
                cmd = r2000.session_inventory(addr, s.session, s.target, s.repeat)
            else:
                cmd = r2000.real_time_inventory(addr, s.repeat)
            end = await self._ask(link, cmd, _round_over, "inventory")
            if isinstance(end, r2000.RoundEnd) or (
                isinstance(end, r2000.StatusReply) and end.code == r2000.Status.NO_TAG
            ):
                self._clear_fault()
            else:
                self._check_status(end)
            wait = started + s.cadence_s - loop.time()
            if wait > 0:
                await asyncio.wait({link.lost}, timeout=wait)
                if link.lost.done():
                    raise link.lost.result()

    def _check_status(self, reply: r2000.Reply) -> None:
        if not isinstance(reply, r2000.StatusReply) or reply.ok:
            return
        reader = self.reader
        reader.stats["reader_errors"] += 1
        detail = f"reader error {reply.name} (0x{reply.code:02X}) answering 0x{reply.cmd:02X}"
        reader.throttle.warn("reader_error", "%s: %s on %s", reader.name, detail, reader.port_in_use)
        if self._fault_code != reply.code:
            self._fault_code = reply.code
            reader.emit(ReaderFault(True, reply.code, detail))

    def _clear_fault(self) -> None:
        if self._fault_code is not None:
            self._fault_code = None
            self.reader.emit(ReaderFault(False, None, "inventory round completed"))


def _answers(cmd: int) -> Callable[[r2000.Reply], bool]:
    def want(reply: r2000.Reply) -> bool:
        return not isinstance(reply, r2000.TagReport | r2000.Malformed) and reply.cmd == cmd

    return want


def _round_over(reply: r2000.Reply) -> bool:
    return isinstance(reply, r2000.RoundEnd | r2000.StatusReply) and reply.cmd in r2000.INVENTORY_CMDS
