"""Hypothesis stateful proof of the signal's invariants on the recorded pin history of SimGpio."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from drivers.gpio.sim import PinChange, SimGpio
from edge_agent.config.signal import SignalConfig
from edge_agent.domain import SignalAspect
from edge_agent.signal import TrafficSignal
from tests.edge_agent.test_signal_support import GREEN_PIN, NAMES, RED_PIN, VirtualClock, check_history

PIDS = st.sampled_from(["p1", "p2", "p3"])
FAULTS = st.sampled_from(["loop_lag", "sensor_stale:rfid", "lamp_mismatch:green"])


class SignalMachine(RuleBasedStateMachine):
    """Drive grant/revoke/fault/close/hold/time and check the pins after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = VirtualClock()
        self.io = SimGpio(self.clock.monotonic)
        self.signal: TrafficSignal | None = None
        self.cfg = SignalConfig()
        self.grants: list[str] = []
        self.faults: set[str] = set()
        self.closed = False
        self.held = False
        self.blocked: set[str] = set()
        self.seen = 0
        self.green_for: str | None = None
        self.green_on_at: float | None = None
        self.expired = 0

    @initialize(
        amber=st.sampled_from([0.0, 0.5, 3.0]),
        dark=st.sampled_from([0, 20, 300]),
        min_red=st.sampled_from([0.0, 1.0]),
    )
    def start(self, amber: float, dark: int, min_red: float) -> None:
        self.cfg = SignalConfig(amber_s=amber, dark_ms=dark, min_red_s=min_red)
        self.signal = TrafficSignal(self.cfg, self.io, self.clock)
        self.loop.run_until_complete(self.signal.__aenter__())
        first = [c for c in self.io.history if c.pin in NAMES]
        assert first[0] == PinChange(RED_PIN, True, self.clock.now), "red is set up first, lit"
        self.run(self.clock.settle())

    @property
    def allowed(self) -> bool:
        return not (self.closed or self.faults or self.held)

    def run(self, coro: object) -> None:
        self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def sig(self) -> TrafficSignal:
        assert self.signal is not None
        return self.signal

    @rule(pid=PIDS)
    def grant(self, pid: str) -> None:
        expected = self.allowed and pid not in self.blocked
        assert self.sig().grant(pid) is expected
        if expected and pid not in self.grants:
            self.grants.append(pid)
        self.run(self.clock.settle())

    @rule(pid=PIDS)
    def officer_release(self, pid: str) -> None:
        assert self.sig().grant(pid, by="officer:7") is self.allowed
        if self.allowed and pid not in self.grants:
            self.grants.append(pid)
        self.run(self.clock.settle())

    @rule(pid=PIDS)
    def revoke(self, pid: str) -> None:
        self.sig().revoke(pid)
        self.grants = [g for g in self.grants if g != pid]
        self.run(self.clock.settle())

    @rule(pid=PIDS)
    def block(self, pid: str) -> None:
        self.sig().block(pid, "officer says no")
        self.blocked.add(pid)
        self.grants = [g for g in self.grants if g != pid]
        self.run(self.clock.settle())

    @rule(name=FAULTS)
    def fault(self, name: str) -> None:
        self.sig().fault(name, "test")
        self.faults.add(name)
        self.grants.clear()
        self.run(self.clock.settle())

    @rule(name=FAULTS)
    def clear_fault(self, name: str) -> None:
        self.sig().clear_fault(name)
        self.faults.discard(name)
        self.run(self.clock.settle())

    @rule(closed=st.booleans())
    def set_closed(self, closed: bool) -> None:
        self.sig().set_closed(closed, "test")
        self.closed = closed
        if closed:
            self.grants.clear()
        self.run(self.clock.settle())

    @rule()
    def hold(self) -> None:
        self.sig().hold("officer")
        self.held = True
        self.grants.clear()
        self.run(self.clock.settle())

    @rule()
    def unhold(self) -> None:
        self.sig().unhold()
        self.held = False
        self.run(self.clock.settle())

    @rule(dt=st.floats(min_value=0.0, max_value=4.0, allow_nan=False))
    def advance(self, dt: float) -> None:
        self.run(self.clock.advance(dt))

    @precondition(lambda self: self.signal is not None)
    @rule()
    def wait_until_steady(self) -> None:
        """Liveness: after a full cycle, green is lit exactly when it should be."""
        cycle = self.cfg.amber_s + 2 * self.cfg.dark_ms / 1000 + self.cfg.min_red_s + 0.01
        self.run(self.clock.advance(cycle))
        self.run(self.clock.advance(cycle))
        if self.sig().counters["green_expired"] > self.expired:  # a green ran out meanwhile: let it finish
            self.run(self.clock.advance(cycle))
        self._take_expiry(self.io.history[self.seen :])
        want_green = self.allowed and bool(self.grants)
        assert self.sig().aspect is (SignalAspect.GREEN if want_green else SignalAspect.RED)

    def _take_expiry(self, new: list[PinChange]) -> None:
        """``max_green_s`` ended a green: the model drops its grant (after checking it lasted that long)."""
        sig = self.sig()
        if sig.counters["green_expired"] <= self.expired:
            return
        self.expired = sig.counters["green_expired"]
        assert self.green_on_at is not None and self.green_for is not None
        off = next(c.at for c in new if c.pin == GREEN_PIN and not c.value and c.at >= self.green_on_at)
        assert off - self.green_on_at >= self.cfg.max_green_s - 1e-6, "green ended before max_green_s"
        self.grants = [g for g in self.grants if g != self.green_for]

    @invariant()
    def pins_are_safe(self) -> None:
        if self.signal is None:
            return
        sig = self.sig()
        assert sig.healthy
        check_history(self.io.history, self.cfg)
        new = self.io.history[self.seen :]
        self.seen = len(self.io.history)
        green_came_on = any(c.pin == GREEN_PIN and c.value for c in new)
        self._take_expiry(new)
        if sig.aspect is SignalAspect.GREEN and self.green_on_at is not None and not green_came_on:
            assert self.clock.now - self.green_on_at <= self.cfg.max_green_s + 0.01, "green past max_green_s"
        if green_came_on or sig.aspect is SignalAspect.GREEN:
            assert self.allowed, "green while closed, faulted or held"
            assert self.grants, "green without a grant"
            assert sig.granted == self.grants[0]
        if green_came_on:
            self.green_for = self.grants[0]
            self.green_on_at = max(c.at for c in new if c.pin == GREEN_PIN and c.value)
        if sig.aspect is SignalAspect.GREEN:
            assert self.green_for == self.grants[0], "one green served two passages"
        assert sig.closed is self.closed
        assert sig.faults == self.faults

    def teardown(self) -> None:
        if self.signal is not None:
            sig = self.signal

            async def stop() -> None:
                closing = asyncio.ensure_future(sig.aclose())
                while not closing.done():
                    await self.clock.advance(1.0)
                await closing

            self.run(stop())
            assert sig.aspect is SignalAspect.RED
            check_history(self.io.history, self.cfg)
            self.run(sig.aclose())  # twice is safe
        self.loop.close()


SignalMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestSignalInvariants = SignalMachine.TestCase
