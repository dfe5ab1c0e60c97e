"""The lane signal's sequencer: the one place that drives the lamps and enforces their invariants.

Split by job: what may be lit now and why not is the pure policy (:mod:`edge_agent.signal_policy`);
the lamp read-back monitor is :mod:`edge_agent.lamp_readback`; the durable state file is
:mod:`edge_agent.signal_state`; this module sequences the lamps over time.

Invariants (proved by ``tests/edge_agent/test_signal_stateful.py`` on the recorded pin history):

* never two lamps lit: every change is break-before-make, with ``dark_ms`` of darkness between;
* green is switched on only for a current grant (a lane release or an officer's release) while the
  lane is open, no fault is active and no officer hold is on;
* green is always left through amber held for at least ``amber_s``, then red (a truck already
  committed to the stop line must not meet a sudden red); amber always runs to red, never back to
  green; red is shown at least ``min_red_s`` before the next green;
* red at start (outputs are set up red from the first instant), at stop, on any fault (a stale
  sensor, loop lag, a lamp read-back mismatch, a GPIO error), when the lane is closed or held.

A fault, close or hold also withdraws every grant: green never comes back by itself once a fault
clears; the lane must grant again. Only a failure of the signal's own sequencer (or a second
cancellation while stopping) cuts straight to red; a dead process is the external watchdog's job
(:mod:`edge_agent.watchdog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.gpio import open_backend
from drivers.gpio.base import DigitalIO
from edge_agent.clock import Clock, sleep_or_wake
from edge_agent.config.signal import GpioConfig, SignalConfig
from edge_agent.domain import SignalAspect
from edge_agent.lamp_readback import LampReadback
from edge_agent.signal_policy import Refusal, SignalState, fail_safe_window_s, refusal
from edge_agent.signal_state import StateFile, read_state

log = logging.getLogger(__name__)

OnChange = Callable[[SignalAspect, str], None]
"""Called with (new aspect, reason) whenever a lamp comes on (red, amber or green)."""
OnFault = Callable[[str, str], None]
"""Called with (fault name, detail) when a fault becomes active (e.g. ``lamp_mismatch:green``)."""

RED, AMBER, GREEN, DARK = SignalAspect.RED, SignalAspect.AMBER, SignalAspect.GREEN, SignalAspect.DARK
LAMPS = (RED, AMBER, GREEN)
_MAX_BLOCKED = 256


def open_gpio(cfg: GpioConfig) -> DigitalIO:
    """Open the GPIO backend the config selects (imported only now; see :data:`drivers.gpio.BACKENDS`)."""
    return open_backend(cfg.backend, **cfg.model_dump(exclude={"backend"}))


class TrafficSignal:
    """The lane signal over a :class:`~drivers.gpio.base.DigitalIO`: ``async with TrafficSignal(...)``."""

    def __init__(
        self,
        cfg: SignalConfig,
        io: DigitalIO,
        clock: Clock,
        *,
        on_change: OnChange | None = None,
        on_fault: OnFault | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_change = on_change
        self.on_fault = on_fault
        self.counters: Counter[str] = Counter()
        self._io = io
        self._clock = clock
        self._pins = {RED: cfg.pins.red, AMBER: cfg.pins.amber, GREEN: cfg.pins.green}
        self._lit: SignalAspect | None = None
        self._changed_at = dict.fromkeys(LAMPS, 0.0)
        self._red_since = 0.0
        self._grants: list[tuple[str, str]] = []  # (passage_id, granted by), head = current
        self._green_for: str | None = None  # the one passage the lit green serves
        self._blocked: OrderedDict[str, str] = OrderedDict()
        self._faults: dict[str, str] = {}
        self._closed_reason: str | None = None
        self._hold_reason: str | None = None
        self._stopping = False
        self._entered = False
        self._exited = False
        self._history: deque[tuple[float, SignalAspect]] = deque(maxlen=1000)
        self._green_since = 0.0  # lane time the current green came on
        self._lost: str | None = None  # set when the fail-safe may have forced red behind our back
        self._stall_s = fail_safe_window_s(cfg.watchdog)
        self._state_file = StateFile(cfg.state_file, self.counters) if cfg.state_file is not None else None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._readback_task: asyncio.Task[None] | None = None
        self._readback: LampReadback | None = None

    # --- state ------------------------------------------------------------------------------
    @property
    def aspect(self) -> SignalAspect:
        """The lamp lit now (``DARK`` only during a break-before-make gap)."""
        return self._lit or DARK

    @property
    def closed(self) -> bool:
        """Whether the lane is closed."""
        return self._closed_reason is not None

    @property
    def held(self) -> bool:
        """Whether an officer hold is on."""
        return self._hold_reason is not None

    @property
    def faults(self) -> set[str]:
        """Names of the active faults."""
        return set(self._faults)

    @property
    def granted(self) -> str | None:
        """The passage the current grant is for (green shows, or will, for it)."""
        return self._grants[0][0] if self._grants else None

    @property
    def healthy(self) -> bool:
        """The sequencer runs (the heartbeat and systemd watchdog depend on it)."""
        running = self._task is not None and not self._task.done() and not self._stopping
        return running and self._lost is None  # no heartbeat until the lamps are red again

    @property
    def history(self) -> list[tuple[float, SignalAspect]]:
        """Recent ``(lane time, aspect)`` changes, oldest first (DARK gaps included)."""
        return list(self._history)

    def status(self) -> dict[str, Any]:
        """Return a JSON-ready view for health messages and the CLI."""
        return {
            "aspect": self.aspect.value,
            "closed": self.closed,
            "closed_reason": self._closed_reason,
            "held": self.held,
            "hold_reason": self._hold_reason,
            "faults": dict(sorted(self._faults.items())),
            "granted": self.granted,
        }

    def refusal(self, passage_id: str | None = None, *, by: str = "lane") -> Refusal | None:
        """Why green may not be given now (for ``passage_id``, granted ``by``), or None if it may.

        The pure policy (:func:`edge_agent.signal_policy.refusal`) on the sequencer's state: the lane
        asks it before it commits a release, so what is recorded is what the truck sees.
        """
        running = self._task is not None and not self._task.done() and self._lost is None
        state = SignalState(
            running, self._stopping, self._closed_reason, self._faults, self._hold_reason, self._blocked
        )
        return refusal(state, passage_id, by)

    # --- commands (all synchronous, applied by the sequencer task) --------------------------
    def grant(self, passage_id: str, *, by: str = "lane") -> bool:
        """Show green for ``passage_id`` if allowed; True if green is (or will be) shown for it.

        Grants queue in order: a second grant shows green after the first is revoked and red has
        been shown for ``min_red_s``. ``by`` names who released (``"lane"`` or an officer); a
        passage an officer held is refused unless an officer grants it.
        """
        if not passage_id:
            raise ValueError("passage_id must not be empty")
        why_not = self.refusal(passage_id, by=by)
        if why_not is not None:
            self.counters["grant_refused"] += 1
            log.info("green refused for passage %s: %s", passage_id, why_not.detail)
            return False
        if all(pid != passage_id for pid, _ in self._grants):
            self._grants.append((passage_id, by))
            self._wake.set()
        return True

    def revoke(self, passage_id: str) -> None:
        """``passage_id`` has passed or lost its release: amber then red if it held the green."""
        self._grants = [g for g in self._grants if g[0] != passage_id]
        self._wake.set()

    def block(self, passage_id: str, reason: str) -> None:
        """Officer hold on one passage: withdraw its grant and refuse the lane's grants for it."""
        self._blocked[passage_id] = reason
        while len(self._blocked) > _MAX_BLOCKED:
            self._blocked.popitem(last=False)
        self.revoke(passage_id)

    def fault(self, name: str, detail: str) -> None:
        """Raise fault ``name``: every grant is withdrawn, green goes through amber to red."""
        new = name not in self._faults
        self._faults[name] = detail
        self._withdraw_all()
        if new:
            self.counters[f"fault:{name}"] += 1
            log.warning("signal fault %s: %s", name, detail)
            self._persist()
            if self.on_fault is not None:
                try:
                    self.on_fault(name, detail)
                except Exception:
                    log.exception("on_fault callback failed for %s", name)

    def clear_fault(self, name: str) -> None:
        """End fault ``name`` (green then needs a new grant)."""
        if self._faults.pop(name, None) is not None:
            log.info("signal fault %s cleared", name)
            self._persist()
            self._wake.set()

    def set_closed(self, closed: bool, reason: str) -> None:
        """Close (red, sign on, grants withdrawn) or open the lane."""
        if closed:
            self._closed_reason = reason or "closed"
            self._withdraw_all()
        elif self._closed_reason is not None:
            log.info("lane opened: %s", reason)
            self._closed_reason = None
        if self.cfg.pins.closed_sign is not None and self._entered and not self._exited:
            self._write(self.cfg.pins.closed_sign, closed)
        self._persist()
        self._wake.set()

    def hold(self, reason: str) -> None:
        """Officer hold: red until :meth:`unhold`; grants withdrawn."""
        self._hold_reason = reason or "hold"
        self._withdraw_all()
        self._persist()

    def unhold(self) -> None:
        """Lift the officer hold (green needs a new grant)."""
        if self._hold_reason is not None:
            self._hold_reason = None
            self._persist()
            self._wake.set()

    def lamps_lost(self, reason: str) -> None:
        """The external fail-safe may have forced red while this process was frozen: red is the truth.

        Every grant is withdrawn and red is commanded at once -- no amber after the board's red --
        and the next green waits ``min_red_s`` from now, as after any red.
        """
        self.counters["lamps_lost"] += 1
        log.warning("signal: lamps presumed forced red by the fail-safe (%s): starting from red", reason)
        self._lost = reason
        self._withdraw_all()
        if self._entered and not self._exited:
            self._light(None, reason)  # lamps off now; red after the dark gap (the sequencer)

    def _withdraw_all(self) -> None:
        if self._grants:
            log.info("grants withdrawn: %s", ", ".join(pid for pid, _ in self._grants))
        self._grants.clear()
        self._wake.set()

    # --- outputs ------------------------------------------------------------------------------
    def _write(self, pin: int, on: bool) -> None:
        try:
            self._io.write(pin, on != self.cfg.pins.active_low)
        except Exception as exc:  # a lost relay board must not kill the signal: it faults red
            self.counters["gpio_errors"] += 1
            if "gpio" not in self._faults:
                self.fault("gpio", f"writing pin {pin}: {exc}")

    def _light(self, lamp: SignalAspect | None, reason: str) -> None:
        """Break before make: the lit lamp goes off, then ``lamp`` (if any) comes on."""
        now = self._clock.monotonic()
        for other in LAMPS:
            if other is not lamp and self._lit is other:
                if other is GREEN:
                    self._green_for = None
                self._write(self._pins[other], False)
                self._changed_at[other] = now
                self._lit = None
        if lamp is not None and self._lit is not lamp:
            self._write(self._pins[lamp], True)
            self._changed_at[lamp] = now
            self._lit = lamp
        barrier = self.cfg.pins.barrier
        if barrier is not None and lamp in (GREEN, RED):
            self._write(barrier, lamp is GREEN)
        if lamp is RED:
            self._red_since = now
        self._history.append((now, self.aspect))
        if lamp is not None and self.on_change is not None:
            try:
                self.on_change(lamp, reason)
            except Exception:
                log.exception("on_change callback failed")

    def _emergency_red(self, reason: str) -> None:
        """Straight to red, no amber: only when the sequencer itself cannot run any more."""
        log.error("signal to red at once: %s", reason)
        self._light(None, reason)
        self._light(RED, reason)

    # --- the sequencer --------------------------------------------------------------------
    def _want_green(self) -> bool:
        return bool(self._grants) and self.refusal() is None

    def _keep_green(self) -> bool:
        """Green stays only for the passage it came on for: each truck gets its own green."""
        return self._want_green() and self._grants[0][0] == self._green_for

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` of lane time, or less if something changes."""
        await sleep_or_wake(self._clock, seconds, self._wake)

    async def _to_red(self, reason: str) -> None:
        dark = self.cfg.dark_ms / 1000.0
        self._light(None, reason)
        await self._clock.sleep(dark)
        if self.cfg.amber_s > 0:
            self._light(AMBER, reason)
            await self._clock.sleep(self.cfg.amber_s)
            self._light(None, reason)
            await self._clock.sleep(dark)
        self._light(RED, reason)

    async def _to_green(self) -> None:
        self._light(None, "green requested")
        wall = time.monotonic()
        await self._clock.sleep(self.cfg.dark_ms / 1000.0)
        if time.monotonic() - wall > self.cfg.dark_ms / 1000.0 + self._stall_s:
            # the process stalled in the gap: the fail-safe may have shown red meanwhile
            self.lamps_lost("stalled before green")
        elif self._want_green():
            pid, by = self._grants[0]
            self._green_for = pid
            self._green_since = self._clock.monotonic()
            self._light(GREEN, f"release {pid} by {by}")
            return
        self._light(RED, "green withdrawn during the dark gap")

    async def _resync_red(self) -> None:
        """Command what the fail-safe shows (red), break-before-make and without amber."""
        reason, self._lost = self._lost or "lamps lost", None
        self._light(None, reason)
        await self._clock.sleep(self.cfg.dark_ms / 1000.0)
        self._light(RED, reason)

    def _expire_green(self) -> None:
        """The green outlasted ``max_green_s``: withdraw its grant (amber, then red)."""
        pid = self._green_for
        self.counters["green_expired"] += 1
        log.warning("green for passage %s ended after max_green_s = %g s", pid, self.cfg.max_green_s)
        self._grants = [g for g in self._grants if g[0] != pid]

    async def _run(self) -> None:
        try:
            while not (self._stopping and self._lit is RED):
                self._wake.clear()
                if self._lost is not None:
                    await self._resync_red()
                elif self._lit is GREEN and not self._keep_green():
                    await self._to_red(self._why_red())
                elif self._lit is GREEN:
                    left = self._green_since + self.cfg.max_green_s - self._clock.monotonic()
                    if left <= 0:
                        self._expire_green()
                    else:
                        await self._pause(left)
                elif self._lit is RED and self._want_green():
                    wait = self._red_since + self.cfg.min_red_s - self._clock.monotonic()
                    if wait > 0:
                        await self._pause(wait)
                    else:
                        await self._to_green()
                else:
                    await self._wake.wait()
        except asyncio.CancelledError:
            if self._lit is not RED:
                self._emergency_red("signal cancelled")
            raise
        except Exception as exc:
            log.exception("signal sequencer failed")
            self._emergency_red("signal sequencer failed")
            self.fault("signal", f"sequencer failed: {exc!r}")  # like every fault: counted, sent upstream

    def _why_red(self) -> str:
        if self._stopping:
            return "stop"
        why = self.refusal()
        return why.detail if why is not None else "passage passed"

    # --- lamp read-back -------------------------------------------------------------------
    def check_readback(self) -> None:
        """Compare each lamp's read-back with what is commanded (settled lamps only)."""
        if self._readback is not None:
            self._readback.check()

    # --- persisted state ------------------------------------------------------------------
    def _persist(self) -> None:
        if self._state_file is None or not self._entered:
            return
        state = {"pid": None if self._exited else os.getpid(), "utc": self._clock.utcnow().isoformat()}
        self._state_file.save(state | self.status())

    async def flush_state(self, timeout_s: float = 2.0) -> bool:
        """Wait (off the loop) until the state file holds the latest state; False on timeout."""
        if self._state_file is None:
            return True
        return await asyncio.to_thread(self._state_file.flush, timeout_s)

    def _restore(self) -> None:
        """Lane closed and officer hold survive restarts (a torn or foreign file starts closed)."""
        if self.cfg.start_closed:
            self._closed_reason = "closed at start (config)"
        path = self.cfg.state_file
        if path is None:
            return
        try:
            state = read_state(Path(path))
        except (OSError, ValueError) as exc:
            log.warning("signal state %s unreadable (%s): starting closed", path, exc)
            self._closed_reason = "signal state unreadable at start"
            return
        if state is None:
            return
        if state.get("closed"):
            self._closed_reason = f"closed before restart: {str(state.get('closed_reason'))[:200]}"
        if state.get("held"):
            self._hold_reason = f"held before restart: {str(state.get('hold_reason'))[:200]}"

    # --- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> TrafficSignal:
        """Set up outputs with red lit from the first instant and start the sequencer."""
        if self._entered:
            raise RuntimeError("a TrafficSignal is entered once")
        self._restore()
        io, pins, off = self._io, self.cfg.pins, self.cfg.pins.active_low
        io.setup_output(pins.red, initial=not off)
        for pin in (pins.amber, pins.green, pins.barrier):
            if pin is not None:
                io.setup_output(pin, initial=off)
        if pins.closed_sign is not None:
            io.setup_output(pins.closed_sign, initial=self.closed != off)
        self._entered = True
        self._lit = RED
        now = self._clock.monotonic()
        self._red_since = now
        self._changed_at = dict.fromkeys(LAMPS, now)
        self._history.append((now, RED))
        rb = self.cfg.readback
        if rb is not None:
            self._readback = LampReadback(
                rb,
                io,
                self._clock,
                self,
                commanded=lambda lamp: self._lit is lamp,
                changed_at=lambda lamp: self._changed_at[lamp],
                count=lambda name: self.counters.update([name]),
            )
            self._readback.setup(pull_up=rb.active_low)
        self._task = asyncio.create_task(self._run(), name="traffic-signal")
        if self._readback is not None:
            self._readback_task = asyncio.create_task(self._readback.run(), name="lamp-readback")
        self._persist()
        if self.on_change is not None:
            try:
                self.on_change(RED, "start")
            except Exception:
                log.exception("on_change callback failed")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        """Go red (through amber if green is lit) and stop. Safe to call twice."""
        await self.aclose(f"stop after {exc_type.__name__}" if exc_type is not None else "stop")

    async def aclose(self, reason: str = "stop") -> None:
        """Withdraw everything, go red the safe way, stop the tasks. Idempotent."""
        if not self._entered or self._exited:
            return
        self._stopping = True
        self._grants.clear()
        log.info("signal stopping: %s", reason)
        self._wake.set()
        try:
            if self._task is not None:
                await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._task is not None:
                self._task.cancel()
            raise
        finally:
            if self._readback_task is not None:
                self._readback_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._readback_task
            if self._lit is not RED:
                self._emergency_red(reason)
            self._exited = True
            self._persist()
            if self._state_file is not None:
                await asyncio.to_thread(self._state_file.close)
