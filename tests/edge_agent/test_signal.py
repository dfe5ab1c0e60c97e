"""TrafficSignal by example: start, grant, revoke, faults, close, read-back, state file, stop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.errors import BackendUnavailable
from drivers.gpio.sim import PinChange, SimGpio
from edge_agent.config.signal import ReadbackConfig, SignalConfig, SignalPins, SimGpioConfig
from edge_agent.domain import SignalAspect
from edge_agent.signal import TrafficSignal, open_gpio
from tests.edge_agent.test_signal_support import AMBER_PIN, GREEN_PIN, RED_PIN, VirtualClock, check_history

pytestmark = pytest.mark.timeout(30)

RB_RED, RB_AMBER, RB_GREEN, BARRIER, SIGN = 5, 6, 13, 19, 26
RED, AMBER, GREEN = SignalAspect.RED, SignalAspect.AMBER, SignalAspect.GREEN

Scenario = Callable[[TrafficSignal, SimGpio, VirtualClock], Awaitable[None]]


def run_signal(cfg: SignalConfig, scenario: Scenario, *, check: bool = True, **kw: Any) -> SimGpio:
    """Enter a signal on a virtual clock, run ``scenario``, stop it (advancing time), check the pins."""
    clock = VirtualClock()
    loopback = dict(cfg.gpio.loopback) if isinstance(cfg.gpio, SimGpioConfig) else {}
    gpio = SimGpio(clock.monotonic, loopback=loopback)

    async def main() -> None:
        signal = TrafficSignal(cfg, gpio, clock, **kw)
        await signal.__aenter__()
        try:
            await clock.settle()
            await scenario(signal, gpio, clock)
        finally:  # stopping needs lane time to pass (amber), also after a failed assertion
            closing = asyncio.ensure_future(signal.aclose())
            while not closing.done():
                await clock.advance(0.5)
            await closing
        assert signal.aspect is RED
        assert not signal.healthy

    asyncio.run(main())
    if check:
        check_history(gpio.history, cfg)
    return gpio


def lit(io: SimGpio) -> set[str]:
    lamps = ((RED_PIN, "red"), (AMBER_PIN, "amber"), (GREEN_PIN, "green"))
    return {name for pin, name in lamps if io.read(pin)}


def test_red_from_the_first_instant_and_at_stop() -> None:
    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.aspect is RED
        assert lit(io) == {"red"}

    io = run_signal(SignalConfig(), scenario)
    assert io.history[0] == PinChange(RED_PIN, True, 1000.0)
    assert {c.pin: c.value for c in io.history[:3]} == {RED_PIN: True, AMBER_PIN: False, GREEN_PIN: False}


def test_active_low_board_is_driven_inverted() -> None:
    cfg = SignalConfig(pins=SignalPins(active_low=True))

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert io.read(RED_PIN) is False  # energised
        assert io.read(GREEN_PIN) is True
        assert signal.grant("p1")
        await clock.advance(2.0)
        assert io.read(GREEN_PIN) is False
        assert io.read(RED_PIN) is True

    io = run_signal(cfg, scenario)
    assert io.history[0].pin == RED_PIN
    assert io.history[0].value is False


def test_grant_then_revoke_runs_the_full_cycle_with_barrier() -> None:
    cfg = SignalConfig(amber_s=3.0, dark_ms=20, min_red_s=1.0, pins=SignalPins(barrier=BARRIER))
    changes: list[tuple[SignalAspect, str]] = []

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.grant("p1")
        await clock.advance(0.5)
        assert signal.aspect is RED  # min_red_s since start not yet over
        await clock.advance(0.52)
        assert signal.aspect is GREEN
        assert io.read(BARRIER)
        assert signal.granted == "p1"
        signal.revoke("p2")  # not the current grant: no-op
        await clock.advance(0.1)
        assert signal.aspect is GREEN
        signal.revoke("p1")
        await clock.advance(0.03)
        assert signal.aspect is AMBER
        assert io.read(BARRIER)  # the truck under it is not hit during amber
        await clock.advance(2.9)
        assert signal.aspect is AMBER
        await clock.advance(0.2)
        assert signal.aspect is RED
        assert not io.read(BARRIER)

    run_signal(cfg, scenario, on_change=lambda a, r: changes.append((a, r)))
    assert [a for a, _ in changes] == [RED, GREEN, AMBER, RED]
    assert changes[1][1] == "release p1 by lane"


def test_grants_queue_and_each_green_is_separated_by_red() -> None:
    cfg = SignalConfig(amber_s=1.0, dark_ms=20, min_red_s=2.0)

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.grant("p1")
        assert signal.grant("p2")
        await clock.advance(2.1)
        assert signal.granted == "p1"
        assert signal.aspect is GREEN
        signal.revoke("p1")
        await clock.advance(1.1)
        assert signal.aspect is RED
        await clock.advance(1.0)
        assert signal.aspect is RED  # min_red_s between two trucks' greens
        await clock.advance(1.1)
        assert signal.aspect is GREEN
        assert signal.granted == "p2"

    run_signal(cfg, scenario)


def test_fault_withdraws_green_through_amber_and_needs_a_new_grant() -> None:
    cfg = SignalConfig(amber_s=2.0, dark_ms=0, min_red_s=0.0)
    faults: list[tuple[str, str]] = []

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.grant("p1")
        await clock.advance(0.1)
        assert signal.aspect is GREEN
        signal.fault("sensor_stale:rfid", "no reads for 30 s")
        signal.fault("sensor_stale:rfid", "still none")  # reported once
        await clock.settle()
        assert signal.aspect is AMBER
        assert not signal.grant("p2")
        await clock.advance(2.0)
        assert signal.aspect is RED
        signal.clear_fault("sensor_stale:rfid")
        await clock.advance(1.0)
        assert signal.aspect is RED  # the old grant is gone
        assert signal.grant("p1")
        await clock.advance(0.1)
        assert signal.aspect is GREEN

    run_signal(cfg, scenario, on_fault=lambda n, d: faults.append((n, d)))
    assert faults == [("sensor_stale:rfid", "no reads for 30 s")]


def test_closed_lane_lights_the_sign_and_refuses_green() -> None:
    cfg = SignalConfig(amber_s=0.5, dark_ms=0, min_red_s=0.0, pins=SignalPins(closed_sign=SIGN))

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert not io.read(SIGN)
        signal.set_closed(True, "officer 12: lane closed for works")
        assert io.read(SIGN)
        assert signal.closed
        assert not signal.grant("p1")
        signal.set_closed(False, "works done")
        assert not io.read(SIGN)
        assert signal.grant("p1")
        await clock.advance(0.1)
        assert signal.aspect is GREEN

    run_signal(cfg, scenario)


def test_hold_and_passage_block() -> None:
    cfg = SignalConfig(amber_s=0.5, dark_ms=0, min_red_s=0.0)

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        signal.hold("officer 7")
        assert not signal.grant("p1")
        signal.unhold()
        signal.block("p1", "officer 7 wants it inspected")
        assert not signal.grant("p1")
        assert signal.grant("p1", by="officer:7")  # an officer may still release it
        await clock.advance(0.1)
        assert signal.aspect is GREEN

    run_signal(cfg, scenario)


def test_stop_during_green_goes_through_amber() -> None:
    cfg = SignalConfig(amber_s=3.0, dark_ms=20, min_red_s=0.0)

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.grant("p1")
        await clock.advance(0.1)
        assert signal.aspect is GREEN

    io = run_signal(cfg, scenario)
    lamps = [(c.pin, c.value) for c in io.history if c.pin in (RED_PIN, AMBER_PIN, GREEN_PIN)]
    assert lamps[-4:] == [(GREEN_PIN, False), (AMBER_PIN, True), (AMBER_PIN, False), (RED_PIN, True)]


def test_exception_in_the_lane_still_ends_red() -> None:
    clock = VirtualClock()
    io = SimGpio(clock.monotonic)
    cfg = SignalConfig(amber_s=1.0, dark_ms=0, min_red_s=0.0)

    async def main() -> None:
        signal = TrafficSignal(cfg, io, clock)

        async def lane() -> None:
            async with signal:
                signal.grant("p1")
                await clock.advance(0.1)
                assert signal.aspect is GREEN
                raise RuntimeError("lane bug")

        task = asyncio.ensure_future(lane())
        while not task.done():
            await clock.advance(0.25)
        with pytest.raises(RuntimeError, match="lane bug"):
            await task
        assert signal.aspect is RED
        await signal.aclose()  # twice is safe

    asyncio.run(main())
    check_history(io.history, cfg)


def readback_cfg(**kw: Any) -> SignalConfig:
    loop = {RED_PIN: RB_RED, AMBER_PIN: RB_AMBER, GREEN_PIN: RB_GREEN}
    return SignalConfig(
        gpio=SimGpioConfig(loopback=loop),
        readback=ReadbackConfig(red=RB_RED, amber=RB_AMBER, green=RB_GREEN, active_low=False, settle_ms=200),
        amber_s=1.0,
        dark_ms=20,
        min_red_s=0.0,
        pins=SignalPins(closed_sign=SIGN),
        **kw,
    )


def test_healthy_lamps_raise_no_fault() -> None:
    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        for _ in range(3):
            assert signal.grant("p")
            await clock.advance(1.0)
            signal.revoke("p")
            await clock.advance(2.0)
        assert signal.faults == set()

    run_signal(readback_cfg(), scenario)


def test_dead_green_lamp_closes_the_lane() -> None:
    faults: list[tuple[str, str]] = []

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        io.disconnect(GREEN_PIN)  # the green lamp's filament is gone
        assert signal.grant("p1")
        await clock.advance(0.1)
        assert signal.aspect is GREEN
        await clock.advance(0.3)  # settle_ms passes, next poll sees it
        assert signal.faults == {"lamp_mismatch:green"}
        assert signal.closed
        assert io.read(SIGN)
        await clock.advance(1.2)
        assert signal.aspect is RED
        assert not signal.grant("p2")

    run_signal(readback_cfg(), scenario, on_fault=lambda n, d: faults.append((n, d)))
    assert len(faults) == 1
    assert faults[0][0] == "lamp_mismatch:green"
    assert "commanded on but reads dark" in faults[0][1]


def test_welded_amber_relay_is_a_fault_until_it_reads_right_and_lane_stays_closed() -> None:
    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        io.disconnect(AMBER_PIN)
        io.drive(RB_AMBER, True)  # amber contact welded shut
        await clock.advance(0.5)
        assert "lamp_mismatch:amber" in signal.faults
        io.drive(RB_AMBER, False)  # repaired
        await clock.advance(0.2)
        assert signal.faults == set()
        assert signal.closed  # an officer must open the lane again
        signal.set_closed(False, "technician replaced relay")
        assert signal.grant("p1")

    run_signal(readback_cfg(), scenario)


def test_closed_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "signal-state.json"
    cfg = SignalConfig(state_file=state, amber_s=0.0, dark_ms=0, min_red_s=0.0)

    async def close_it(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        signal.set_closed(True, "officer 12")
        assert await signal.flush_state()
        assert json.loads(state.read_text())["closed"] is True

    async def after_restart(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.closed
        assert not signal.grant("p1")

    run_signal(cfg, close_it)
    assert json.loads(state.read_text())["pid"] is None  # written at stop
    run_signal(cfg, after_restart)

    state.write_text("{not json")
    run_signal(cfg, after_restart)  # unreadable state: fail safe, start closed


def test_unwritable_state_file_is_counted_not_fatal(tmp_path: Path) -> None:
    state = tmp_path / "missing-dir" / "state.json"
    cfg = SignalConfig(state_file=state, amber_s=0.0, dark_ms=0, min_red_s=0.0)
    seen: dict[str, int] = {}

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        signal.set_closed(True, "x")
        signal.set_closed(False, "y")
        assert signal.grant("p1")
        await clock.advance(0.1)
        assert signal.aspect is GREEN
        await signal.flush_state()
        seen.update(signal.counters)

    run_signal(cfg, scenario)
    assert seen["state_write_errors"] >= 1


def test_open_gpio_builds_the_configured_backend() -> None:
    io = open_gpio(SimGpioConfig(loopback={RED_PIN: RB_RED}))
    assert isinstance(io, SimGpio)
    io.setup_input(RB_RED)
    io.setup_output(RED_PIN, initial=False)
    assert io.read(RB_RED) is False
    io.close()
    with pytest.raises(BackendUnavailable, match='backend = "sim"'):
        open_gpio(SignalConfig.model_validate({"gpio": {"backend": "rpigpio"}}).gpio)


def test_pins_must_be_distinct() -> None:
    with pytest.raises(ValueError, match=r"already used by pins\.red"):
        SignalConfig.model_validate({"pins": {"red": 5}, "readback": {"red": 5}})


def test_no_green_outlasts_max_green() -> None:
    cfg = SignalConfig(max_green_s=20.0)

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.grant("p1", by="officer:o-1")  # a green nobody revokes
        await clock.advance(5.0)
        assert signal.aspect is GREEN
        await clock.advance(17.0)  # past 20 s of green (lit after min_red_s): amber, then red
        assert signal.aspect in (AMBER, RED)
        await clock.advance(cfg.amber_s + 1.0)
        assert signal.aspect is RED
        assert signal.granted is None
        assert signal.counters["green_expired"] == 1
        await clock.advance(60.0)
        assert signal.aspect is RED  # it does not come back by itself

    io = run_signal(cfg, scenario)
    green_on = [c.at for c in io.history if c.pin == GREEN_PIN and c.value]
    green_off = [c.at for c in io.history if c.pin == GREEN_PIN and not c.value and c.at > green_on[0]]
    assert len(green_on) == 1 and green_off[0] - green_on[0] <= cfg.max_green_s + 0.1


def test_lamps_lost_starts_again_from_red_without_amber() -> None:
    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.grant("p1")
        await clock.advance(2.0)
        assert signal.aspect is GREEN
        before = len(io.history)
        signal.lamps_lost("board forced red")
        await clock.advance(10.0)
        assert signal.aspect is RED and signal.granted is None
        after = io.history[before:]
        assert not any(c.pin == AMBER_PIN and c.value for c in after)  # no amber after the board's red

    # green straight to red is the exception the checker would refuse: the board, not us, cut the amber
    run_signal(SignalConfig(), scenario, check=False)


def test_a_sequencer_crash_is_a_fault_reported_like_every_other() -> None:
    faults: list[tuple[str, str]] = []

    async def scenario(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        def broken() -> bool:
            raise RuntimeError("boom")

        signal._keep_green = broken  # type: ignore[method-assign]  # the sequencer's own code fails
        assert signal.grant("p1")
        await clock.advance(2.0)  # green comes on, then the sequencer fails on its next step
        assert signal.aspect is RED
        assert "signal" in signal.faults
        assert not signal.healthy  # the heartbeat stops: the external fail-safe holds red too

    # a crashed sequencer cuts straight to red (no dark gap): the history checker would refuse that
    run_signal(
        SignalConfig(), scenario, check=False, on_fault=lambda name, detail: faults.append((name, detail))
    )
    assert faults and faults[0][0] == "signal" and "boom" in faults[0][1]


def test_hold_survives_a_restart(tmp_path: Path) -> None:
    cfg = SignalConfig(state_file=tmp_path / "state.json")

    async def hold_it(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        signal.hold("officer 9: inspect")

    async def after_restart(signal: TrafficSignal, io: SimGpio, clock: VirtualClock) -> None:
        assert signal.held
        assert not signal.grant("p1")
        signal.unhold()
        assert signal.grant("p2")

    run_signal(cfg, hold_it)
    run_signal(cfg, after_restart)
