"""The simulated WIM controller, Modbus loop card and GPIO loop panel, read through the real link."""

from __future__ import annotations

import pytest

from drivers.gpio.sim import SimGpio
from drivers.modbus.client import ExceptionReplyError, ModbusLink
from drivers.modbus.regmap import Point, PointType, ReadRequest, Table, decode, encode_value, plan_reads
from drivers.modbus.wim_map import FAULT_BIT, OVERFLOW_BIT, default_wim_points
from hw_sim.gpio_loops import GpioLoopPanel
from hw_sim.modbus_loops import LoopCard
from hw_sim.modbus_wim import AXLES_TRUNCATED_FLAG, WimController
from hw_sim.world import AxleLoad, VehicleWeighing
from tests.drivers.modbus.support import run, until

TRUCK = VehicleWeighing(8.5, (AxleLoad(5400, 0), AxleLoad(8100, 3.6), AxleLoad(8050, 1.3)), flags=0)
POINTS = default_wim_points()
STATUS = [POINTS[r] for r in ("status", "pending", "head_sequence", "lost")]


async def _status(link: ModbusLink) -> dict[str, object]:
    return dict(decode(STATUS, await link.read_plan(plan_reads(STATUS), 1)))


async def _ack(link: ModbusLink, seq: int) -> None:
    ack = POINTS["ack"]
    await link.write_registers(ack.address, encode_value(ack, seq), 1)


def test_wim_fifo_offers_the_head_until_it_is_acked() -> None:
    async def main() -> None:
        async with (
            WimController(fifo_size=2, wall_clock=lambda: 1_700_000_000.25) as wim,
            ModbusLink(wim.url, timeout_s=0.5) as link,
        ):
            await link.connect()
            assert await _status(link) == {"status": 0, "pending": 0, "head_sequence": 0, "lost": 0}
            wim.record(TRUCK)
            wim.record(VehicleWeighing(6.0, (AxleLoad(3000, 0), AxleLoad(4000, 4.0))))
            await wim.flush()
            assert await _status(link) == {"status": 0, "pending": 2, "head_sequence": 1, "lost": 0}
            record_points = [
                POINTS[r]
                for r in (
                    "sequence",
                    "time_s",
                    "time_ms",
                    "speed",
                    "axle_count",
                    "gross",
                    "axle_weight_2",
                    "axle_spacing_2",
                    "axle_weight_4",
                )
            ]
            rec = decode(record_points, await link.read_plan(plan_reads(record_points), 1))
            assert rec == {
                "sequence": 1,
                "time_s": 1_700_000_000,
                "time_ms": 250,
                "speed": 8.5,
                "axle_count": 3,
                "gross": 21550,
                "axle_weight_2": 8100.0,
                "axle_spacing_2": pytest.approx(3.6),
                "axle_weight_4": 0.0,
            }
            await _ack(link, 2)  # not the head: ignored
            assert (await _status(link))["pending"] == 2
            await _ack(link, 1)
            assert await _status(link) == {"status": 0, "pending": 1, "head_sequence": 2, "lost": 0}
            await _ack(link, 1)  # a repeated ack drops nothing more
            assert (await _status(link))["pending"] == 1
            assert wim.acked == [1]
            # overflow: the oldest is dropped and counted
            wim.record(TRUCK)
            wim.record(TRUCK)
            wim.set_fault(True)
            await wim.flush()
            st = await _status(link)
            assert st["lost"] == 1
            assert st["head_sequence"] == 3
            assert isinstance(st["status"], int)
            assert st["status"] == (1 << FAULT_BIT) | (1 << OVERFLOW_BIT)

    run(main())


def test_wim_flags_vehicles_with_more_axles_than_slots() -> None:
    async def main() -> None:
        async with WimController() as wim, ModbusLink(wim.url) as link:
            await link.connect()
            wim.record(VehicleWeighing(5.0, tuple(AxleLoad(3000, 1.3) for _ in range(14)), flags=4))
            await wim.flush()
            pts = [POINTS["axle_count"], POINTS["flags"]]
            assert decode(pts, await link.read_plan(plan_reads(pts), 1)) == {
                "axle_count": 12,
                "flags": 4 | AXLES_TRUNCATED_FLAG,
            }

    run(main())


@pytest.mark.parametrize(("transport", "table"), [("tcp", "discrete"), ("rtu", "coil")])
def test_loop_card_reports_presence_and_stuck_channels(transport: str, table: str) -> None:
    async def main() -> None:
        card = LoopCard(transport=transport, table=table, addresses={"entry": 3, "exit": 17}, baud=115200)
        async with card, ModbusLink(card.url, timeout_s=0.5) as link:
            await link.connect()
            pts = [
                Point("entry", Table(table), 3, PointType.BOOL),
                Point("exit", Table(table), 17, PointType.BOOL),
            ]
            plan = plan_reads(pts, max_gap=64)

            async def read() -> dict[str, object]:
                return dict(decode(pts, await link.read_plan(plan, 1)))

            assert await read() == {"entry": False, "exit": False}
            card.set_presence("entry", True)
            await until(lambda: not card._tasks, what="update")
            assert await read() == {"entry": True, "exit": False}
            card.stick("exit")
            card.set_presence("entry", False)
            card.set_presence("exit", False)
            await until(lambda: not card._tasks, what="update")
            assert await read() == {"entry": False, "exit": True}
            card.stick("exit", on=False)
            await until(lambda: not card._tasks, what="update")
            assert await read() == {"entry": False, "exit": False}
            with pytest.raises(ValueError, match="no loop 'middle'"):
                card.set_presence("middle", True)

    run(main())


def test_loop_card_needs_a_bit_table() -> None:
    with pytest.raises(ValueError, match="discrete"):
        LoopCard(table="holding")


def test_gpio_panel_drives_pins_active_low() -> None:
    gpio = SimGpio()
    panel = GpioLoopPanel(gpio, {"entry": 5, "exit": 6})
    panel.set_presence("entry", True)  # not set up yet: remembered, pin untouched
    assert panel.presence["entry"] is True
    for pin in (5, 6):
        gpio.setup_input(pin, pull_up=True)
    seen: list[tuple[int, bool]] = []
    gpio.watch(5, lambda pin, level: seen.append((pin, level)))
    panel.set_presence("entry", True)
    assert gpio.read(5) is False
    panel.set_presence("entry", False)
    assert gpio.read(5) is True
    panel.bounce("entry", True, edges=4)
    assert gpio.read(5) is False
    assert len(seen) >= 4
    panel.stick("exit")
    panel.set_presence("exit", False)
    assert gpio.read(6) is False
    panel.stick("exit", on=False)
    assert gpio.read(6) is True
    with pytest.raises(ValueError, match="no loop"):
        panel.set_presence("nowhere", True)
    gpio.close()


def test_read_requests_for_unknown_addresses_get_an_exception() -> None:
    async def main() -> None:
        async with WimController() as wim, ModbusLink(wim.url) as link:
            await link.connect()
            with pytest.raises(ExceptionReplyError):
                await link.read(ReadRequest(Table.HOLDING, 500, 2), 1)

    run(main())
