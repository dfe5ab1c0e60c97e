"""Induction loops as a lane event source: Modbus detector cards or GPIO inputs, two backends.

:data:`BACKENDS` names them (``modbus``: :class:`ModbusLoopSource`, polled and supervised;
``gpio``: :class:`GpioLoopSource`, woken by edges); :func:`open_loop_source` builds the one the config
selects. What they share -- debounce, faults, presence, health -- is their base, :class:`LoopSource`.

Every loop has a name (the config's ``entry`` and ``exit`` name the two the lane needs). Raw levels
become presence (``active_low`` inverts), then pass a debounce: a change counts once it has held for
``debounce_ms``; the :class:`~edge_agent.domain.LoopEvent` carries the time the level first changed,
so debounce delays the event but not its timestamp. Debouncing is done here, the same way for every
backend (a GPIO edge only wakes the source, which then re-reads the pin), and the pins are also
re-read every second in case an edge was lost.

Fault conditions, reported as :class:`~edge_agent.domain.DeviceFault`: ``stuck_loop`` (occupied
longer than ``stuck_after_s``), ``chatter`` (``chatter_changes`` changes within
``chatter_window_s``; cleared after a quiet window) and, for Modbus, ``comms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from drivers.backends import load_backend
from drivers.errors import ConfigError
from drivers.gpio.base import DigitalIO
from drivers.modbus.poller import Conditions, PollSupervisor
from drivers.modbus.regmap import Point, PointType, Table, decode, plan_reads
from edge_agent.clock import Clock, sleep_or_wake
from edge_agent.config.sensors import AnyLoopsConfig, GpioLoopsConfig, ModbusLoopsConfig
from edge_agent.domain import LoopEvent
from edge_agent.health import DeviceHealth, DeviceState
from edge_agent.polled import FaultReporter, supervised_link
from edge_agent.sources import Emit

log = logging.getLogger(__name__)

VEHICLE_AT_START = "vehicle_at_start"
"""Condition (red, like every loop fault) from start-up until every loop has been seen clear."""

RECONCILE_S = 1.0
"""GPIO: re-read every pin at least this often (lane seconds), in case an edge was missed."""


@dataclass(slots=True)
class _Loop:
    name: str
    present: bool | None = None  # debounced; None until first seen
    candidate: bool | None = None
    since: float = 0.0
    occupied_since: float | None = None
    changes: deque[float] = field(default_factory=deque)


BACKENDS: dict[str, str] = {
    "modbus": "edge_agent.loops:ModbusLoopSource",
    "gpio": "edge_agent.loops:GpioLoopSource",
}
"""Loop backend (the config's ``devices.loops.backend``) -> ``module:Class``."""


def open_loop_source(
    cfg: AnyLoopsConfig, clock: Clock, name: str = "loops", io: DigitalIO | None = None
) -> LoopSource:
    """The loop source ``cfg.backend`` names (``io``: the pin bank, for ``gpio``)."""
    cls = load_backend(BACKENDS, cfg.backend, "loops")
    return cast(LoopSource, cls(cfg, clock, name, io))


class LoopSource(FaultReporter):
    """Debounced loop presence changes and loop faults, whatever reads the loops (the backends' base)."""

    def __init__(self, cfg: AnyLoopsConfig, clock: Clock, name: str, where: Iterable[str]) -> None:
        self.name = name
        self._cfg = cfg
        self._clock = clock
        self._health = DeviceHealth(name, "loops")
        self._loops = {n: _Loop(n) for n in where}
        self._conditions = Conditions()
        self._emit: Emit | None = None
        self._sup: PollSupervisor | None = None
        self._active_low = cfg.active_low

    def health(self) -> DeviceHealth:
        """State, last error and counters (changes, chatter, stuck, and the Modbus link's)."""
        h = self._health
        sup = self._sup
        if sup is not None and sup.down:
            h.state = DeviceState.DOWN
        elif self._conditions.active or (sup is not None and sup.failures):
            h.state = DeviceState.DEGRADED
        elif any(lp.present is not None for lp in self._loops.values()):
            h.state = DeviceState.UP
        details = [d for _, d in self._conditions.active.values()]
        h.detail = "; ".join(details) or (sup.last_error if sup is not None and sup.failures else "")
        h.last_ok_mono = sup.last_ok if sup is not None else h.last_ok_mono
        return h

    def presence(self) -> dict[str, bool | None]:
        """Return the debounced presence of each loop (``None`` until first read)."""
        return {n: lp.present for n, lp in self._loops.items()}

    async def run(self, emit: Emit) -> None:
        """Watch the loops until cancelled."""
        self._emit = emit
        await self._watch()

    async def _watch(self) -> None:
        raise NotImplementedError

    # -- samples, debounce, faults -----------------------------------------------------------
    def _sample(self, lp: _Loop, present: bool, t: float) -> None:
        if present == lp.present:
            lp.candidate = None
        elif present != lp.candidate:
            lp.candidate, lp.since = present, t

    def _settle(self, now: float) -> float:
        """Accept changes that held for the debounce time; check faults; return the next deadline."""
        debounce = self._cfg.debounce_ms / 1000
        cfg = self._cfg
        deadline = now + RECONCILE_S
        for lp in self._loops.values():
            if lp.candidate is not None:
                if now - lp.since >= debounce:
                    self._accept(lp, lp.candidate, lp.since if lp.present is not None else now)
                else:
                    deadline = min(deadline, lp.since + debounce)
            key = f"stuck_loop:{lp.name}"
            if lp.present and lp.occupied_since is not None:
                held = now - lp.occupied_since
                if held >= cfg.stuck_after_s:
                    detail = f"loop {lp.name!r} occupied for {held:.0f} s"
                    if not self._conditions.is_active(key):
                        self._health.counters["stuck"] += 1
                        log.error("%s: %s", self.name, detail)
                    self._report(self._conditions.start(key, "stuck_loop", detail))
                else:
                    deadline = min(deadline, lp.occupied_since + cfg.stuck_after_s)
            key = f"chatter:{lp.name}"
            while lp.changes and now - lp.changes[0] > cfg.chatter_window_s:
                lp.changes.popleft()
            if self._conditions.is_active(key):
                if not lp.changes or now - lp.changes[-1] >= cfg.chatter_window_s:
                    self._report(self._conditions.end(key, f"loop {lp.name!r} quiet again"))
                else:
                    deadline = min(deadline, lp.changes[-1] + cfg.chatter_window_s)
            elif len(lp.changes) >= cfg.chatter_changes:
                detail = f"loop {lp.name!r}: {len(lp.changes)} changes in {cfg.chatter_window_s:g} s"
                self._health.counters["chatter"] += 1
                log.error("%s: chattering %s", self.name, detail)
                self._report(self._conditions.start(key, "chatter", detail))
                deadline = min(deadline, lp.changes[-1] + cfg.chatter_window_s)
        return deadline

    def _accept(self, lp: _Loop, present: bool, t: float) -> None:
        first = lp.present is None
        lp.present, lp.candidate = present, None
        lp.occupied_since = t if present else None
        if not present:
            self._report(self._conditions.end(f"stuck_loop:{lp.name}", f"loop {lp.name!r} clear again"))
            if all(other.present is False for other in self._loops.values()):
                self._report(self._conditions.end(VEHICLE_AT_START, "every loop clear: the lane is empty"))
        elif first:
            # occupied at start: a vehicle of unknown history (no passage, no reads) is in the lane
            detail = f"loop {lp.name!r} occupied at start: a vehicle of unknown history is in the lane"
            log.warning("%s: %s", self.name, detail)
            self._report(self._conditions.start(VEHICLE_AT_START, VEHICLE_AT_START, detail))
        if first and not present:
            return  # an empty loop at start-up is not news
        if not first:
            lp.changes.append(t)
        self._health.counters["changes"] += 1
        if self._emit is not None:
            self._emit(LoopEvent(lp.name, present, t))


class ModbusLoopSource(LoopSource):
    """Loops read from a Modbus detector card (polled, supervised; ``comms`` faults)."""

    def __init__(
        self, cfg: ModbusLoopsConfig, clock: Clock, name: str = "loops", io: DigitalIO | None = None
    ):
        super().__init__(cfg, clock, name, cfg.addresses)
        self._unit = cfg.unit
        self._points = [Point(n, Table(cfg.table), a, PointType.BOOL) for n, a in cfg.addresses.items()]
        self._plan = plan_reads(self._points, max_gap=64)
        _, self._sup = supervised_link(name, cfg, self._plan, clock, self._health.counters)

    async def _watch(self) -> None:
        assert self._sup is not None
        await self._sup.run(self._poll, self._comms_down, self._comms_up)

    async def _poll(self) -> None:
        assert self._sup is not None
        image = await self._sup.link.read_plan(self._plan, self._unit)
        now = self._clock.monotonic()
        for name, level in decode(self._points, image).items():
            self._sample(self._loops[name], bool(level) != self._active_low, now)
        self._settle(now)


class GpioLoopSource(LoopSource):
    """Loops read from GPIO inputs: an edge wakes the source, which re-reads the pin (and every second)."""

    def __init__(self, cfg: GpioLoopsConfig, clock: Clock, name: str = "loops", io: DigitalIO | None = None):
        if io is None:
            raise ConfigError(f"{name}: the gpio loop backend needs the pin bank (io=)")
        super().__init__(cfg, clock, name, cfg.pins)
        self._gpio = (io, cfg)
        self._wake = asyncio.Event()
        self._lane_loop: asyncio.AbstractEventLoop | None = None  # set while the GPIO watch runs

    async def _watch(self) -> None:
        await self._run_gpio()

    def _read_pins(self, io: DigitalIO, cfg: GpioLoopsConfig, now: float) -> None:
        for name, pin in cfg.pins.items():
            self._sample(self._loops[name], io.read(pin) != cfg.active_low, now)

    def _on_edge(self, pin: int, level: bool) -> None:
        """GPIO callback (any thread): note the time and wake the source on the lane loop."""
        lane_loop = self._lane_loop
        if lane_loop is None:  # not running (the protocol has no unwatch)
            return
        t = self._clock.monotonic()
        with contextlib.suppress(RuntimeError):  # the loop closed under a late callback
            lane_loop.call_soon_threadsafe(self._edge, pin, level, t)

    def _edge(self, pin: int, level: bool, t: float) -> None:
        for name, p in self._gpio[1].pins.items():
            if p == pin:
                self._health.counters["edges"] += 1
                self._sample(self._loops[name], level != self._active_low, t)
        self._wake.set()

    async def _run_gpio(self) -> None:
        io, cfg = self._gpio
        self._lane_loop = asyncio.get_running_loop()
        try:
            for pin in cfg.pins.values():
                io.setup_input(pin, pull_up=cfg.pull_up)
                io.watch(pin, self._on_edge, debounce_ms=0)
            self._read_pins(io, cfg, self._clock.monotonic())
            await self._watch_gpio(io, cfg)
        finally:
            self._lane_loop = None

    async def _watch_gpio(self, io: DigitalIO, cfg: GpioLoopsConfig) -> None:
        while True:
            self._wake.clear()  # edges from here on wake the next wait
            now = self._clock.monotonic()
            for lp in self._loops.values():  # confirm settled candidates against the pin itself
                settled = lp.candidate is not None and now - lp.since >= cfg.debounce_ms / 1000
                if settled and (io.read(cfg.pins[lp.name]) != cfg.active_low) != lp.candidate:
                    lp.candidate = None
            deadline = self._settle(now)
            if deadline - now >= RECONCILE_S:
                self._read_pins(io, cfg, now)
                deadline = self._settle(now)
            await self._wait(max(0.0, deadline - now))

    async def _wait(self, seconds: float) -> None:
        """Sleep ``seconds`` of lane time or until a GPIO edge arrives."""
        await sleep_or_wake(self._clock, seconds, self._wake)
