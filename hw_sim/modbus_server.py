"""A simulated Modbus device: a real pymodbus server (TCP on loopback, or RTU on a pty line).

:class:`SimModbusServer` owns the server and the fault switches every simulated device shares:

* :attr:`silent` - requests are received but never answered (a dead controller); requests for
  another unit id are never answered either, as on a real RS-485 bus;
* :attr:`drop_replies` - the next N requests are carried out but their replies are lost;
* :attr:`exception_code` - every request is answered with this Modbus exception (e.g. 6, busy);
* :attr:`delay_s` - replies are late by this much (a slow controller);
* :meth:`drop_connections` - the TCP connection is reset (a switch reboot);
* :attr:`corrupt_crc` - RTU only: one bit of every reply flipped on the line (CRC errors).

The device's own behaviour (what a write means) is given as ``on_write``, called inside the
request with the live register list so it can update the image atomically; updates from the
scenario go through :meth:`set_values` (``server.async_setValues``), as pymodbus requires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice

from hw_sim.modbus_line import PtyLine

OnWrite = Callable[[int, int, list[int], list[int] | list[bool]], None]
"""(request address, start address of the live block, live registers, written values) -> None."""

_WRITE_CODES = {5, 6, 15, 16, 22, 23}


async def _shutdown(server: ModbusTcpServer | ModbusSerialServer) -> None:
    stop: Any = server.shutdown  # untyped in pymodbus
    await stop()


class SimModbusServer:
    """One simulated Modbus device (unit ``unit``) reachable at :attr:`url`."""

    def __init__(
        self,
        simdata: list[SimData] | tuple[list[SimData], list[SimData], list[SimData], list[SimData]],
        *,
        transport: str = "tcp",
        unit: int = 1,
        baud: int = 19200,
        port: int = 0,
        paced: bool = True,
        on_write: OnWrite | None = None,
    ) -> None:
        if transport not in ("tcp", "rtu"):
            raise ValueError("transport must be 'tcp' or 'rtu'")
        self.transport = transport
        self.unit = unit
        self.baud = baud
        self.silent = False
        self.drop_replies = 0
        self.exception_code: int | None = None
        self.delay_s = 0.0
        self.requests = 0
        self.writes: list[tuple[int, int, list[int]]] = []  # (function code, address, values)
        self._simdata = simdata
        self._port = port
        self._paced = paced
        self._on_write = on_write
        self._internal = False
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._line: PtyLine | None = None

    @property
    def url(self) -> str:
        """Where the agent finds this device (``tcp://127.0.0.1:PORT`` or ``rtu:///dev/pts/N?baud=B``)."""
        if self._line is not None:
            return f"rtu://{self._line.agent_path}?baud={self.baud}"
        return f"tcp://127.0.0.1:{self._port}"

    @property
    def line(self) -> PtyLine | None:
        """The pty line (RTU only)."""
        return self._line

    @property
    def corrupt_crc(self) -> bool:
        """RTU: flip one bit of every reply on the line."""
        return self._line is not None and self._line.corrupt_replies

    @corrupt_crc.setter
    def corrupt_crc(self, on: bool) -> None:
        if self._line is None:
            raise ValueError("CRC corruption needs the RTU transport")
        self._line.corrupt_replies = on

    async def __aenter__(self) -> SimModbusServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _device(self) -> SimDevice:
        return SimDevice(id=self.unit, simdata=self._simdata, action=self._action)

    async def start(self) -> None:
        """Start serving (again, after :meth:`stop`, on the same port or line)."""
        if self._server is not None:
            return
        if self.transport == "tcp":
            tcp = ModbusTcpServer(self._device(), address=("127.0.0.1", self._port), trace_packet=self._trace)
            await tcp.serve_forever(background=True)
            if self._port == 0:
                listener: Any = tcp.transport
                self._port = int(listener.sockets[0].getsockname()[1])
            self._server = tcp
            return
        if self._line is None:
            self._line = PtyLine(self.baud, paced=self._paced)
            self._line.open()
        rtu = ModbusSerialServer(
            self._device(),
            framer=FramerType.RTU,
            port=self._line.device_path,
            baudrate=self.baud,
            trace_packet=self._trace,
        )
        await rtu.serve_forever(background=True)
        self._server = rtu

    async def stop(self) -> None:
        """Stop serving and close the line; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            await _shutdown(server)
        if self._line is not None:
            self._line.close()
            self._line = None

    async def unplug(self) -> None:
        """TCP: stop listening and reset every connection, keeping the port for :meth:`replug`."""
        server, self._server = self._server, None
        if server is not None:
            await _shutdown(server)

    async def replug(self) -> None:
        """Start answering again after :meth:`unplug`."""
        await self.start()

    def drop_connections(self) -> None:
        """Reset every open TCP connection (the server keeps listening)."""
        if self._server is None:
            return
        for conn in list(self._server.active_connections.values()):
            conn.close()

    async def set_values(self, func_code: int, address: int, values: list[int] | list[bool]) -> None:
        """Update the live image (as the device itself would), bypassing fault injection."""
        if self._server is None:
            return
        self._internal = True
        try:
            await self._server.async_setValues(self.unit, func_code, address, values)
        finally:
            self._internal = False

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        unit_at = 0 if self.transport == "rtu" else 6  # RTU: first byte; TCP: after the MBAP header
        if self.silent or (len(data) > unit_at and data[unit_at] != self.unit):
            return b""  # no reply (a request for another unit id is not ours to answer)
        if self.drop_replies > 0:
            self.drop_replies -= 1
            return b""
        return data

    async def _action(
        self,
        func_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if self._internal:
            return None
        self.requests += 1
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        if self.exception_code is not None:
            return ExcCodes(self.exception_code)
        if values is not None and func_code in _WRITE_CODES:
            self.writes.append((func_code, address, [int(v) for v in values]))
            if self._on_write is not None:
                self._on_write(address, start_address, registers, values)
        return None
