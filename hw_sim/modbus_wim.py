"""A simulated weigh-in-motion controller: a real pymodbus server with a FIFO of vehicle records.

Implements :class:`hw_sim.world.WimScale`. Each :meth:`WimController.record` appends a record
(sequence numbers from 1) to a FIFO of ``fifo_size``; the head record is exposed at the register
layout of :mod:`drivers.modbus.wim_map` (or the ``points`` given), and leaves the FIFO only when the
agent writes its sequence number to ``ack``. Records made while the agent is away wait in the FIFO;
past ``fifo_size`` the oldest is dropped, ``lost`` counts it and the overflow bit is set.

Fault switches (no reply, exception replies, slow replies, dropped connections, CRC corruption on
RTU) are on :attr:`WimController.server`; :meth:`set_fault` raises the controller's own fault bit;
:attr:`WimController.lose_ack_replies` loses the replies to that many accepted acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

from pymodbus.simulator import DataType, SimData

from drivers.modbus.regmap import Point, Value, decode_value, encode_value
from drivers.modbus.wim_map import FAULT_BIT, OVERFLOW_BIT, axle_roles, default_wim_points
from hw_sim.modbus_server import SimModbusServer
from hw_sim.world import VehicleWeighing

AXLES_TRUNCATED_FLAG = 0x8000
"""Record flag set when a vehicle had more axles than the map has points for."""


@dataclass(frozen=True, slots=True)
class SimWimRecord:
    """One record as the controller made it."""

    sequence: int
    weighing: VehicleWeighing
    wall_time: float


class WimController:
    """The WIM controller; an async context manager exposing :attr:`url`."""

    def __init__(
        self,
        *,
        transport: str = "tcp",
        port: int = 0,
        unit: int = 1,
        baud: int = 19200,
        fifo_size: int = 32,
        points: Mapping[str, Point] | None = None,
        wall_clock: Callable[[], float] = time.time,
        paced: bool = True,
    ) -> None:
        self.points = dict(points or default_wim_points())
        self.fifo_size = fifo_size
        self.fifo: deque[SimWimRecord] = deque()
        self.made: list[SimWimRecord] = []
        self.acked: list[int] = []
        self.lost = 0
        self.fault = False
        self.lose_ack_replies = 0
        self._wall = wall_clock
        self._seq = 0
        n_axles = sum(1 for r in self.points if r.startswith("axle_weight_"))
        self._weights, self._spacings = axle_roles(n_axles)
        lo = min(p.address for p in self.points.values())
        hi = max(p.end for p in self.points.values())
        self._base = lo
        self.server = SimModbusServer(
            [SimData(lo, values=[0] * (hi - lo), datatype=DataType.REGISTERS)],
            transport=transport,
            unit=unit,
            baud=baud,
            port=port,
            paced=paced,
            on_write=self._on_write,
        )
        self._dirty: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pusher: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Where the agent finds the controller."""
        return self.server.url

    async def __aenter__(self) -> WimController:
        self._loop = asyncio.get_running_loop()
        self._dirty = asyncio.Event()
        await self.server.start()
        await self.flush()
        self._pusher = asyncio.create_task(self._push_forever(), name="wim-sim-push")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the server; safe to call twice."""
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
            self._pusher = None
        await self.server.stop()

    # -- the world's view ------------------------------------------------------------------
    def record(self, weighing: VehicleWeighing) -> None:
        """Queue the record of a vehicle that crossed the scale (drop the oldest if the FIFO is full)."""
        self._seq += 1
        rec = SimWimRecord(self._seq, weighing, self._wall())
        self.made.append(rec)
        self.fifo.append(rec)
        while len(self.fifo) > self.fifo_size:
            self.fifo.popleft()
            self.lost += 1
        self._mark_dirty()

    def set_fault(self, fault: bool) -> None:
        """Raise or clear the controller's fault bit."""
        self.fault = fault
        self._mark_dirty()

    # -- register image --------------------------------------------------------------------
    def _mark_dirty(self) -> None:
        if self._loop is not None and self._dirty is not None:
            self._loop.call_soon_threadsafe(self._dirty.set)

    async def _push_forever(self) -> None:
        assert self._dirty is not None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write the current state into the running server now."""
        image = self._image()
        await self.server.set_values(16, self._base, image)

    def _values(self) -> dict[str, Value]:
        status = (1 << FAULT_BIT if self.fault else 0) | (1 << OVERFLOW_BIT if self.lost else 0)
        vals: dict[str, Value] = {
            "status": status,
            "pending": len(self.fifo),
            "head_sequence": self.fifo[0].sequence if self.fifo else 0,
            "lost": min(self.lost, 0xFFFF),
        }
        if not self.fifo:
            return vals
        head = self.fifo[0]
        w = head.weighing
        axles = w.axles[: len(self._weights)]
        vals.update(
            sequence=head.sequence,
            time_s=int(head.wall_time),
            time_ms=int(head.wall_time * 1000) % 1000,
            speed=w.speed_kmh,
            axle_count=len(axles),
            flags=w.flags | (AXLES_TRUNCATED_FLAG if len(w.axles) > len(axles) else 0),
            gross=round(w.gross_kg),
        )
        for name, axle in zip(self._weights, axles, strict=False):
            vals[name] = axle.weight_kg
        for name, axle in zip(self._spacings, axles, strict=False):
            vals[name] = axle.spacing_m
        return vals

    def _image(self) -> list[int]:
        lo = self._base
        hi = max(p.end for p in self.points.values())
        words = [0] * (hi - lo)
        ack = self.points["ack"]
        for role, value in self._values().items():
            p = self.points.get(role)
            if p is None:
                continue
            for k, word in enumerate(encode_value(p, value)):
                words[p.address - lo + k] = word
        words[ack.address - lo : ack.end - lo] = [0] * ack.width  # a command register: reads back 0
        return words

    def _on_write(
        self, address: int, start: int, registers: list[int], values: list[int] | list[bool]
    ) -> None:
        ack = self.points["ack"]
        end = address + len(values)
        if end <= ack.address or address >= ack.end:
            return
        words = [
            int(values[a - address]) if address <= a < end else registers[a - start]
            for a in range(ack.address, ack.end)
        ]
        acked = decode_value(ack, words)
        mask = (1 << (16 * ack.width)) - 1
        if self.fifo and isinstance(acked, int) and acked == self.fifo[0].sequence & mask:
            self.fifo.popleft()
            self.acked.append(int(acked))
            if self.lose_ack_replies > 0:  # the ack is done, but its reply never reaches the agent
                self.lose_ack_replies -= 1
                self.server.drop_replies += 1
        image = self._image()
        for k, word in enumerate(image):
            a = self._base + k
            if not ack.address <= a < ack.end:
                registers[a - start] = word
