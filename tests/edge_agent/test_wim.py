"""WimSource against the simulated controller: every record once, in order, through faults."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from edge_agent.clock import SystemClock
from edge_agent.config.sensors import ModbusWimConfig
from edge_agent.domain import DeviceFault, LaneEvent, WimRecord
from edge_agent.health import DeviceState
from edge_agent.wim import WimSource
from hw_sim.modbus_wim import WimController
from hw_sim.world import AxleLoad, VehicleWeighing
from tests.drivers.modbus.support import run, stopped, until


def truck(n: int) -> VehicleWeighing:
    axles = (AxleLoad(5000 + 10 * n, 0), AxleLoad(8000, 3.6), AxleLoad(7990, 1.3))
    return VehicleWeighing(5.0 + n, axles, flags=n % 2)


def cfg(url: str, **extra: Any) -> ModbusWimConfig:
    data = {
        "url": url,
        "timeout_s": 0.1,
        "poll_interval_s": 0.01,
        "fault_after": 2,
        "reconnect_min_s": 0.02,
        "reconnect_max_s": 0.1,
    } | extra
    return ModbusWimConfig.model_validate(data)


class Lane:
    """Collects what a source emits."""

    def __init__(self) -> None:
        self.events: list[LaneEvent] = []

    def __call__(self, event: LaneEvent) -> None:
        self.events.append(event)

    @property
    def records(self) -> list[WimRecord]:
        return [e for e in self.events if isinstance(e, WimRecord)]

    def faults(self, kind: str | None = None) -> list[DeviceFault]:
        return [e for e in self.events if isinstance(e, DeviceFault) and kind in (None, e.kind)]


def test_records_arrive_once_in_order_with_their_values() -> None:
    async def main() -> None:
        async with WimController(wall_clock=lambda: 1_800_000_000.5) as wim:
            src = WimSource(cfg(wim.url), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            for n in range(5):
                wim.record(truck(n))
            await until(lambda: len(lane.records) == 5, what="5 records")
            await until(lambda: not wim.fifo, what="acks")
            first = lane.records[0]
            assert first.sequence == 1
            assert first.speed_kmh == 5.0
            assert first.axle_weights_kg == (5000.0, 8000.0, 7990.0)
            assert first.axle_spacings_m == pytest.approx((0.0, 3.6, 1.3))
            assert first.gross_kg == 20990.0
            assert first.axle_count == 3
            assert first.controller_time == datetime.fromtimestamp(1_800_000_000.5, UTC)
            assert [r.sequence for r in lane.records] == [1, 2, 3, 4, 5]
            assert [r.flags for r in lane.records] == [0, 1, 0, 1, 0]
            assert wim.acked == [1, 2, 3, 4, 5]
            # the poll that carried the records completes after the last ack reached the controller
            await until(lambda: src.health().state is DeviceState.UP, what="poll cycle done")
            h = src.health()
            assert h.counters["records"] == 5
            assert h.counters["acks"] == 5
            assert lane.faults() == []
            await stopped(task)

    run(main())


def test_a_lost_ack_reply_does_not_duplicate_the_record() -> None:
    async def main() -> None:
        async with WimController() as wim:
            src = WimSource(cfg(wim.url, fault_after=5), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            wim.lose_ack_replies = 1
            wim.record(truck(1))
            wim.record(truck(2))
            await until(lambda: len(lane.records) == 2 and not wim.fifo, what="both records")
            await asyncio.sleep(0.05)
            assert [r.sequence for r in lane.records] == [1, 2]
            assert src.health().counters["timeouts"] >= 1
            await stopped(task)

    run(main())


def test_a_repeated_head_after_a_lost_ack_is_acked_again_not_re_emitted() -> None:
    async def main() -> None:
        async with WimController() as wim:
            src = WimSource(cfg(wim.url, fault_after=5), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            wim.server.exception_code = None
            wim.record(truck(1))
            await until(lambda: len(lane.records) == 1, what="record")
            await until(lambda: not wim.fifo, what="ack")
            # the controller forgets the ack (e.g. it was lost on the way): the head is offered again
            wim.fifo.appendleft(wim.made[0])
            await wim.flush()
            await until(lambda: src.health().counters["duplicates_suppressed"] == 1, what="duplicate seen")
            await until(lambda: not wim.fifo, what="re-ack")
            assert len(lane.records) == 1
            await stopped(task)

    run(main())


def test_records_buffered_while_unplugged_are_collected_after() -> None:
    async def main() -> None:
        async with WimController() as wim:
            src = WimSource(cfg(wim.url), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            wim.record(truck(0))
            await until(lambda: len(lane.records) == 1, what="first record")
            await wim.server.unplug()
            for n in range(1, 4):
                wim.record(truck(n))
            await until(lambda: len(lane.faults("comms")) == 1, what="comms fault")
            down = lane.faults("comms")[0]
            assert down.active
            assert down.device == "wim"
            assert src.health().state is DeviceState.DOWN
            await wim.server.replug()
            await wim.flush()
            await until(lambda: len(lane.records) == 4, what="buffered records")
            assert [r.sequence for r in lane.records] == [1, 2, 3, 4]
            await until(lambda: len(lane.faults("comms")) == 2, what="recovery")
            assert not lane.faults("comms")[1].active
            assert src.health().counters["reconnects"] >= 1
            await stopped(task)

    run(main())


def test_controller_fault_and_exception_replies_are_reported() -> None:
    async def main() -> None:
        async with WimController() as wim:
            src = WimSource(cfg(wim.url), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            wim.set_fault(True)
            await until(lambda: len(lane.faults("controller_fault")) == 1, what="controller fault")
            assert src.health().state is DeviceState.DEGRADED
            wim.set_fault(False)
            await until(lambda: len(lane.faults()) == 2, what="fault cleared")
            last = lane.faults()[-1]
            assert (last.device, last.kind, last.active) == ("wim", "controller_fault", False)
            wim.server.exception_code = 4
            await until(lambda: len(lane.faults("comms")) == 1, what="comms fault on exceptions")
            assert "exception 4" in lane.faults("comms")[0].detail
            wim.server.exception_code = None
            await until(lambda: len(lane.faults("comms")) == 2, what="recovered")
            assert src.health().counters["exceptions"] >= 2
            await stopped(task)

    run(main())


def test_malformed_records_are_counted_acked_and_dropped() -> None:
    async def main() -> None:
        async with WimController() as wim:
            src = WimSource(cfg(wim.url), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            wim.record(VehicleWeighing(7.0, ()))  # no axles: nothing a lane can use
            wim.record(truck(1))
            await until(lambda: len(lane.records) == 1 and not wim.fifo, what="good record")
            assert lane.records[0].sequence == 2
            assert src.health().counters["bad_records"] == 1
            await stopped(task)

    run(main())


def test_rtu_with_crc_errors_and_a_custom_map() -> None:
    """A controller with a different layout (CDAB floats, another ack address) over RTU on a pty."""
    registers = {
        "speed": {"address": 15, "type": "f32", "word_order": "little"},
        "ack": {"table": "holding", "address": 60, "type": "u16"},
        "axle_weights": {"address": 21, "count": 6, "scale": 1.0},
        "axle_spacings": {"address": 33, "count": 6, "scale": 0.001, "type": "u16"},
    }

    async def main() -> None:
        conf = cfg("tcp://x", registers=registers)
        async with WimController(transport="rtu", baud=115200, points=conf.registers.points()) as wim:
            src = WimSource(cfg(wim.url, registers=registers, timeout_s=0.15), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            wim.record(truck(1))
            await until(lambda: len(lane.records) == 1, what="record over RTU")
            assert lane.records[0].speed_kmh == 6.0
            assert lane.records[0].axle_spacings_m == pytest.approx((0.0, 3.6, 1.3))
            wim.server.corrupt_crc = True
            wim.record(truck(2))
            await until(lambda: len(lane.faults("comms")) == 1, what="comms fault on CRC errors")
            assert "CRC" in lane.faults("comms")[0].detail
            wim.server.corrupt_crc = False
            await until(lambda: len(lane.records) == 2, what="record after the line is clean")
            assert src.health().counters["crc_errors"] >= 2
            await until(lambda: wim.acked == [1, 2], what="both acked")
            await stopped(task)

    run(main())
