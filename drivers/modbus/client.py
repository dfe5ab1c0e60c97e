"""One Modbus device link over pymodbus 3.16 async clients (TCP or RTU), counted and paced.

:class:`ModbusLink` wraps ``AsyncModbusTcpClient`` / ``AsyncModbusSerialClient`` (RTU framer) and
turns every way a request can fail into one error of the family, counted per device:

==========================  ==========================  =====================
what happened               raised                      counter
==========================  ==========================  =====================
no reply within timeout     :class:`DeviceTimeout`      ``timeouts``
reply with a bad CRC/frame  :class:`ModbusFrameError`   ``crc_errors``
exception reply (isError)   :class:`ExceptionReplyError` ``exceptions``
link lost / cannot connect  :class:`DeviceDisconnected` ``disconnects``
==========================  ==========================  =====================

pymodbus discards a frame whose CRC fails and waits on, so a garbled reply surfaces as a timeout;
the link watches the raw bytes (``trace_packet``) to tell "nothing came back" from "garbage came
back". pymodbus's own reconnect is disabled: the caller reconnects, with :class:`Backoff`.
On RTU, requests are paced so the line keeps its 3.5-character gap between frames.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from drivers.errors import DeviceDisconnected, DeviceError, DeviceTimeout
from drivers.modbus.line import Endpoint, frame_gap, parse_url, why_not_open
from drivers.modbus.regmap import ReadRequest, RegisterImage, Table, image_of

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}


class ExceptionReplyError(DeviceError):
    """The device answered with a Modbus exception code."""

    def __init__(self, code: int, what: str) -> None:
        self.code = code
        super().__init__(f"{what}: exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})")


class ModbusFrameError(DeviceError):
    """Bytes came back but formed no valid frame (CRC error, truncated or garbled reply)."""


class Backoff:
    """Capped exponential backoff: ``min_s``, doubling up to ``max_s``; reset after a success."""

    def __init__(self, min_s: float = 0.1, max_s: float = 5.0) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError("need 0 < min_s <= max_s")
        self.min_s = min_s
        self.max_s = max_s
        self._next = min_s

    def next(self) -> float:
        """Return the delay before the next attempt (doubles each call, capped)."""
        delay = self._next
        self._next = min(self.max_s, self._next * 2)
        return delay

    def reset(self) -> None:
        """Start again from ``min_s``."""
        self._next = self.min_s


class ModbusLink:
    """A connection to one Modbus device; an async context manager whose close is idempotent."""

    def __init__(
        self,
        url: str | Endpoint,
        *,
        timeout_s: float = 1.0,
        name: str = "modbus",
        counters: Counter[str] | None = None,
    ) -> None:
        self.endpoint = parse_url(url) if isinstance(url, str) else url
        self.name = name
        self.timeout_s = timeout_s
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._rx_seen = False
        self._line_free_at = 0.0
        self._gap = frame_gap(self.endpoint.baud) if self.endpoint.is_serial else 0.0

    @property
    def connected(self) -> bool:
        """True while the transport is open."""
        return self._client is not None and self._client.connected

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._rx_seen = False
        elif data:
            self._rx_seen = True
        return data

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        ep = self.endpoint
        common: dict[str, Any] = {
            "timeout": self.timeout_s,
            "retries": 0,
            "reconnect_delay": 0,  # the caller reconnects (counted, with its own backoff)
            "name": self.name,
            "trace_packet": self._trace,
        }
        if ep.is_serial:
            return AsyncModbusSerialClient(
                ep.device,
                framer=FramerType.RTU,
                baudrate=ep.baud,
                bytesize=ep.bytesize,
                parity=ep.parity,
                stopbits=ep.stopbits,
                **common,
            )
        return AsyncModbusTcpClient(ep.host, port=ep.port, **common)

    async def connect(self) -> None:
        """Open the link (one attempt); raise :class:`DeviceDisconnected` if it cannot."""
        if self.connected:
            return
        self._drop()
        self._client = self._make_client()
        try:
            ok = await self._client.connect()
        except (OSError, ModbusException) as exc:
            ok = False
            why = str(exc)
        else:
            why = ""
        if not ok:
            why = why or await why_not_open(self.endpoint, self.timeout_s)
            self._drop()
            self.counters["connect_failures"] += 1
            raise DeviceDisconnected(f"{self.name}: cannot open {self.endpoint.describe()}: {why}")
        self.counters["connects"] += 1

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        """Close the link; safe to call twice."""
        self._drop()

    async def __aenter__(self) -> ModbusLink:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def _pace(self) -> None:
        wait = self._line_free_at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _execute(self, what: str, call: Callable[[Any], Awaitable[ModbusPDU]]) -> ModbusPDU:
        if self._client is None or not self._client.connected:
            if self._client is not None:  # the transport went away since the last request
                self.counters["disconnects"] += 1
            self._drop()
            raise DeviceDisconnected(f"{self.name}: not connected to {self.endpoint.describe()}")
        await self._pace()
        self.counters["requests"] += 1
        try:
            rr = await call(self._client)
        except ConnectionException as exc:
            self.counters["disconnects"] += 1
            self._drop()
            where = self.endpoint.describe()
            raise DeviceDisconnected(f"{self.name}: link to {where} lost ({exc})") from None
        except ModbusIOException:
            garbled = self._rx_seen
            if not self._client.connected:  # pymodbus closes TCP after repeated silence
                self.counters["disconnects"] += 1
                self._drop()
            if garbled:
                self.counters["crc_errors"] += 1
                raise ModbusFrameError(f"{self.name}: {what}: reply failed CRC/framing") from None
            self.counters["timeouts"] += 1
            raise DeviceTimeout(f"{self.name}: {what}: no reply within {self.timeout_s:g} s") from None
        finally:
            self._line_free_at = time.monotonic() + self._gap
        if rr.isError():
            self.counters["exceptions"] += 1
            raise ExceptionReplyError(int(getattr(rr, "exception_code", 0)), f"{self.name}: {what}")
        self.counters["replies"] += 1
        return rr

    async def read(self, req: ReadRequest, unit: int) -> list[int]:
        """Execute one read; return its raw values (words, or 0/1 for bit tables)."""
        what = f"read {req.table.value}:{req.address}:{req.count} unit {unit}"
        a, n = req.address, req.count
        if req.table is Table.HOLDING:
            rr = await self._execute(what, lambda c: c.read_holding_registers(a, count=n, device_id=unit))
            return list(rr.registers[:n])
        if req.table is Table.INPUT:
            rr = await self._execute(what, lambda c: c.read_input_registers(a, count=n, device_id=unit))
            return list(rr.registers[:n])
        if req.table is Table.COIL:
            rr = await self._execute(what, lambda c: c.read_coils(a, count=n, device_id=unit))
        else:
            rr = await self._execute(what, lambda c: c.read_discrete_inputs(a, count=n, device_id=unit))
        return [int(b) for b in rr.bits[:n]]

    async def read_plan(self, plan: Sequence[ReadRequest], unit: int) -> RegisterImage:
        """Execute every read of ``plan`` in order; any failure aborts the cycle."""
        results = [await self.read(req, unit) for req in plan]
        return image_of(plan, results)

    async def write_registers(self, address: int, values: Sequence[int], unit: int) -> None:
        """Write holding registers (FC16, or FC06 for one register)."""
        vals = [int(v) & 0xFFFF for v in values]
        what = f"write holding:{address}:{len(vals)} unit {unit}"
        if len(vals) == 1:
            await self._execute(what, lambda c: c.write_register(address, vals[0], device_id=unit))
        else:
            await self._execute(what, lambda c: c.write_registers(address, vals, device_id=unit))

    async def write_coil(self, address: int, value: bool, unit: int) -> None:
        """Write one coil (FC05)."""
        await self._execute(
            f"write coil:{address} unit {unit}", lambda c: c.write_coil(address, value, device_id=unit)
        )
