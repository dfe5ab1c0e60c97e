"""The one place that builds the lane: every component, in order, torn down in reverse into a safe state.

Start order: store -> outbox -> reference data -> journal -> uplink -> signal (red) -> lane -> sources
-> watchdog. Each is entered through one :class:`contextlib.AsyncExitStack`, so on any exit (a stop
request, a crash, a cancelled task) they close in reverse: sources stop, the signal goes red, the
uplink says ``offline``, the store closes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as os_signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from drivers.camera.base import FrameSource
from drivers.gpio.base import DigitalIO
from edge_agent.camera import CameraSource, Recogniser, build_cameras
from edge_agent.clock import Clock, ScaledClock, SystemClock
from edge_agent.config import LaneConfig
from edge_agent.config_apply import ConfigApply, ConfigTrial
from edge_agent.domain import DeviceFault, LaneEvent, LoopEvent, Passage, SignalAspect
from edge_agent.errors import CommandRejected, ConfigError, StoreError
from edge_agent.health import DeviceHealth
from edge_agent.journal import Journal
from edge_agent.lane import Lane, Outcome
from edge_agent.liveness import Liveness
from edge_agent.reference import ReferenceData
from edge_agent.reload import plan_reload
from edge_agent.retention import Retention
from edge_agent.signal import TrafficSignal, open_gpio
from edge_agent.sources import EventSource
from edge_agent.store.db import Store
from edge_agent.store.outbox import Outbox, Priority
from edge_agent.timesync import ClockJump, ClockWatch

log = logging.getLogger(__name__)

SHUTDOWN_S = 5.0
"""How long components get to honour their cancellation when the agent stops."""


@dataclass
class Hooks:
    """What a simulator or test injects: frame sources for ``sim`` cameras, recognisers, observers."""

    frame_sources: Mapping[str, FrameSource] = field(default_factory=dict)
    on_outcome: Callable[[Outcome], None] | None = None
    recognisers: Mapping[str, Recogniser] = field(default_factory=dict)  # per camera, overriding config


class Agent:
    """The whole lane agent as one async context manager; :meth:`run` until stopped."""

    def __init__(
        self,
        cfg: LaneConfig,
        *,
        clock: Clock | None = None,
        hooks: Hooks | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.clock: Clock = clock or SystemClock()
        self.hooks = hooks or Hooks()
        self.started_wall_mono = time.monotonic()
        self._stack = contextlib.AsyncExitStack()
        self.sources: list[EventSource] = []
        self.cameras: list[CameraSource] = []
        self._publishing: set[asyncio.Task[str]] = set()
        self.store: Store
        self.outbox: Outbox
        self.reference: ReferenceData
        self.journal: Journal
        self.uplink: Any
        self.signal: TrafficSignal
        self.lane: Lane

    # ------------------------------------------------------------------ build
    async def __aenter__(self) -> Agent:
        try:
            await self._build()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            log.critical("agent stopping on %r: signal to red", exc)
            if getattr(self, "liveness", None) is not None:
                self.liveness.clean_stop = False
        await self._stack.aclose()

    async def _build(self) -> None:
        from edge_agent.auth import CommandVerifier
        from edge_agent.override import OverrideHandler
        from edge_agent.replay import ReplayLog
        from edge_agent.uplink import Uplink
        from edge_agent.watchdog import LaneWatchdog, SystemdNotifier

        cfg, clock, stack = self.cfg, self.clock, self._stack
        self.store = await stack.enter_async_context(Store(cfg.storage))
        self.store.on_fault_change = self._on_store_fault
        self.outbox = await stack.enter_async_context(Outbox(self.store))
        stack.push_async_callback(self._flush_publishing)  # before the outbox and store close
        self.reference = ReferenceData(self.store)
        await self.reference.load()
        # commands carry real UTC times: verify them against the wall clock even in an accelerated simulation
        verifier = CommandVerifier(cfg.commands, SystemClock())
        replay_log = ReplayLog(self.store, verifier)  # replay protection survives restarts
        remembered = await replay_log.open()
        if remembered:
            log.info("replay check: %d recent commands remembered from before the restart", remembered)
        self.uplink = Uplink(
            cfg.mqtt,
            site_id=cfg.site_id,
            lane_id=cfg.lane_id,
            store=self.store,
            outbox=self.outbox,
            verifier=verifier,
            clock=clock,
            replay_log=replay_log,
        )
        self.journal = Journal(
            self.store, self.outbox, topic=self.uplink.topic("passage"), priority=Priority.DECISION
        )
        await self.journal.open()
        # passages and events say whether the clock was synchronised or jumped (edge_agent/timesync.py)
        self.clock_watch = await stack.enter_async_context(ClockWatch(on_jump=self._on_clock_jump))
        self.journal.clock_flags = self.clock_watch.flags
        self.liveness = await stack.enter_async_context(Liveness(self.store, clock))
        # personal data leaves the store retention.days after central confirmed it (edge_agent/retention.py)
        self.retention = await stack.enter_async_context(Retention(self.store, cfg.retention))
        await stack.enter_async_context(self.uplink)
        if self.liveness.gap is not None:  # trucks may have crossed unseen: say so
            gap = self._event("lane.gap", self.liveness.gap.as_event_data())
            self._publish("event", gap, Priority.DECISION)

        self.io = open_gpio(cfg.signal.gpio)
        stack.callback(self.io.close)
        signal_cfg = cfg.signal
        if signal_cfg.state_file is None:  # closed and held must survive restarts: beside the store
            from edge_agent.signal_state import default_state_file

            signal_cfg = signal_cfg.model_copy(update={"state_file": default_state_file(cfg.storage.path)})
        self.signal = await stack.enter_async_context(
            TrafficSignal(
                signal_cfg, self.io, clock, on_change=self._on_aspect, on_fault=self._on_signal_fault
            )
        )
        wd = cfg.signal.watchdog
        self.watchdog = await stack.enter_async_context(
            LaneWatchdog(
                wd, self.signal, self.io, notifier=SystemdNotifier.from_env() if wd.systemd else None
            )
        )

        self.lane = Lane(
            cfg,
            clock=clock,
            reference=self.reference,
            journal=self.journal,
            signal=self.signal,
            notify_uplink=self.uplink.kick,
            on_outcome=self._on_outcome,
            on_fault=self._on_device_fault,
        )
        self.sources = self._make_sources()

        override = OverrideHandler(self.signal, is_open=self.lane.tracker.is_open, on_audit=self._on_audit)
        self.uplink.register_command(
            "reference.snapshot", lambda body, who: self.reference.apply_snapshot(body)
        )
        self.uplink.register_command("reference.delta", lambda body, who: self.reference.apply_delta(body))
        self.uplink.register_command("signal.override", override.handle)
        self.uplink.register_command("config.reload", lambda body, who: self.reload())
        # central pushes a whole config: staged, installed before the next start, rolled back if it fails
        self.uplink.register_command("config.apply", ConfigApply(cfg).handle)
        await stack.enter_async_context(ConfigTrial(cfg, self.config_path, self._report_update))
        self.uplink.set_health_provider(self.health_report)
        if cfg.control.enabled:
            from edge_agent.config.control import socket_for
            from edge_agent.control import ControlServer
            from edge_agent.status import build_status

            path = socket_for(cfg.control, cfg.storage.path)
            await stack.enter_async_context(ControlServer(path, lambda: build_status(self)))

    def _make_sources(self) -> list[EventSource]:
        from edge_agent.loops import open_loop_source
        from edge_agent.rfid import RfidSource
        from edge_agent.wim import WimSource

        cfg, clock = self.cfg, self.clock
        loops = cfg.devices.loops
        loop_io: DigitalIO | None = None
        if loops.backend == "gpio":
            if loops.gpio is None:
                loop_io = self.io  # the loops share the signal's pin bank
            else:
                loop_io = open_gpio(loops.gpio)
                self._stack.callback(loop_io.close)
        sources: list[EventSource] = [
            RfidSource(cfg.devices.rfid, clock),
            open_loop_source(loops, clock, io=loop_io),
            WimSource(cfg.devices.wim, clock),
        ]
        self.cameras = build_cameras(
            cfg,
            clock,
            frame_sources=self.hooks.frame_sources,
            recognisers=self.hooks.recognisers,
            on_close=self._stack.callback,
        )
        if self.cameras:
            max_wait_s = cfg.recognition.max_wait_ms / 1000.0
            self.lane.tracker.watch_recognition(self._recognition_pending, max_wait_s)
        return [*sources, *self.cameras]

    def _recognition_pending(self) -> float | None:
        """Capture time of the oldest frame any camera has not yet recognised."""
        return min((t for c in self.cameras if (t := c.pending_since()) is not None), default=None)

    def _emit(self, event: LaneEvent) -> None:
        """Every source's events: the cameras follow loop presence, the lane takes everything."""
        if isinstance(event, LoopEvent):
            for camera in self.cameras:
                camera.observe(event)
        self.lane.emit(event)

    async def reload(self) -> dict[str, Any]:
        """Re-read the config file and take over its safe fields (``config.reload`` command, SIGHUP)."""
        if self.config_path is None:
            raise CommandRejected("not_supported", "this agent was not started from a config file")
        new, keys = plan_reload(self.cfg, self.config_path)
        self.cfg = new
        self.lane.apply_config(new)
        log.info("config reloaded from %s: %s", self.config_path, ", ".join(keys) or "no change")
        return {"changed": keys}

    # ------------------------------------------------------------------ run
    async def run(self, stop: asyncio.Event) -> None:
        """Run every component until ``stop`` is set or one of them ends (then the signal goes red).

        A component that fails or returns ends the agent with an :class:`ExceptionGroup`. Teardown
        never waits on a task that ignores its cancellation for more than ``SHUTDOWN_S``: the exit
        stack (signal red, uplink offline, store closed) must always run.
        """
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self.lane.run(), name="lane")]
        tasks += [loop.create_task(s.run(self._emit), name=f"source:{s.name}") for s in self.sources]
        waiter = loop.create_task(stop.wait(), name="stop")
        self.watchdog.ready(f"lane {self.cfg.site_id}/{self.cfg.lane_id} running")
        try:
            done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            for task in tasks:
                task.cancel()
            _, stuck = await asyncio.wait(tasks, timeout=SHUTDOWN_S)
            if stuck:
                log.critical("ignored cancellation, left behind: %s", ", ".join(t.get_name() for t in stuck))
        failures: list[Exception] = []
        for ended in done - {waiter}:
            exc = None if ended.cancelled() else ended.exception()
            if isinstance(exc, Exception):
                failures.append(exc)
            elif exc is None:
                failures.append(RuntimeError(f"{ended.get_name()} stopped unexpectedly"))
        if failures:
            raise ExceptionGroup("lane agent failed", failures)

    # ------------------------------------------------------------------ reporting
    def health_report(self) -> dict[str, Any]:
        """Everything a technician or central wants to know, JSON-ready."""
        devices: list[DeviceHealth] = [s.health() for s in self.sources]
        return {
            "devices": [d.as_dict() for d in devices],
            "signal": self.signal.status(),
            "lane": dict(self.lane.counters) | {"open_passages": len(self.lane.tracker.open_passages)},
            "tracker": dict(self.lane.tracker.stats.counters),
            "reference_version": self.reference.view.version,
            "clock": self.clock_watch.status(),
        }

    def _publish(self, kind: str, payload: dict[str, Any], priority: int) -> None:
        """Send upstream through the one way out (the uplink's outbox, or its memory when the store fails)."""
        watch: ClockWatch | None = getattr(self, "clock_watch", None)
        if kind == "event" and watch is not None:
            payload = payload | {"clock": watch.flags()}
        task = asyncio.get_running_loop().create_task(self.uplink.emit(kind, payload, priority=priority))
        self._publishing.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._published)

    async def _flush_publishing(self) -> None:
        """Let faults and events raised during shutdown reach the outbox (bounded)."""
        if self._publishing:
            await asyncio.wait(set(self._publishing), timeout=5.0)

    def _published(self, task: asyncio.Task[str]) -> None:
        self._publishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not queue a message upstream: %r", task.exception())

    def _on_store_fault(self, detail: str | None) -> None:
        """The store cannot write (disk full, I/O error): red, and say so upstream (from memory)."""
        signal: TrafficSignal | None = getattr(self, "signal", None)
        if signal is not None:
            if detail is not None:
                signal.fault("storage", detail)
            else:
                signal.clear_fault("storage")
        if getattr(self, "uplink", None) is not None:
            payload = self._fault(
                "store",
                "storage",
                detail is not None,
                detail or "writes succeed",
            )
            self._publish("fault", payload, Priority.DECISION)

    def _on_outcome(self, outcome: Outcome) -> None:
        """A passage was decided: queue its evidence image (encoded off the loop), tell the observer."""
        passage = outcome.decided.passage
        if passage.plate_vote is not None and any(r.crop is not None for r in passage.plates):
            task = asyncio.get_running_loop().create_task(self._queue_evidence(passage))
            self._publishing.add(task)
            task.add_done_callback(self._published)
        if self.hooks.on_outcome is not None:
            self.hooks.on_outcome(outcome)

    async def _queue_evidence(self, passage: Passage) -> str:
        """Queue the passage's evidence image at the lowest priority; a store that refuses drops it."""
        from edge_agent.evidence import evidence_message
        from edge_agent.uplink.messages import encode

        cfg, clock = self.cfg, self.clock
        message = await asyncio.to_thread(
            evidence_message,
            passage,
            site_id=cfg.site_id,
            lane_id=cfg.lane_id,
            now_mono=clock.monotonic(),
            now_utc=clock.utcnow(),
        )
        if message is None:
            return ""
        try:
            await self.outbox.put(
                msg_id=message["evidence_id"],
                topic=self.uplink.topic("evidence"),
                payload=encode(message),
                priority=Priority.BULK,
                kind="evidence",
            )
        except StoreError as exc:  # evidence is never worth memory a fault or a passage may need
            log.warning("evidence for passage %s dropped: the store refused it (%s)", passage.passage_id, exc)
            return ""
        self.uplink.kick()
        return str(message["evidence_id"])

    def _on_device_fault(self, fault: DeviceFault) -> None:
        if fault.device == "loops":
            # the loops are the one sensor the lane cannot run without: a stuck, chattering or silent loop
            # card holds the signal red (a fault per device; it clears only when the card is fully clear)
            if fault.active:
                self.signal.fault(f"device:{fault.device}", f"{fault.kind}: {fault.detail}")
            else:
                self.signal.clear_fault(f"device:{fault.device}")
        self._publish(
            "fault",
            self._fault(fault.device, fault.kind, fault.active, fault.detail),
            Priority.DECISION,
        )

    def _on_signal_fault(self, name: str, detail: str) -> None:
        self._publish(
            "fault",
            self._fault("signal", name, True, detail),
            Priority.DECISION,
        )

    def _on_aspect(self, aspect: SignalAspect, reason: str) -> None:
        log.debug("signal %s (%s)", aspect.value, reason)

    def _report_update(self, data: dict[str, Any]) -> None:
        """A config.apply was applied, rolled back or refused: tell central."""
        log.warning("config.apply: %s", data.get("outcome"))
        self._publish("event", self._event("lane.update", data), Priority.DECISION)

    def _on_clock_jump(self, jump: ClockJump) -> None:
        """The wall clock stepped: say so upstream (records around it carry ``clock_jump``)."""
        log.warning("wall clock jumped by %+.3f s (now %s)", jump.seconds, jump.at)
        self._publish("event", self._event("lane.clock_jump", jump.as_event_data()), Priority.DECISION)

    def _event(self, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        from edge_agent.uplink.messages import event

        return event(self.cfg.site_id, self.cfg.lane_id, type_, at=self.clock.utcnow(), data=data)

    def _fault(self, device: str, kind: str, active: bool, detail: str) -> dict[str, Any]:
        """A ``lane.fault/1`` stamped by the lane's clock (the one clock of everything sent upstream)."""
        from edge_agent.uplink.messages import fault

        return fault(
            self.cfg.site_id,
            self.cfg.lane_id,
            device=device,
            kind=kind,
            active=active,
            at=self.clock.utcnow(),
            detail=detail,
        )

    def _on_audit(self, record: dict[str, Any]) -> None:
        self._publish("event", self._event("override", record), Priority.DECISION)


async def run_agent(agent: Agent, stop: asyncio.Event) -> None:
    """Run ``agent`` until ``stop`` (kept for callers; :meth:`Agent.run` itself stops cleanly)."""
    await agent.run(stop)


async def run_service(cfg: LaneConfig, config_path: Path | None = None) -> int:
    """The systemd service: run until SIGTERM/SIGINT; exit non-zero after a crash (the signal is red)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (os_signal.SIGTERM, os_signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    status = 0
    try:
        clock = ScaledClock(cfg.time_scale) if cfg.time_scale != 1.0 else None  # a simulation only
        async with Agent(cfg, config_path=config_path, clock=clock) as agent:
            loop.add_signal_handler(os_signal.SIGHUP, lambda: loop.create_task(_reload_logged(agent)))
            await run_agent(agent, stop)
    except* ConfigError as config_errors:
        for exc in config_errors.exceptions:
            log.error("%s", exc)
        status = 2
    except* Exception as failures:
        for failure in failures.exceptions:
            log.critical("lane agent failed: %r", failure, exc_info=failure)
        status = 1
    return status


async def _reload_logged(agent: Agent) -> None:
    """SIGHUP: reload the config file; a refused reload is logged and changes nothing."""
    try:
        await agent.reload()
    except CommandRejected as exc:
        log.error("config reload refused: %s", exc)
