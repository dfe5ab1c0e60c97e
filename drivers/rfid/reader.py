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
from typing import Literal, Protocol, cast

from drivers.backends import load_backend
from drivers.errors import DeviceDisconnected, DeviceTimeout
from drivers.rfid.gen2 import read_problem
from drivers.rfid.link import SerialLink

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    """How to reach and drive one reader (the lane's config maps onto this)."""

    port: str
    protocol: Literal["r2000", "ascii"] = "r2000"
    baud: int = 115200
    address: int = 0xFF  # R2000 only: the broadcast address
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


class Silent(DeviceTimeout):
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


class ReaderProtocol(Protocol):
    """One reader protocol (a backend of :data:`PROTOCOLS`): how bytes are parsed and what is said."""

    def reset(self) -> None:
        """Forget partial input (a new link)."""
        ...

    def feed(self, data: bytes) -> None:
        """Bytes from the line (on the loop)."""
        ...

    async def converse(self, link: SerialLink) -> None:
        """Talk to the reader until the link is lost or it falls silent (raise, never return)."""
        ...


PROTOCOLS: dict[str, str] = {
    "r2000": "drivers.rfid.r2000_session:R2000Session",
    "ascii": "drivers.rfid.ascii_session:AsciiSession",
}
"""Reader protocol (``settings.protocol``) -> ``module:Class``, imported when selected."""


def open_protocol(reader: TagReader) -> ReaderProtocol:
    """The protocol backend ``reader.settings.protocol`` names, bound to ``reader``."""
    cls = load_backend(PROTOCOLS, reader.settings.protocol, "RFID reader protocol")
    return cast(ReaderProtocol, cls(reader))


class TagReader:
    """Reads one reader forever (until cancelled); see the module docstring.

    The link's life (open, recover with backoff, close), the counters and the hand-off of reads are
    here; what is said on the line is the protocol backend's (:data:`PROTOCOLS`).
    """

    def __init__(self, settings: ReaderSettings, on_event: OnEvent, name: str = "rfid") -> None:
        self.settings = settings
        self.name = name
        self.stats: Counter[str] = Counter()
        self.port_in_use: str | None = None
        self.up = False
        self.emit = on_event
        self.throttle = LogThrottle()
        self.last_rx = 0.0
        self._link: SerialLink | None = None
        self._ever_up = False
        self._protocol = open_protocol(self)

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
                    silent = isinstance(exc, Silent)
                    kind: Literal["disconnected", "silent"] = "silent" if silent else "disconnected"
                    if self.up:
                        attempt = 0
                    self.up = False
                    if kind != down_kind or attempt == 0:
                        log.warning("%s: reader %s: %s", self.name, kind, exc)
                    down_kind = kind
                    self.emit(LinkDown(kind, str(exc)))
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
        self._protocol.reset()
        self._link = await SerialLink.open(s.port, s.baud, self._on_bytes)
        self.port_in_use = self._link.name
        self.last_rx = asyncio.get_running_loop().time()
        await self._protocol.converse(self._link)

    def _on_bytes(self, data: bytes) -> None:
        self.last_rx = asyncio.get_running_loop().time()
        self._protocol.feed(data)

    # ---- services for the protocol backends ------------------------------------------------------

    def count_bad(self, junk: int, bad: int, data: bytes, bad_kind: str = "checksum_errors") -> None:
        """Count junk bytes and bad frames (or lines), logging each kind at a bounded rate."""
        if junk:
            self.stats["junk_bytes"] += junk
            self.throttle.warn(
                "junk",
                "%s: %d junk bytes on %s, in chunk %s",
                self.name,
                junk,
                self.port_in_use,
                data[:48].hex(" "),
            )
        if bad:
            self.stats[bad_kind] += bad
            self.throttle.warn(
                bad_kind,
                "%s: %d bad %s on %s, in chunk %s",
                self.name,
                bad,
                "lines" if bad_kind == "bad_lines" else "checksums",
                self.port_in_use,
                data[:48].hex(" "),
            )

    def hand_on(self, seen: TagSeen, ports: tuple[int, ...] | None) -> None:
        """Hand on a read, unless no tag and no reader could have produced it (counted ``bad_reads``)."""
        problem = read_problem(seen.epc, seen.antenna, seen.rssi_dbm, antennas=ports)
        if problem is not None:
            self.stats["bad_reads"] += 1
            self.throttle.warn(
                "bad_read", "%s: impossible read dropped on %s: %s", self.name, self.port_in_use, problem
            )
            return
        self.stats["reads"] += 1
        self.emit(seen)

    def link_up(self, link: SerialLink, detail: str) -> None:
        """The reader answers on ``link``."""
        self.up = True
        self._ever_up = True
        log.info("%s: reader up on %s (%s)", self.name, link.name, detail)
        self.emit(LinkUp(link.name, detail))
