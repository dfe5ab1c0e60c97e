"""An async UHF tag reader on a serial line: R2000 binary or ASCII lines, surviving unplugs and garbage.

:class:`TagReader` opens the port, (R2000) checks the reader answers, sets RF power and antenna, then
runs inventory rounds at the configured cadence. Every reply must arrive within ``reply_timeout_s``;
``silent_after`` consecutive timeouts mean a silent reader. A silent reader or a vanished port closes
the link; it is reopened with capped exponential backoff, re-resolving the configured path each time.
What happens is told to ``on_event`` (on the loop, never blocking) and counted in :attr:`TagReader.stats`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from drivers.errors import DeviceDisconnected, DeviceTimeout
from drivers.rfid import r2000
from drivers.rfid.ascii import LineParser
from drivers.rfid.gen2 import read_problem
from drivers.rfid.link import SerialLink

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    """How to reach and drive one reader (the lane's config maps onto this)."""

    port: str
    protocol: Literal["r2000", "ascii"] = "r2000"
    baud: int = 115200
    address: int = r2000.BROADCAST
    antennas: tuple[int, ...] = (1,)
    rf_power_dbm: int | None = 30
    inventory: Literal["real_time", "session"] = "real_time"
    session: int = 1
    target: Literal["A", "B"] = "A"
    repeat: int = 1
    cadence_s: float = 0.2
    reply_timeout_s: float = 1.0
    silent_after: int = 2
    idle_timeout_s: float | None = None  # ASCII only: no byte for this long = silent (None: never)
    ports: tuple[int, ...] | None = None  # ASCII only: antenna ports reads may name (None: any)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class TagSeen:
    """A tag read (``antenna``/``rssi_dbm`` ``None`` when an ASCII reader does not say)."""

    epc: str
    antenna: int | None
    rssi_dbm: float | None


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The reader answers (``port`` = the device the configured path resolved to)."""

    port: str
    detail: str


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The port is gone (``disconnected``) or the reader stopped answering (``silent``)."""

    kind: Literal["disconnected", "silent"]
    detail: str


@dataclass(frozen=True, slots=True)
class ReaderFault:
    """The reader reported an error code (``active``) or completed a clean round again (not ``active``)."""

    active: bool
    code: int | None
    detail: str


ReaderEvent = TagSeen | LinkUp | LinkDown | ReaderFault
OnEvent = Callable[[ReaderEvent], None]


class _Silent(DeviceTimeout):
    """No reply within the timeout, ``silent_after`` times in a row."""


class LogThrottle:
    """Log a warning for a kind of bad input at most once per ``interval`` s, saying how many were hidden."""

    def __init__(self, interval: float = 60.0, logger: logging.Logger | None = None) -> None:
        self._log = logger or log
        self._interval = interval
        self._last: dict[str, float] = {}
        self._hidden: Counter[str] = Counter()

    def warn(self, key: str, msg: str, *args: object) -> None:
        """Log ``msg % args`` unless a warning of kind ``key`` went out less than ``interval`` s ago."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._hidden[key] += 1
            return
        self._last[key] = now
        hidden = self._hidden.pop(key, 0)
        if hidden:
            self._log.warning(msg + " (%d similar since last report)", *args, hidden)
        else:
            self._log.warning(msg, *args)


class TagReader:
    """Reads one reader forever (until cancelled); see the module docstring."""

    def __init__(self, settings: ReaderSettings, on_event: OnEvent, name: str = "rfid") -> None:
        if settings.protocol == "r2000":
            bad = [a for a in settings.antennas if not 1 <= a <= 4]
            if bad or not settings.antennas:
                raise ValueError(f"antennas {settings.antennas} must be 1-4 and not empty")
        self.settings = settings
        self.name = name
        self.stats: Counter[str] = Counter()
        self.port_in_use: str | None = None
        self.up = False
        self._emit = on_event
        self._throttle = LogThrottle()
        self._link: SerialLink | None = None
        self._parser = r2000.FrameParser()
        self._lines = LineParser()
        self._waiter: tuple[Callable[[r2000.Reply], bool], asyncio.Future[r2000.Reply]] | None = None
        self._fault_code: int | None = None
        self._last_rx = 0.0
        self._ever_up = False

    @property
    def ever_answered(self) -> bool:
        """True once the reader has answered at least once since this object was made."""
        return self._ever_up

    async def run(self) -> None:
        """Connect, read, recover, forever; returns only by cancellation."""
        attempt = 0
        down_kind: str | None = None
        try:
            while True:
                try:
                    await self._session()
                except (DeviceDisconnected, DeviceTimeout) as exc:
                    silent = isinstance(exc, _Silent)
                    kind: Literal["disconnected", "silent"] = "silent" if silent else "disconnected"
                    if self.up:
                        attempt = 0
                    self.up = False
                    if kind != down_kind or attempt == 0:
                        log.warning("%s: reader %s: %s", self.name, kind, exc)
                    down_kind = kind
                    self._emit(LinkDown(kind, str(exc)))
                finally:
                    await self._close_link()
                delay = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2**attempt)
                attempt += 1
                self.stats["reconnects"] += 1
                await asyncio.sleep(delay)
        finally:
            await self._close_link()

    async def _close_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        self.port_in_use = None

    async def _session(self) -> None:
        s = self.settings
        self._parser = r2000.FrameParser()
        self._lines = LineParser()
        self._link = await SerialLink.open(s.port, s.baud, self._on_bytes)
        self.port_in_use = self._link.name
        self._last_rx = asyncio.get_running_loop().time()
        if s.protocol == "ascii":
            await self._ascii_session(self._link)
        else:
            await self._r2000_session(self._link)

    # ---- incoming bytes ------------------------------------------------------------------------

    def _on_bytes(self, data: bytes) -> None:
        self._last_rx = asyncio.get_running_loop().time()
        if self.settings.protocol == "ascii":
            self._on_ascii(data)
            return
        p = self._parser
        junk, bad = p.junk_bytes, p.checksum_errors
        frames = p.feed(data)
        self._count_bad(p.junk_bytes - junk, p.checksum_errors - bad, data)
        self.stats["frames"] += len(frames)
        for frame in frames:
            if self.settings.address != r2000.BROADCAST and frame.addr != self.settings.address:
                self.stats["foreign_frames"] += 1
                continue
            self._on_reply(r2000.decode_reply(frame))

    def _count_bad(self, junk: int, bad: int, data: bytes) -> None:
        if junk:
            self.stats["junk_bytes"] += junk
            self._throttle.warn("junk", "%s: %d junk bytes on %s, in chunk %s", self.name, junk,
                                self.port_in_use, data[:48].hex(" "))
        if bad:
            self.stats["checksum_errors"] += bad
            self._throttle.warn("checksum", "%s: %d frames with a bad checksum on %s, in chunk %s", self.name,
                                bad, self.port_in_use, data[:48].hex(" "))

    def _on_reply(self, reply: r2000.Reply) -> None:
        if isinstance(reply, r2000.TagReport):
            self._tag(TagSeen(reply.epc, reply.antenna, float(reply.rssi_dbm)), self.settings.antennas)
        elif isinstance(reply, r2000.Malformed):
            self.stats["malformed"] += 1
            self._throttle.warn("malformed", "%s: malformed reply to 0x%02X on %s: %s (data %s)", self.name,
                                reply.cmd, self.port_in_use, reply.reason, reply.data.hex(" "))
        waiter = self._waiter
        if waiter is not None and not waiter[1].done() and waiter[0](reply):
            waiter[1].set_result(reply)

    def _on_ascii(self, data: bytes) -> None:
        p = self._lines
        junk, bad = p.junk_bytes, p.bad_lines
        tags = p.feed(data)
        if p.junk_bytes - junk:
            self.stats["junk_bytes"] += p.junk_bytes - junk
        if p.bad_lines - bad:
            self.stats["bad_lines"] += p.bad_lines - bad
            self._throttle.warn("bad_line", "%s: bad line on %s: %s (chunk %r)", self.name, self.port_in_use,
                                p.last_error, data[:64])
        self.stats["frames"] += len(tags)
        for tag in tags:
            self._tag(TagSeen(tag.epc, tag.antenna, tag.rssi_dbm), self.settings.ports)

    def _tag(self, seen: TagSeen, ports: tuple[int, ...] | None) -> None:
        """Hand on a read, unless no tag and no reader could have produced it (counted ``bad_reads``)."""
        problem = read_problem(seen.epc, seen.antenna, seen.rssi_dbm, antennas=ports)
        if problem is not None:
            self.stats["bad_reads"] += 1
            self._throttle.warn("bad_read", "%s: impossible read dropped on %s: %s", self.name,
                                self.port_in_use, problem)
            return
        self.stats["reads"] += 1
        self._emit(seen)

    # ---- R2000 conversation --------------------------------------------------------------------

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
            done, _ = await asyncio.wait(waits, timeout=self.settings.reply_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiter = None
            if not fut.done():
                fut.cancel()
        if link.lost.done():
            raise link.lost.result()
        if fut in done:
            return fut.result()
        self.stats["timeouts"] += 1
        if self._parser.pending:
            self.stats["junk_bytes"] += self._parser.pending
            self._parser.discard_partial()
        return None

    async def _ask(self, link: SerialLink, frame: bytes, want: Callable[[r2000.Reply], bool],
                   what: str) -> r2000.Reply:
        """:meth:`_request`, retried up to ``silent_after`` times; then the reader is silent."""
        for _ in range(max(1, self.settings.silent_after)):
            reply = await self._request(link, frame, want)
            if reply is not None:
                return reply
        raise _Silent(f"no reply to {what} from {link.name} within {self.settings.reply_timeout_s:g} s, "
                      f"{max(1, self.settings.silent_after)} times")

    async def _r2000_session(self, link: SerialLink) -> None:
        s = self.settings
        addr = s.address
        version = await self._ask(link, r2000.get_firmware_version(addr),
                                  _answers(r2000.Cmd.GET_FIRMWARE_VERSION), "firmware version request")
        detail = (f"firmware {version.major}.{version.minor}" if isinstance(version, r2000.FirmwareVersion)
                  else "reader answers")
        if s.rf_power_dbm is not None:
            self._check_status(await self._ask(link, r2000.set_rf_power(addr, s.rf_power_dbm),
                                               _answers(r2000.Cmd.SET_RF_POWER), "set RF power"))
        self._link_up(link, detail)
        cycle = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            antenna = s.antennas[cycle % len(s.antennas)]
            cycle += 1
            if len(s.antennas) > 1 or cycle == 1:
                self._check_status(await self._ask(link, r2000.set_work_antenna(addr, antenna),
                                                   _answers(r2000.Cmd.SET_WORK_ANTENNA), "set work antenna"))
            if s.inventory == "session":
                cmd = r2000.session_inventory(addr, s.session, s.target, s.repeat)
            else:
                cmd = r2000.real_time_inventory(addr, s.repeat)
            end = await self._ask(link, cmd, _round_over, "inventory")
            if isinstance(end, r2000.RoundEnd) or (isinstance(end, r2000.StatusReply)
                                                   and end.code == r2000.Status.NO_TAG):
                self._clear_fault()
            else:
                self._check_status(end)
            wait = started + s.cadence_s - loop.time()
            if wait > 0:
                await asyncio.wait({link.lost}, timeout=wait)
                if link.lost.done():
                    raise link.lost.result()

    def _link_up(self, link: SerialLink, detail: str) -> None:
        self.up = True
        self._ever_up = True
        log.info("%s: reader up on %s (%s)", self.name, link.name, detail)
        self._emit(LinkUp(link.name, detail))

    def _check_status(self, reply: r2000.Reply) -> None:
        if not isinstance(reply, r2000.StatusReply) or reply.ok:
            return
        self.stats["reader_errors"] += 1
        detail = f"reader error {reply.name} (0x{reply.code:02X}) answering 0x{reply.cmd:02X}"
        self._throttle.warn("reader_error", "%s: %s on %s", self.name, detail, self.port_in_use)
        if self._fault_code != reply.code:
            self._fault_code = reply.code
            self._emit(ReaderFault(True, reply.code, detail))

    def _clear_fault(self) -> None:
        if self._fault_code is not None:
            self._fault_code = None
            self._emit(ReaderFault(False, None, "inventory round completed"))

    # ---- ASCII ---------------------------------------------------------------------------------

    async def _ascii_session(self, link: SerialLink) -> None:
        s = self.settings
        self._link_up(link, "ASCII line reader")
        if s.idle_timeout_s is None:
            raise await link.lost
        loop = asyncio.get_running_loop()
        while True:
            left = self._last_rx + s.idle_timeout_s - loop.time()
            if left <= 0:
                self.stats["timeouts"] += 1
                raise _Silent(f"nothing from {link.name} for {s.idle_timeout_s:g} s")
            await asyncio.wait({link.lost}, timeout=left)
            if link.lost.done():
                raise link.lost.result()


def _answers(cmd: int) -> Callable[[r2000.Reply], bool]:
    def want(reply: r2000.Reply) -> bool:
        return not isinstance(reply, r2000.TagReport | r2000.Malformed) and reply.cmd == cmd

    return want


def _round_over(reply: r2000.Reply) -> bool:
    return isinstance(reply, r2000.RoundEnd | r2000.StatusReply) and reply.cmd in r2000.INVENTORY_CMDS
