"""Fault conditions reported one at a time, and the poll supervisor's up/down/backoff logic."""

from __future__ import annotations

import asyncio

from pymodbus.simulator import DataType, SimData

from drivers.errors import DeviceTimeout
from drivers.modbus.client import Backoff, ModbusLink
from drivers.modbus.poller import Conditions, PollSupervisor, Transition
from drivers.modbus.regmap import ReadRequest, Table
from hw_sim.modbus_server import SimModbusServer
from tests.drivers.modbus.support import run, stopped, until


def test_conditions_keep_the_device_faulted_until_the_last_one_ends() -> None:
    c = Conditions()
    first = c.start("stuck_loop:entry", "stuck_loop", "entry stuck")
    assert first == Transition("stuck_loop", True, "entry stuck")
    assert c.start("stuck_loop:entry", "stuck_loop", "again") is None
    assert c.start("chatter:exit", "chatter", "exit chatters") == Transition("chatter", True, "exit chatters")
    # ending one re-reports the other, so a tracker keyed by device stays faulted
    assert c.end("stuck_loop:entry", "clear") == Transition("chatter", True, "exit chatters")
    assert c.end("stuck_loop:entry", "clear") is None
    assert c.end("chatter:exit", "quiet") == Transition("chatter", False, "quiet")
    assert c.active == {}


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    b = Backoff(0.1, 0.5)
    assert [b.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    b.reset()
    assert b.next() == 0.1


def test_supervisor_reports_down_after_failures_and_up_again() -> None:
    async def main() -> None:
        async with SimModbusServer([SimData(0, values=[1, 2, 3], datatype=DataType.REGISTERS)]) as sim:
            link = ModbusLink(sim.url, timeout_s=0.05, name="dev")
            events: list[str] = []
            sleeps: list[float] = []
            loop = asyncio.get_running_loop()

            async def sleep(s: float) -> None:
                sleeps.append(s)
                await asyncio.sleep(0.001)

            sup = PollSupervisor(
                link, interval=0.01, fault_after=3, backoff=Backoff(0.05, 0.2), sleep=sleep, now=loop.time
            )

            async def cycle() -> None:
                await link.read(ReadRequest(Table.HOLDING, 0, 3), 1)

            task = asyncio.create_task(
                sup.run(cycle, lambda r: events.append("down:" + r), lambda: events.append("up"))
            )
            await until(lambda: link.counters["replies"] >= 2, what="first polls")
            sim.silent = True
            await until(lambda: any(e.startswith("down") for e in events), what="down")
            assert link.counters["timeouts"] >= 3
            assert "no reply" in events[0]
            sim.silent = False
            await until(lambda: "up" in events, what="up")
            assert events.count("up") == 1
            assert len(events) == 2
            # the link is dropped under the supervisor: it reconnects and counts it
            sim.drop_connections()
            await until(lambda: link.counters["reconnects"] >= 1, what="reconnect")
            # the device disappears: connect fails at once -> down, with growing backoff
            await sim.unplug()
            sim.drop_connections()
            await until(
                lambda: (
                    events.count("up") == 1
                    and events[-1].startswith("down")
                    and link.counters["connect_failures"] >= 3
                ),
                what="down on refused connects",
            )
            assert 0.1 in sleeps
            assert 0.2 in sleeps
            await sim.replug()
            await until(lambda: events[-1] == "up", what="up after replug")
            await stopped(task)
            assert not link.connected

    run(main())


def test_supervisor_survives_a_failing_cycle_without_busy_looping() -> None:
    async def main() -> None:
        async with SimModbusServer([SimData(0, values=[1], datatype=DataType.REGISTERS)]) as sim:
            link = ModbusLink(sim.url, timeout_s=0.05)
            sleeps: list[float] = []

            async def sleep(s: float) -> None:
                sleeps.append(s)
                await asyncio.sleep(0)

            async def cycle() -> None:
                raise DeviceTimeout("boom")

            sup = PollSupervisor(
                link, interval=0.25, fault_after=2, backoff=Backoff(1, 2), sleep=sleep, now=lambda: 0.0
            )
            downs: list[str] = []
            task = asyncio.create_task(sup.run(cycle, downs.append, lambda: None))
            await until(lambda: len(sleeps) >= 5)
            await stopped(task)
            assert set(sleeps) == {0.25}  # connected: retry at the poll interval, never spin
            assert downs == ["boom"]

    run(main())
