"""The device link against real pymodbus servers, over TCP and RTU on a pty line: every failure kind."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymodbus.simulator import DataType, SimData

from drivers.errors import DeviceDisconnected, DeviceTimeout
from drivers.modbus.client import ExceptionReplyError, ModbusFrameError, ModbusLink
from drivers.modbus.line import transaction_time
from drivers.modbus.regmap import Point, PointType, ReadRequest, Table, decode, plan_reads
from hw_sim.modbus_server import SimModbusServer
from tests.drivers.modbus.support import run

TRANSPORTS = ["tcp", "rtu"]


def _server(transport: str, baud: int = 115200) -> SimModbusServer:
    return SimModbusServer(
        [SimData(0, values=list(range(100, 150)), datatype=DataType.REGISTERS)],
        transport=transport,
        baud=baud,
        unit=3,
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reads_writes_and_plans(transport: str) -> None:
    async def main() -> None:
        async with _server(transport) as sim, ModbusLink(sim.url, timeout_s=0.5) as link:
            await link.connect()
            await link.connect()  # already connected: no-op
            assert await link.read(ReadRequest(Table.HOLDING, 2, 3), 3) == [102, 103, 104]
            await link.write_registers(10, [7, 8], 3)
            await link.write_registers(12, [9], 3)
            assert await link.read(ReadRequest(Table.INPUT, 10, 3), 3) == [7, 8, 9]
            assert sim.writes == [(16, 10, [7, 8]), (6, 12, [9])]
            points = [Point("a", Table.HOLDING, 0), Point("b", Table.HOLDING, 10, PointType.U32)]
            plan = plan_reads(points, max_gap=10)
            assert len(plan) == 1
            assert decode(points, await link.read_plan(plan, 3)) == {"a": 100, "b": (7 << 16) | 8}
            assert link.counters["replies"] == 5
            assert link.counters["requests"] == 5
        assert not link.connected

    run(main())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_failure_is_raised_and_counted(transport: str) -> None:
    async def main() -> None:
        async with _server(transport) as sim, ModbusLink(sim.url, timeout_s=0.15, name="wim") as link:
            await link.connect()
            req = ReadRequest(Table.HOLDING, 0, 4)
            sim.exception_code = 2
            with pytest.raises(ExceptionReplyError, match="illegal data address") as info:
                await link.read(req, 3)
            assert info.value.code == 2
            sim.exception_code = None
            sim.silent = True
            with pytest.raises(DeviceTimeout, match=r"no reply within 0\.15 s"):
                await link.read(req, 3)
            sim.silent = False
            with pytest.raises(DeviceTimeout):  # nobody answers for unit 9
                await link.read(req, 9)
            sim.delay_s = 0.3  # slower than the timeout
            with pytest.raises(DeviceTimeout):
                await link.read(req, 3)
            sim.delay_s = 0.0
            await asyncio.sleep(0.3)  # let the late reply arrive and be discarded
            assert await link.read(req, 3) == [100, 101, 102, 103]
            assert link.counters["exceptions"] == 1
            assert link.counters["timeouts"] >= 2

    run(main())


def test_rtu_crc_errors_are_told_from_silence() -> None:
    async def main() -> None:
        async with _server("rtu") as sim, ModbusLink(sim.url, timeout_s=0.15) as link:
            await link.connect()
            sim.corrupt_crc = True
            with pytest.raises(ModbusFrameError, match="CRC"):
                await link.read(ReadRequest(Table.HOLDING, 0, 2), 3)
            sim.corrupt_crc = False
            assert await link.read(ReadRequest(Table.HOLDING, 0, 2), 3) == [100, 101]
            assert link.counters["crc_errors"] == 1
            assert link.counters["timeouts"] == 0

    run(main())


def test_tcp_disconnects_are_counted_and_reconnect_works() -> None:
    async def main() -> None:
        async with _server("tcp") as sim, ModbusLink(sim.url, timeout_s=0.2) as link:
            await link.connect()
            sim.drop_connections()
            await asyncio.sleep(0.05)
            with pytest.raises(DeviceDisconnected, match="not connected"):
                await link.read(ReadRequest(Table.HOLDING, 0, 1), 3)
            assert link.counters["disconnects"] == 1
            await sim.unplug()
            with pytest.raises(DeviceDisconnected, match="cannot open"):
                await link.connect()
            assert link.counters["connect_failures"] == 1
            await sim.replug()
            await link.connect()
            assert await link.read(ReadRequest(Table.HOLDING, 0, 1), 3) == [100]
            link.close()
            link.close()

    run(main())


def test_rtu_requests_are_paced_to_the_line() -> None:
    async def main() -> None:
        async with _server("rtu", baud=9600) as sim, ModbusLink(sim.url, timeout_s=1.0) as link:
            await link.connect()
            req = ReadRequest(Table.HOLDING, 0, 10)
            n = 8
            t0 = time.perf_counter()
            for _ in range(n):
                await link.read(req, 3)
            elapsed = time.perf_counter() - t0
            floor = n * transaction_time(req, 9600) * 0.9
            assert elapsed >= floor, (elapsed, floor)

    run(main())


def test_missing_serial_port_is_a_disconnect() -> None:
    async def main() -> None:
        link = ModbusLink("rtu:///dev/does-not-exist?baud=9600")
        with pytest.raises(DeviceDisconnected, match="does-not-exist"):
            await link.connect()
        assert link.counters["connect_failures"] == 1

    run(main())
