"""The lane's RFID reader as an :class:`~edge_agent.sources.EventSource`.

Turns what :class:`drivers.rfid.reader.TagReader` hears into lane events: a :class:`TagRead` per tag
report (``mono`` = lane time at reception) and a :class:`DeviceFault` when the reader goes down
(``disconnected``, ``silent``, ``reader_error``) or comes back. A reader that has never answered is
down from the start, so passages refer for a missing credential rather than release on nothing.

Impossible reads never become lane events: the driver drops what no tag or reader could produce
(:mod:`drivers.rfid.gen2`: RSSI, EPC words, antenna port), and this source drops an EPC whose length
its kind never has (``devices.rfid.tags.epc_bits``). Both count in the health counter ``bad_reads``
and are logged at most once a minute per kind.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from drivers.rfid.reader import (
    LinkDown,
    LinkUp,
    LogThrottle,
    ReaderEvent,
    ReaderFault,
    ReaderSettings,
    TagReader,
    TagSeen,
)
from edge_agent.clock import Clock, stop_task
from edge_agent.config.rfid import AsciiRfidConfig, R2000RfidConfig, RfidConfig
from edge_agent.domain import DeviceFault, TagRead
from edge_agent.errors import ConfigError
from edge_agent.health import DeviceHealth, DeviceState
from edge_agent.sources import Emit
from edge_agent.tags import length_problem

log = logging.getLogger(__name__)

COUNTERS = (
    "frames",
    "checksum_errors",
    "junk_bytes",
    "timeouts",
    "reconnects",
    "reader_errors",
    "reads",
    "bad_reads",
)


def reader_settings(cfg: RfidConfig) -> ReaderSettings:
    """Map the lane's RFID config onto the driver's settings.

    Raises ``ConfigError`` for a backend without a reader.
    """
    if isinstance(cfg, R2000RfidConfig):
        return ReaderSettings(
            port=cfg.port,
            protocol="r2000",
            baud=cfg.baud,
            address=cfg.address,
            antennas=cfg.antennas,
            rf_power_dbm=cfg.rf_power_dbm,
            inventory=cfg.inventory,
            session=cfg.session,
            target=cfg.target,
            repeat=cfg.repeat,
            cadence_s=cfg.cadence_ms / 1000,
            reply_timeout_s=cfg.reply_timeout_ms / 1000,
            silent_after=cfg.silent_after,
            backoff_initial_s=cfg.backoff_initial_ms / 1000,
            backoff_max_s=cfg.backoff_max_s,
        )
    if isinstance(cfg, AsciiRfidConfig):
        return ReaderSettings(
            port=cfg.port,
            protocol="ascii",
            baud=cfg.baud,
            idle_timeout_s=None if cfg.idle_timeout_ms is None else cfg.idle_timeout_ms / 1000,
            ports=cfg.antennas,
            backoff_initial_s=cfg.backoff_initial_ms / 1000,
            backoff_max_s=cfg.backoff_max_s,
        )
    raise ConfigError(
        f'rfid backend {cfg.backend!r} has no reader: use backend = "r2000" or "ascii" '
        "(the simulator is hw_sim.rfid on a pty)"
    )


class RfidSource:
    """The RFID reader feeding the lane (implements :class:`edge_agent.sources.EventSource`)."""

    def __init__(self, cfg: RfidConfig, clock: Clock, name: str = "rfid") -> None:
        self.name = name
        self._cfg = cfg
        self._clock = clock
        self._emit: Emit | None = None
        self._reader = TagReader(reader_settings(cfg), self._on_event, name=name)
        self._health = DeviceHealth(name=name, kind="rfid")
        self._fault: str | None = None  # active link fault kind
        self._reader_error: str | None = None  # active reader error detail
        self._task: asyncio.Task[object] | None = None
        self._bad_reads = 0  # reads of a length their kind never has (the driver counts the rest)
        self._throttle = LogThrottle(logger=log)
        if isinstance(cfg, AsciiRfidConfig):
            self._default_antenna, self._default_rssi = cfg.default_antenna, cfg.default_rssi_dbm
        else:
            self._default_antenna, self._default_rssi = 1, -50.0

    @property
    def reader(self) -> TagReader:
        """The driver underneath (for diagnostics)."""
        return self._reader

    async def run(self, emit: Emit) -> None:
        """Read tags until cancelled, emitting :class:`TagRead` and :class:`DeviceFault` events."""
        self._emit = emit
        self._task = asyncio.current_task()
        try:
            await self._reader.run()
        finally:
            self._emit = None

    async def __aenter__(self) -> RfidSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop a running :meth:`run` (its port closes); safe to call twice."""
        task, self._task = self._task, None
        await stop_task(task)

    def health(self) -> DeviceHealth:
        """State (up / degraded / down / starting), last problem, counters."""
        h = self._health
        counters = Counter({key: 0 for key in COUNTERS})
        counters.update(self._reader.stats)
        counters["bad_reads"] += self._bad_reads
        return DeviceHealth(h.name, h.kind, h.state, h.detail, h.last_ok_mono, counters)

    # ---- driver events -> lane events ----------------------------------------------------------

    def _on_event(self, ev: ReaderEvent) -> None:
        now = self._clock.monotonic()
        if isinstance(ev, TagSeen):
            problem = length_problem(ev.epc, self._cfg.tags)
            if problem is not None:
                self._bad_reads += 1
                self._throttle.warn(
                    "bad_read", "%s: impossible read of %s dropped: %s", self.name, ev.epc[:64], problem
                )
                return
            self._health.last_ok_mono = now
            self._send(
                TagRead(
                    epc=ev.epc,
                    antenna=ev.antenna if ev.antenna is not None else self._default_antenna,
                    rssi_dbm=ev.rssi_dbm if ev.rssi_dbm is not None else self._default_rssi,
                    mono=now,
                    reader=self.name,
                )
            )
        elif isinstance(ev, LinkUp):
            self._health.last_ok_mono = now
            if self._fault is not None:
                back = f"reader back on {ev.port} ({ev.detail})"
                self._send(DeviceFault(self.name, self._fault, False, back, now))
                self._fault = None
            self._set_state()
            if self._reader_error is None:
                self._health.detail = f"up on {ev.port} ({ev.detail})"
        elif isinstance(ev, LinkDown):
            if self._fault != ev.kind:
                if self._fault is not None:
                    self._send(DeviceFault(self.name, self._fault, False, "superseded", now))
                self._fault = ev.kind
                self._send(DeviceFault(self.name, ev.kind, True, ev.detail, now))
            self._health.detail = ev.detail
            self._set_state()
        elif isinstance(ev, ReaderFault):
            if ev.active:
                self._reader_error = ev.detail
                self._send(DeviceFault(self.name, "reader_error", True, ev.detail, now))
                self._health.detail = ev.detail
            elif self._reader_error is not None:
                self._reader_error = None
                self._send(DeviceFault(self.name, "reader_error", False, ev.detail, now))
            self._set_state()

    def _set_state(self) -> None:
        if self._fault is not None:
            self._health.state = DeviceState.DOWN
        elif self._reader_error is not None:
            self._health.state = DeviceState.DEGRADED
        else:
            self._health.state = DeviceState.UP

    def _send(self, event: TagRead | DeviceFault) -> None:
        if self._emit is not None:
            self._emit(event)
