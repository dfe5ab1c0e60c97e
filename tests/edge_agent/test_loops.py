"""LoopSource: debounced presence from GPIO pins and Modbus loop cards; stuck and chattering loops."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from drivers.errors import ConfigError
from drivers.gpio.sim import SimGpio
from edge_agent.clock import SystemClock
from edge_agent.config.sensors import GpioLoopsConfig, ModbusLoopsConfig
from edge_agent.domain import DeviceFault, LaneEvent, LoopEvent
from edge_agent.health import DeviceState
from edge_agent.loops import open_loop_source
from hw_sim.gpio_loops import GpioLoopPanel
from hw_sim.modbus_loops import LoopCard
from tests.drivers.modbus.support import SteppedClock, run, stopped, until


class Lane:
    """Collects what a source emits."""

    def __init__(self) -> None:
        self.events: list[LaneEvent] = []

    def __call__(self, event: LaneEvent) -> None:
        self.events.append(event)

    def loops(self) -> list[tuple[str, bool]]:
        return [(e.loop, e.present) for e in self.events if isinstance(e, LoopEvent)]

    def faults(self, kind: str | None = None) -> list[DeviceFault]:
        return [e for e in self.events if isinstance(e, DeviceFault) and kind in (None, e.kind)]


def gpio_cfg(**extra: Any) -> GpioLoopsConfig:
    return GpioLoopsConfig.model_validate(
        {
            "pins": {"entry": 5, "exit": 6},
            "debounce_ms": 30,
            "stuck_after_s": 60,
            "chatter_changes": 6,
            "chatter_window_s": 2.0,
        }
        | extra
    )


def test_gpio_presence_is_debounced_and_stamped_at_the_first_edge() -> None:
    async def main() -> None:
        clock = SteppedClock()
        gpio = SimGpio()
        panel = GpioLoopPanel(gpio)
        src = open_loop_source(gpio_cfg(), clock, io=gpio)
        lane = Lane()
        task = asyncio.create_task(src.run(lane))
        await clock.advance(0.1)
        assert lane.events == []
        assert src.presence() == {"entry": False, "exit": False}
        t0 = clock.now
        panel.bounce("entry", True, edges=4)
        await clock.advance(0.02)
        assert lane.loops() == []  # not yet settled
        await clock.advance(0.03)
        assert lane.loops() == [("entry", True)]
        ev = lane.events[0]
        assert isinstance(ev, LoopEvent)
        assert ev.mono == pytest.approx(t0)
        # a glitch shorter than the debounce is ignored
        panel.set_presence("exit", True)
        await clock.advance(0.01)
        panel.set_presence("exit", False)
        await clock.advance(0.1)
        assert lane.loops() == [("entry", True)]
        panel.set_presence("entry", False)
        await clock.advance(0.05)
        assert lane.loops() == [("entry", True), ("entry", False)]
        assert src.health().state is DeviceState.UP
        await stopped(task)

    run(main())


def test_gpio_edges_from_another_thread_are_handed_over() -> None:
    async def main() -> None:
        clock = SteppedClock()
        gpio = SimGpio()
        panel = GpioLoopPanel(gpio)
        src = open_loop_source(gpio_cfg(debounce_ms=0), clock, io=gpio)
        lane = Lane()
        task = asyncio.create_task(src.run(lane))
        await clock.advance(0.02)
        t = threading.Thread(target=panel.set_presence, args=("exit", True))
        t.start()
        t.join()
        await until(lambda: lane.loops() == [("exit", True)], what="event from thread")
        await stopped(task)
        panel.set_presence("exit", False)  # after the source stopped: ignored, no error
        await asyncio.sleep(0)
        assert lane.loops() == [("exit", True)]

    run(main())


def test_gpio_loop_occupied_at_start_is_reported() -> None:
    async def main() -> None:
        clock = SteppedClock()
        gpio = SimGpio()
        for pin in (5, 6):
            gpio.setup_input(pin)
        gpio.drive(5, False)  # entry occupied (active low) before the agent starts
        src = open_loop_source(gpio_cfg(), clock, io=gpio)
        lane = Lane()
        task = asyncio.create_task(src.run(lane))
        await clock.advance(0.1)
        assert lane.loops() == [("entry", True)]
        await stopped(task)

    run(main())


def test_gpio_stuck_loop_closes_and_reopens() -> None:
    async def main() -> None:
        clock = SteppedClock()
        gpio = SimGpio()
        panel = GpioLoopPanel(gpio)
        src = open_loop_source(gpio_cfg(stuck_after_s=5), clock, io=gpio)
        lane = Lane()
        task = asyncio.create_task(src.run(lane))
        await clock.advance(0.05)
        panel.stick("exit")
        await clock.advance(4.0, step=0.1)
        assert lane.faults() == []
        await clock.advance(1.5, step=0.1)
        (fault,) = lane.faults("stuck_loop")
        assert fault.active
        assert fault.device == "loops"
        assert "'exit'" in fault.detail
        assert src.health().state is DeviceState.DEGRADED
        panel.stick("exit", on=False)
        await clock.advance(0.1)
        assert lane.loops() == [("exit", True), ("exit", False)]
        assert [f.active for f in lane.faults("stuck_loop")] == [True, False]
        assert src.health().counters["stuck"] == 1
        await stopped(task)

    run(main())


def test_gpio_chatter_is_detected_and_clears_after_a_quiet_window() -> None:
    async def main() -> None:
        clock = SteppedClock()
        gpio = SimGpio()
        panel = GpioLoopPanel(gpio)
        src = open_loop_source(gpio_cfg(), clock, io=gpio)
        lane = Lane()
        task = asyncio.create_task(src.run(lane))
        await clock.advance(0.05)
        for k in range(8):
            panel.set_presence("entry", k % 2 == 0)
            await clock.advance(0.1)
        (fault,) = lane.faults("chatter")
        assert fault.active
        assert "'entry'" in fault.detail
        await clock.advance(2.5, step=0.1)
        assert [f.active for f in lane.faults("chatter")] == [True, False]
        await stopped(task)

    run(main())


def test_gpio_backend_needs_the_pin_bank() -> None:
    with pytest.raises(ConfigError, match="io="):
        open_loop_source(gpio_cfg(), SteppedClock())


def modbus_cfg(url: str, **extra: Any) -> ModbusLoopsConfig:
    return ModbusLoopsConfig.model_validate(
        {
            "url": url,
            "addresses": {"lane_in": 2, "stop_line": 9},
            "entry": "lane_in",
            "exit": "stop_line",
            "poll_interval_s": 0.01,
            "timeout_s": 0.1,
            "fault_after": 2,
            "stuck_after_s": 0.3,
            "reconnect_min_s": 0.02,
            "reconnect_max_s": 0.05,
        }
        | extra
    )


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_modbus_loop_card_presence_stuck_and_comms(transport: str) -> None:
    async def main() -> None:
        card = LoopCard(transport=transport, baud=115200, addresses={"lane_in": 2, "stop_line": 9})
        async with card:
            src = open_loop_source(modbus_cfg(card.url), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            await until(lambda: src.presence() == {"lane_in": False, "stop_line": False}, what="first poll")
            card.set_presence("lane_in", True)
            await until(lambda: lane.loops() == [("lane_in", True)], what="entry")
            card.set_presence("lane_in", False)
            card.set_presence("stop_line", True)
            await until(lambda: len(lane.loops()) == 3, what="exit")
            assert lane.loops()[1:] == [("lane_in", False), ("stop_line", True)]
            await until(lambda: len(lane.faults("stuck_loop")) == 1, what="stuck")
            card.set_presence("stop_line", False)
            await until(lambda: len(lane.faults("stuck_loop")) == 2, what="unstuck")
            card.server.silent = True
            await until(lambda: len(lane.faults("comms")) == 1, what="comms down")
            assert src.health().state is DeviceState.DOWN
            card.server.silent = False
            await until(lambda: len(lane.faults("comms")) == 2, what="comms up")
            assert not lane.faults()[-1].active
            assert src.health().counters["timeouts"] >= 2
            await stopped(task)

    run(main())


def test_modbus_active_low_card_with_debounce() -> None:
    async def main() -> None:
        card = LoopCard(addresses={"lane_in": 2, "stop_line": 9})
        async with card:
            card.set_presence("lane_in", True)  # active low: the bit is 1 when the loop is empty
            card.set_presence("stop_line", True)
            src = open_loop_source(modbus_cfg(card.url, active_low=True, debounce_ms=50), SystemClock())
            lane = Lane()
            task = asyncio.create_task(src.run(lane))
            await until(lambda: src.presence() == {"lane_in": False, "stop_line": False}, what="first poll")
            card.set_presence("lane_in", False)
            await until(lambda: lane.loops() == [("lane_in", True)], what="entry")
            assert lane.faults() == []
            await stopped(task)

    run(main())


@pytest.mark.parametrize("backend", ["gpio", "modbus"])
def test_every_loop_backend_keeps_the_source_contract(backend: str) -> None:
    """The same scenario on each backend of the table: a vehicle crosses, a loop sticks and unsticks."""
    from edge_agent.loops import BACKENDS

    assert set(BACKENDS) == {"gpio", "modbus"}

    async def main() -> None:
        lane = Lane()
        if backend == "gpio":
            gpio = SimGpio()
            panel = GpioLoopPanel(gpio)
            src = open_loop_source(gpio_cfg(stuck_after_s=1), SystemClock(), io=gpio)

            def occupy(name: str, on: bool) -> None:
                panel.set_presence({"lane_in": "entry", "stop_line": "exit"}[name], on)

            names = {"lane_in": "entry", "stop_line": "exit"}
            card = None
        else:
            card = LoopCard(addresses={"lane_in": 2, "stop_line": 9})
            await card.__aenter__()
            src = open_loop_source(modbus_cfg(card.url, stuck_after_s=1), SystemClock())

            def occupy(name: str, on: bool) -> None:
                assert card is not None
                card.set_presence(name, on)

            names = {"lane_in": "lane_in", "stop_line": "stop_line"}
        task = asyncio.create_task(src.run(lane))
        try:
            await until(lambda: all(v is False for v in src.presence().values()), what="first read")
            occupy("lane_in", True)
            await until(lambda: lane.loops() == [(names["lane_in"], True)], what="occupied")
            occupy("lane_in", False)
            await until(lambda: len(lane.loops()) == 2, what="clear")
            occupy("stop_line", True)
            await until(lambda: len(lane.faults("stuck_loop")) == 1, what="stuck")
            occupy("stop_line", False)
            await until(lambda: not lane.faults()[-1].active, what="unstuck")
            assert src.health().counters["changes"] >= 4
        finally:
            await stopped(task)
            if card is not None:
                await card.__aexit__(None, None, None)

    run(main())
