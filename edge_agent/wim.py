"""The weigh-in-motion controller as a lane event source (Modbus TCP or RTU).

Each poll reads the controller's status (fault and overflow bits, records pending, head sequence).
While records are pending, the head record is read, handed to the lane as a
:class:`~edge_agent.domain.WimRecord` (``mono`` = when it was read), and then acknowledged by writing
its sequence number to the ack register, which releases it from the controller's FIFO. The last
sequence handed over is remembered, so a record whose ack was lost is acknowledged again but not
handed over twice; records the controller buffered while the link was down are collected in order
once it is back.

Faults are :class:`~edge_agent.domain.DeviceFault` events: ``comms`` (no reply, CRC errors, exception
replies or a lost link, after ``fault_after`` failed polls) and ``controller_fault`` (the
controller's own fault bit); each is cleared by an ``active=False`` event once the cause is gone.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from drivers.modbus.poller import Conditions
from drivers.modbus.regmap import Point, Value, decode, encode_value, plan_reads
from drivers.modbus.wim_map import RECORD_ROLES, STATUS_ROLES, axle_roles
from edge_agent.clock import Clock
from edge_agent.config.sensors import ModbusWimConfig
from edge_agent.domain import WimRecord
from edge_agent.health import DeviceHealth, DeviceState
from edge_agent.polled import FaultReporter, supervised_link
from edge_agent.sources import Emit

log = logging.getLogger(__name__)

MAX_RECORDS_PER_POLL = 64
"""Upper bound on records drained in one poll, so a misbehaving controller cannot hold the loop."""


def _int(v: Value) -> int:
    return int(v) if isinstance(v, int | float | bool) and math.isfinite(float(v)) else 0


class WimSource(FaultReporter):
    """Polls a WIM controller and emits its vehicle records (an :class:`~edge_agent.sources.EventSource`)."""

    def __init__(self, cfg: ModbusWimConfig, clock: Clock, name: str = "wim") -> None:
        self.name = name
        self._cfg = cfg
        self._clock = clock
        self._health = DeviceHealth(name, "wim")
        self._points = cfg.registers.points()
        self._weights, self._spacings = axle_roles(cfg.registers.axle_weights.count)
        status = [self._points[r] for r in STATUS_ROLES]
        record = [self._points[r] for r in (*RECORD_ROLES, *self._weights, *self._spacings)]
        self._status, self._record = status, record
        self._status_plan = plan_reads(status, max_gap=cfg.max_gap)
        self._record_plan = plan_reads(record, max_gap=cfg.max_gap)
        self._ack: Point = self._points["ack"]
        self._link, self._sup = supervised_link(name, cfg, self._status_plan, clock, self._health.counters)
        self._conditions = Conditions()
        self._emit: Emit | None = None
        self._last_sequence: int | None = None
        self._lost_seen: int | None = None

    @property
    def status_plan(self) -> list[tuple[str, int, int]]:
        """The status reads as (table, address, count), for diagnostics."""
        return [(r.table.value, r.address, r.count) for r in self._status_plan]

    def health(self) -> DeviceHealth:
        """State, last error and counters (requests, timeouts, crc_errors, records, acks, ...)."""
        h = self._health
        if self._sup.down:
            h.state = DeviceState.DOWN
        elif self._sup.failures or self._conditions.active:
            h.state = DeviceState.DEGRADED
        elif self._sup.last_ok is not None:
            h.state = DeviceState.UP
        h.detail = (
            self._sup.last_error
            if self._sup.failures
            else "; ".join(d for _, d in self._conditions.active.values())
        )
        h.last_ok_mono = self._sup.last_ok
        return h

    async def run(self, emit: Emit) -> None:
        """Poll the controller until cancelled."""
        self._emit = emit
        await self._sup.run(self._poll, self._comms_down, self._comms_up)

    # -- one poll --------------------------------------------------------------------------
    async def _read_status(self) -> dict[str, Value]:
        image = await self._link.read_plan(self._status_plan, self._cfg.unit)
        st = decode(self._status, image)
        regs = self._cfg.registers
        flags = _int(st["status"])
        if flags >> regs.fault_bit & 1:
            detail = "WIM controller reports a fault"
            self._report(self._conditions.start("controller_fault", "controller_fault", detail))
        else:
            self._report(self._conditions.end("controller_fault", "controller fault cleared"))
        lost = _int(st["lost"])
        if self._lost_seen is not None and lost > self._lost_seen:
            self._health.counters["records_lost"] += lost - self._lost_seen
            log.error("%s: controller FIFO overflowed: %d record(s) lost", self.name, lost - self._lost_seen)
        self._lost_seen = lost
        return st

    async def _poll(self) -> None:
        st = await self._read_status()
        for _ in range(MAX_RECORDS_PER_POLL):
            if _int(st["pending"]) <= 0:
                return
            await self._take_head(_int(st["head_sequence"]))
            st = await self._read_status()

    async def _take_head(self, head: int) -> None:
        c = self._health.counters
        image = await self._link.read_plan(self._record_plan, self._cfg.unit)
        mono = self._clock.monotonic()
        rec = decode(self._record, image)
        seq = _int(rec["sequence"])
        if seq != head:  # the head moved between the two reads: read it again next time round
            c["head_races"] += 1
            return
        if seq == self._last_sequence:
            c["duplicates_suppressed"] += 1
        else:
            if self._last_sequence is not None and seq > self._last_sequence + 1:
                c["sequence_gaps"] += 1
                log.warning("%s: sequence jumped from %d to %d", self.name, self._last_sequence, seq)
            record = self._to_record(rec, seq, mono)
            self._last_sequence = seq
            if record is not None and self._emit is not None:
                c["records"] += 1
                self._emit(record)
        mask = (1 << (16 * self._ack.width)) - 1
        words = encode_value(self._ack, seq & mask)
        await self._link.write_registers(self._ack.address, words, self._cfg.unit)
        c["acks"] += 1

    def _to_record(self, rec: dict[str, Value], seq: int, mono: float) -> WimRecord | None:
        slots = len(self._weights)
        axles = _int(rec["axle_count"])
        numbers = [rec["speed"], rec["gross"], *(rec[n] for n in self._weights + self._spacings)]
        finite = all(isinstance(v, int | float) and math.isfinite(v) for v in numbers)
        if not finite or not 0 < axles <= slots:
            self._health.counters["bad_records"] += 1
            log.error(
                "%s: record %d is malformed (axle_count %d of %d slots, values %s): dropped",
                self.name,
                seq,
                axles,
                slots,
                numbers[:2],
            )
            return None
        t_s, t_ms = _int(rec["time_s"]), _int(rec["time_ms"])
        when = datetime.fromtimestamp(t_s + t_ms / 1000, UTC) if t_s > 0 else None
        return WimRecord(
            sequence=seq,
            # round away float32 and scaling artefacts (12.390000343 km/h, 10.950000000000001 m)
            speed_kmh=round(float(rec["speed"]), 2),
            axle_weights_kg=tuple(round(float(rec[n]), 1) for n in self._weights[:axles]),
            axle_spacings_m=tuple(round(float(rec[n]), 3) for n in self._spacings[:axles]),
            gross_kg=round(float(rec["gross"]), 1),
            flags=_int(rec["flags"]),
            mono=mono,
            controller_time=when,
        )
