"""The lane: events in, passages decided, committed, then acted on at the signal.

Order of work for every passage (the safety and durability argument in one place):

1. the tracker hands over the passage, a frozen value, when it is complete (all its reads are in);
2. its plate is voted across the frames, and :func:`edge_agent.decision.decide` decides it against
   the reference data (pure), giving a :class:`~edge_agent.domain.DecidedPassage`;
3. a release is put to the signal, the one judge of whether green may be given now: when it refuses
   (lane closed, officer hold, a fault), the passage is recorded as the referral the truck will see,
   with the signal's reason (``lane_closed``, ``officer_hold``, ``device_fault``): a new decided
   passage, never a change to the first;
4. the journal commits the passage *and* its upstream message in one transaction;
5. only then is the decision acted on: green for a release; nothing for a referral (red stays). If the
   signal's state changed during the commit and it now refuses, the record is amended (revision 2);
6. when the vehicle's tail clears the exit loop, its green is revoked (amber, then red).

When the store cannot take a write (disk full, I/O error) the store faults the signal red; what could
not be written waits in memory (bounded) and is written, in order, once writes succeed again. Any
other exception escaping this loop ends the agent, and the signal's context manager turns red.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from edge_agent.clock import Clock
from edge_agent.config import LaneConfig
from edge_agent.container_code import vote as vote_containers
from edge_agent.decision import decide
from edge_agent.domain import DecidedPassage, Decision, DeviceFault, LaneEvent, Passage, Reason
from edge_agent.errors import StoreError
from edge_agent.journal import Journal, passage_payload
from edge_agent.plate_vote import vote as vote_plates
from edge_agent.reference import ReferenceData
from edge_agent.signal_policy import Refusal
from edge_agent.tracker import PassageTracker

log = logging.getLogger(__name__)

TICK_S = 0.05  # wall seconds between tracker ticks
RETRY_S = 1.0  # wall seconds between attempts to write what the store refused
MAX_UNSAVED = 1000  # writes held in memory while the store refuses them (oldest dropped past this)


class SignalLike(Protocol):
    """The part of :class:`edge_agent.signal.TrafficSignal` the lane drives."""

    def refusal(self, passage_id: str | None = None) -> Refusal | None:
        """Why green may not be given now for this passage, or None."""
        ...

    def grant(self, passage_id: str) -> bool:
        """Green for this released passage, if allowed."""
        ...

    def revoke(self, passage_id: str) -> None:
        """That passage has passed: amber then red."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the lane did with one passage (for the demo and diagnostics).

    ``decided`` is the decision the truck saw (an amendment's, when there was one); ``payload`` is the
    passage's first message.
    """

    decided: DecidedPassage
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
        self._unsaved: deque[tuple[str, Callable[[], Awaitable[None]]]] = deque()

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
            tg.create_task(self._retrier())

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
                closed = functools.partial(self._journal.closed, passage.passage_id, self._clock.utcnow())
                await self._write(f"closed {passage.passage_id}", closed)

    async def _write(self, what: str, write: Callable[[], Awaitable[None]]) -> bool:
        """Write now, in order behind anything held back; hold it in memory if the store refuses."""
        if not self._unsaved:
            try:
                await write()
                return True
            except StoreError as exc:
                log.error("lane: %s not written (%s); held in memory until the store recovers", what, exc)
        self.counters["writes_held"] += 1
        self._unsaved.append((what, write))
        if len(self._unsaved) > MAX_UNSAVED:
            lost, _ = self._unsaved.popleft()
            self.counters["writes_lost"] += 1
            log.critical("lane: %d writes held in memory; gave up on the oldest (%s)", MAX_UNSAVED, lost)
        return False

    async def _retrier(self) -> None:
        while True:
            await asyncio.sleep(RETRY_S)
            while self._unsaved:
                what, write = self._unsaved[0]
                try:
                    await write()
                except StoreError:
                    break
                self._unsaved.popleft()
                self.counters["writes_recovered"] += 1
                log.info("lane: %s written after the store recovered", what)

    @property
    def unsaved(self) -> int:
        """Writes held in memory because the store refused them."""
        return len(self._unsaved)

    async def _decide(self, p: Passage, ready_at: float) -> None:
        cfg = self._cfg
        decided_at: datetime = self._clock.utcnow()
        vote = vote_plates(p.plates, cfg.policy.min_plate_confidence)
        self.counters["plate_frames_accepted"] += vote.accepted  # a dirty lens shows up as a number
        self.counters["plate_frames_rejected"] += vote.rejected
        containers = vote_containers(p.containers, 0.0)  # the recogniser applied its floor
        voted = replace(p, plate_vote=vote, container_vote=containers)
        decided = decide(voted, self._reference.view, cfg.policy, cfg.geometry, decided_at.date())
        if decided.decision.released:
            decided = self._as_seen(decided)
        latency_ms = (time.perf_counter() - ready_at) * 1000.0
        payload_of = functools.partial(
            passage_payload,
            site_id=cfg.site_id,
            lane_id=cfg.lane_id,
            decided_at=decided_at,
            latency_ms=latency_ms,
        )
        payload = payload_of(decided)
        try:
            await self._journal.commit(payload)  # durable before anything is acted on
        except StoreError as exc:
            # not recorded, so not acted on: the truck sees red, and that is what gets recorded later
            log.error("lane: passage %s not journaled (%s): red; held in memory", p.passage_id, exc)
            if decided.decision.released:
                refer = Decision.refer(Reason.DEVICE_FAULT, matched_record=decided.decision.matched_record)
                decided = replace(decided, decision=refer)
                payload = payload_of(decided)
            await self._write(f"passage {p.passage_id}", functools.partial(self._journal.commit, payload))
        green = decided.decision.released and self._signal.grant(p.passage_id)
        if decided.decision.released and not green:
            # a hold, close or fault arrived while the release was being committed: record what
            # the truck sees (revision 2 supersedes the first message upstream)
            decided = self._as_seen(decided, after_commit=True)
            amended = payload_of(decided) | {"revision": 2}
            self.counters["amended"] += 1
            await self._write(f"amendment of {p.passage_id}", functools.partial(self._journal.amend, amended))
        latency_ms = (time.perf_counter() - ready_at) * 1000.0
        self._notify()
        decision = decided.decision
        self.counters[decision.verdict.value] += 1
        log.info(
            "passage %s: %s %s (%.1f ms)",
            p.passage_id,
            decision.verdict.value,
            ",".join(r.value for r in decision.reasons) or "-",
            latency_ms,
        )
        if self._on_outcome is not None:
            self._on_outcome(Outcome(decided, payload, latency_ms, green))

    def _as_seen(self, decided: DecidedPassage, *, after_commit: bool = False) -> DecidedPassage:
        """A release the signal refuses now becomes the referral the truck sees, with its reason."""
        refusal = self._signal.refusal(decided.passage_id)
        if refusal is None and after_commit:
            refusal = Refusal(Reason.LANE_CLOSED, "the signal refused the green")
        if refusal is None:
            return decided
        self.counters[f"refused:{refusal.reason.value}"] += 1
        referral = Decision.refer(refusal.reason, matched_record=decided.decision.matched_record)
        return replace(decided, decision=referral)
