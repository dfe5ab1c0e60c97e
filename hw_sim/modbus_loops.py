"""A simulated loop detector card on Modbus: presence per loop as discrete inputs (or coils).

Implements :class:`hw_sim.world.LoopPanel`. Each named loop sits at one bit address of the chosen
table; :meth:`LoopCard.set_presence` updates it through the running server. :meth:`LoopCard.stick`
makes a loop report presence whatever the world says (a failed detector channel, or a "fail-safe"
card calling on a broken loop). The shared fault switches are on :attr:`LoopCard.server`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import TracebackType

from pymodbus.simulator import DataType, SimData

from hw_sim.modbus_server import SimModbusServer

_SET_CODE = {"discrete": 2, "coil": 15}


class LoopCard:
    """The loop card; an async context manager exposing :attr:`url`."""

    def __init__(
        self,
        *,
        transport: str = "tcp",
        port: int = 0,
        unit: int = 1,
        baud: int = 19200,
        table: str = "discrete",
        addresses: Mapping[str, int] | None = None,
        paced: bool = True,
    ) -> None:
        if table not in _SET_CODE:
            raise ValueError("table must be 'discrete' or 'coil'")
        self.table = table
        self.addresses = dict(addresses or {"entry": 0, "exit": 1})
        self.presence = dict.fromkeys(self.addresses, False)
        self.stuck: set[str] = set()
        nbits = (max(self.addresses.values()) // 16 + 1) * 16
        bits = [SimData(0, values=[False] * nbits, datatype=DataType.BITS)]
        regs = [SimData(0, values=[0], datatype=DataType.REGISTERS)]
        blocks = (list(bits), list(bits), list(regs), list(regs))
        self.server = SimModbusServer(
            blocks, transport=transport, unit=unit, baud=baud, port=port, paced=paced
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """Where the agent finds the card."""
        return self.server.url

    async def __aenter__(self) -> LoopCard:
        self._loop = asyncio.get_running_loop()
        await self.server.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the server; safe to call twice."""
        for t in list(self._tasks):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.server.stop()

    def set_presence(self, loop: str, present: bool) -> None:
        """Report a vehicle over (or off) the named loop."""
        if loop not in self.addresses:
            raise ValueError(f"the loop card has no loop {loop!r} (has {sorted(self.addresses)})")
        self.presence[loop] = present
        self._schedule(loop)

    def stick(self, loop: str, on: bool = True) -> None:
        """Make ``loop`` report presence regardless of the world (``on=False`` repairs it)."""
        if loop not in self.addresses:
            raise ValueError(f"the loop card has no loop {loop!r}")
        if on:
            self.stuck.add(loop)
        else:
            self.stuck.discard(loop)
        self._schedule(loop)

    def output(self, loop: str) -> bool:
        """Return what the card reports for ``loop`` now."""
        return self.presence[loop] or loop in self.stuck

    def _schedule(self, loop: str) -> None:
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._start_update, loop)

    def _start_update(self, loop: str) -> None:
        task = asyncio.ensure_future(self.update(loop))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def update(self, loop: str) -> None:
        """Write the card's output for ``loop`` into the running server now."""
        await self.server.set_values(_SET_CODE[self.table], self.addresses[loop], [self.output(loop)])
