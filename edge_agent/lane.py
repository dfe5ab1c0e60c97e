"""The lane: events in, passages decided, committed, then acted on at the signal.

Order of work for every passage (the safety and durability argument in one place):

1. the tracker says the passage is complete (all its reads are in);
2. :func:`edge_agent.decision.decide` decides it against the reference data (pure);
3. if the lane is closed or the signal is faulted, a release becomes a referral (``lane_closed``);
4. the journal commits the passage *and* its upstream message in one transaction;
5. only then is the decision acted on: green for a release; nothing for a referral (red stays);
6. when the vehicle's tail clears the exit loop, its green is revoked (amber, then red).

Any exception escaping this loop ends the agent, and the signal's context manager turns red.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from edge_agent.clock import Clock
from edge_agent.config import LaneConfig
from edge_agent.decision import decide
from edge_agent.domain import Decision, DeviceFault, LaneEvent, Passage, Reason, Verdict
from edge_agent.journal import Journal, passage_payload
from edge_agent.reference import ReferenceData
from edge_agent.tracker import PassageTracker

log = logging.getLogger(__name__)

TICK_S = 0.05  # wall seconds between tracker ticks


class SignalLike(Protocol):
    """The part of :class:`edge_agent.signal.TrafficSignal` the lane drives."""

    @property
    def closed(self) -> bool:
        """Whether the lane is closed."""
        ...

    @property
    def faults(self) -> set[str]:
        """Active signal faults."""
        ...

    def grant(self, passage_id: str) -> bool:
        """Green for this released passage, if allowed."""
        ...

    def revoke(self, passage_id: str) -> None:
        """That passage has passed: amber then red."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the lane did with one passage (for the demo and diagnostics)."""

    passage: Passage
    payload: dict[str, Any]
    latency_ms: float
    green: bool


class Lane:
    """Wires the tracker, the decision, the journal and the signal on the lane loop."""

    def __init__(
        self,
        cfg: LaneConfig,
        *,
        clock: Clock,
        reference: ReferenceData,
        journal: Journal,
        signal: SignalLike,
        notify_uplink: Callable[[], None],
        on_outcome: Callable[[Outcome], None] | None = None,
        on_fault: Callable[[DeviceFault], None] | None = None,
    ) -> None:
        self._cfg = cfg
        self._clock = clock
        self._reference = reference
        self._journal = journal
        self._signal = signal
        self._notify = notify_uplink
        self._on_outcome = on_outcome
        self._on_fault = on_fault
        # one queue, so a passage is always decided before it is closed
        self._work: asyncio.Queue[tuple[Passage, float | None]] = asyncio.Queue()
        self.counters: Counter[str] = Counter()
        rfid = cfg.devices.rfid
        self.tracker = PassageTracker(
            cfg.geometry,
            rfid.tags,
            rfid.cross_read,
            clock,
            on_ready=lambda p: self._work.put_nowait((p, time.perf_counter())),
            on_closed=lambda p: self._work.put_nowait((p, None)),
            entry_loop=cfg.devices.loops.entry,
            exit_loop=cfg.devices.loops.exit,
        )
        self.last_event_mono: float | None = None

    def apply_config(self, cfg: LaneConfig) -> None:
        """Judge the next passages with ``cfg`` (a reload of safe fields: policy and thresholds)."""
        self._cfg = cfg
        self.tracker.set_geometry(cfg.geometry)

    def emit(self, event: LaneEvent) -> None:
        """Hand one device event to the lane (the ``emit`` every source is given)."""
        self.last_event_mono = self._clock.monotonic()
        if isinstance(event, DeviceFault):
            self.counters["device_faults" if event.active else "device_recoveries"] += 1
            if self._on_fault is not None:
                self._on_fault(event)
        self.tracker.handle(event)

    async def run(self) -> None:
        """Tick the tracker, decide and act, close passages; runs until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._ticker())
            tg.create_task(self._worker())

    async def _ticker(self) -> None:
        while True:
            self.tracker.tick()
            await asyncio.sleep(TICK_S)

    async def _worker(self) -> None:
        while True:
            passage, ready_at = await self._work.get()
            if ready_at is not None:
                await self._decide(passage, ready_at)
            else:
                self._signal.revoke(passage.passage_id)
                await self._journal.closed(passage.passage_id, self._clock.utcnow())

    async def _decide(self, p: Passage, ready_at: float) -> None:
        cfg = self._cfg
        decided_at: datetime = self._clock.utcnow()
        decision = decide(p, self._reference.view, cfg.policy, cfg.geometry, decided_at.date())
        if decision.released and (self._signal.closed or self._signal.faults):
            decision = Decision.refer(Reason.LANE_CLOSED, matched_record=decision.matched_record)
        p.decision = decision
        latency_ms = (time.perf_counter() - ready_at) * 1000.0
        payload = passage_payload(
            p, site_id=cfg.site_id, lane_id=cfg.lane_id, decided_at=decided_at, latency_ms=latency_ms
        )
        await self._journal.commit(payload)  # durable before anything is acted on
        green = decision.verdict is Verdict.RELEASE and self._signal.grant(p.passage_id)
        latency_ms = (time.perf_counter() - ready_at) * 1000.0
        self._notify()
        self.counters[decision.verdict.value] += 1
        log.info(
            "passage %s: %s %s (%.1f ms)",
            p.passage_id,
            decision.verdict.value,
            ",".join(r.value for r in decision.reasons) or "-",
            latency_ms,
        )
        if self._on_outcome is not None:
            self._on_outcome(Outcome(p, payload, latency_ms, green))
