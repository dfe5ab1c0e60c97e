"""Passage tracking: loops open and close passages; every read joins the vehicle that carried it.

Loops are points along the lane (metres from the entry loop). A passage opens when a front reaches the
entry loop and closes when its tail clears the exit loop (the stop line at the signal). Reads are kept in
a buffer and attributed when a passage is decided, by where each vehicle was when the read happened:

* the vehicle's speed comes from its WIM record (the record is matched to the passage whose tail crossed
  the scale just before the record appeared, and whose speed agrees), or from entry -> exit timing;
* each kind of read has an anchor on the vehicle: cab tags (FAST card, transponder) and the plate ride at
  the front, e-seals at the rear doors, the container code anywhere along the body;
* a read belongs to the vehicle whose anchor was nearest the sensor at that instant, within the sensor's
  range; a near tie between two vehicles flags the read as ambiguous.

The decision is taken as soon as the tail has passed every sensor, normally well before the front reaches
the stop line, so a released truck sees green without stopping. A tailgater (gap below ``min_gap_m``), a
truck that dwells past ``max_dwell_s`` (stopped or reversed), a WIM or reader fault during the passage, or
bad device data make the passage refer.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from edge_agent.clock import Clock
from edge_agent.config.lane import GeometryConfig
from edge_agent.config.rfid import CrossReadRule, TagPatterns
from edge_agent.domain import (
    ContainerRead,
    DeviceFault,
    LaneEvent,
    LoopEvent,
    Passage,
    PlateRead,
    Reason,
    TagKind,
    TagRead,
    TagSummary,
    WimRecord,
)
from edge_agent.ids import new_id
from edge_agent.tags import classify, is_cross_read, summarise

log = logging.getLogger(__name__)

_TIE_M = 1.0  # two vehicles whose anchors are this close to a sensor cannot be told apart
_SETTLE_S = 0.5  # after the tail passes the last sensor, wait this long for late reports


class Anchor(Enum):
    """Where on a vehicle a read comes from."""

    FRONT = "front"
    REAR = "rear"
    BODY = "body"


@dataclass(slots=True)
class _Track:
    """The tracker's own working record of one vehicle on the loops (never handed out: see :meth:`facts`)."""

    passage_id: str
    entered_utc: datetime
    entry_rise: float
    entry_fall: float | None = None
    exit_rise: float | None = None
    exit_fall: float | None = None
    speed_ms: float | None = None
    ready: bool = False
    faults_seen: set[str] = field(default_factory=set)
    complete_mono: float | None = None  # when all but pending recognition was in
    tags: dict[str, TagSummary] = field(default_factory=dict)
    wim: WimRecord | None = None
    plates: list[PlateRead] = field(default_factory=list)
    containers: list[ContainerRead] = field(default_factory=list)
    flags: set[Reason] = field(default_factory=set)
    ready_mono: float | None = None
    speed_kmh: float | None = None

    def facts(self) -> Passage:
        """What is known of this vehicle now, as a value no later event can change."""
        return Passage(
            passage_id=self.passage_id,
            entered_mono=self.entry_rise,
            entered_utc=self.entered_utc,
            entry_cleared_mono=self.entry_fall,
            exit_mono=self.exit_rise,
            exit_cleared_mono=self.exit_fall,
            tags=tuple(self.tags.values()),
            wim=self.wim,
            plates=tuple(self.plates),
            containers=tuple(self.containers),
            flags=frozenset(self.flags),
            ready_mono=self.ready_mono,
            speed_kmh=self.speed_kmh,
        )

    def front(self, t: float, v: float) -> float:
        return v * (t - self.entry_rise)

    def rear(self, t: float, v: float) -> float | None:
        return None if self.entry_fall is None else v * (t - self.entry_fall)


@dataclass(frozen=True, slots=True)
class _Pending:
    event: TagRead | PlateRead | ContainerRead
    x: float  # sensor position
    anchor: Anchor
    kind: TagKind | None = None


@dataclass(slots=True)
class TrackerStats:
    """Counters of what the tracker saw and did."""

    counters: Counter[str] = field(default_factory=Counter)


class PassageTracker:
    """Turns lane events into passages ready to be decided, then closed.

    ``on_ready(passage)`` is called once per passage when everything that can be known about it is in
    (its ``flags`` carry tracker-detected problems); ``on_closed(passage)`` when its tail clears the exit
    loop or it is abandoned. Both are plain callables on the lane loop. Each is given a frozen
    :class:`Passage`: what the tracker learns later (the exit loop's times) goes into the tracker's own
    record, and ``on_closed`` gets a new value with it; a passage already handed over never changes.
    """

    def __init__(
        self,
        geometry: GeometryConfig,
        patterns: TagPatterns,
        cross_read: CrossReadRule,
        clock: Clock,
        *,
        on_ready: Callable[[Passage], None],
        on_closed: Callable[[Passage], None],
        entry_loop: str = "entry",
        exit_loop: str = "exit",
    ) -> None:
        self._g = geometry
        self._patterns = patterns
        self._cross = cross_read
        self._clock = clock
        self._on_ready = on_ready
        self._on_closed = on_closed
        self._entry = entry_loop
        self._exit = exit_loop
        self._tracks: list[_Track] = []  # in entry order
        self._pending: list[_Pending] = []
        self._wim: list[WimRecord] = []
        self._active_faults: dict[str, DeviceFault] = {}
        self._last_speed_ms: float | None = None
        self._last_entry_fall: float | None = None
        self.stats = TrackerStats()
        self._sensor_end = max(geometry.rfid_antenna_m, geometry.container_camera_m, geometry.wim_m)
        self._recognition_pending: Callable[[], float | None] | None = None
        self._max_wait_s = 0.0

    def watch_recognition(self, pending_since: Callable[[], float | None], max_wait_s: float) -> None:
        """Let decisions wait for recognition: at most ``max_wait_s`` after the rest of a passage is in.

        ``pending_since()`` is the capture time of the oldest frame not yet recognised (``None`` when
        none is pending); a passage waits only for frames captured before it was otherwise complete.
        """
        self._recognition_pending = pending_since
        self._max_wait_s = max_wait_s

    def set_geometry(self, geometry: GeometryConfig) -> None:
        """Take over new thresholds (speeds, gap, dwell, waits) from a config reload."""
        self._g = geometry
        self._sensor_end = max(geometry.rfid_antenna_m, geometry.container_camera_m, geometry.wim_m)

    # ------------------------------------------------------------------ events
    @property
    def open_passages(self) -> list[Passage]:
        """Passages between entry and exit, oldest first, as they stand now."""
        return [t.facts() for t in self._tracks]

    def is_open(self, passage_id: str) -> bool:
        """Whether ``passage_id`` is a vehicle in the lane now (between the entry loop and the stop line)."""
        return any(t.passage_id == passage_id for t in self._tracks)

    def handle(self, event: LaneEvent) -> None:
        """Take one event from a device source."""
        c = self.stats.counters
        if isinstance(event, LoopEvent):
            self._loop(event)
        elif isinstance(event, TagRead):
            if is_cross_read(event, self._cross):
                c["cross_reads_rejected"] += 1
                return
            kind = classify(event.epc, self._patterns)
            if kind is TagKind.UNKNOWN:
                c["unknown_tags"] += 1
                return
            anchor = Anchor.REAR if kind is TagKind.ESEAL else Anchor.FRONT
            self._pending.append(_Pending(event, self._g.rfid_antenna_m, anchor, kind))
        elif isinstance(event, PlateRead):
            self._pending.append(_Pending(event, self._g.plate_camera_m, Anchor.FRONT))
        elif isinstance(event, ContainerRead):
            self._pending.append(_Pending(event, self._g.container_camera_m, Anchor.BODY))
        elif isinstance(event, WimRecord):
            if not _plausible(event):
                c["bad_wim_records"] += 1
                log.warning(
                    "implausible WIM record %d (gross %.0f kg, %d axles, %.1f km/h): referring",
                    event.sequence,
                    event.gross_kg,
                    event.axle_count,
                    event.speed_kmh,
                )
            self._wim.append(event)
            self._match_wim()
        elif isinstance(event, DeviceFault):
            if event.active:
                self._active_faults[event.device] = event
                for t in self._tracks:
                    t.faults_seen.add(event.device)
            else:
                self._active_faults.pop(event.device, None)
        self.tick()

    def _loop(self, ev: LoopEvent) -> None:
        c = self.stats.counters
        if ev.loop == self._entry and ev.present:
            track = _Track(new_id(), self._clock.utcnow(), ev.mono, faults_seen=set(self._active_faults))
            self._tracks.append(track)
            c["entries"] += 1
        elif ev.loop == self._entry:
            t = next((t for t in self._tracks if t.entry_fall is None), None)
            if t is None:
                c["orphan_loop_events"] += 1
                return
            t.entry_fall = ev.mono
            self._match_wim()
        elif ev.loop == self._exit and ev.present:
            t = next((t for t in self._tracks if t.exit_rise is None), None)
            if t is None:
                c["orphan_loop_events"] += 1
                return
            t.exit_rise = ev.mono
            if t.speed_ms is None and ev.mono > t.entry_rise:
                t.speed_ms = self._g.exit_loop_m / (ev.mono - t.entry_rise)
        elif ev.loop == self._exit:
            t = next((t for t in self._tracks if t.exit_rise is not None and t.exit_fall is None), None)
            if t is None:
                c["orphan_loop_events"] += 1
                return
            t.exit_fall = ev.mono
            if not t.ready:
                self._ready(t, ev.mono)
            self._close(t)
        else:
            c["unknown_loop"] += 1

    def _match_wim(self) -> None:
        """Give each WIM record to the passage whose tail crossed the scale just before it appeared."""
        for rec in list(self._wim):
            v = rec.speed_kmh / 3.6
            best: tuple[float, _Track] | None = None
            for t in self._tracks:
                if t.entry_fall is None or t.wim is not None or v <= 0:
                    continue
                crossed = t.entry_fall + self._g.wim_m / v
                lag = rec.mono - crossed
                if -self._g.read_range_m / v <= lag <= self._g.wim_wait_s and (
                    best is None or abs(lag) < best[0]
                ):
                    best = (abs(lag), t)
            if best is not None:
                t = best[1]
                t.wim = rec
                if _plausible(rec):
                    t.speed_ms = v
                    self._last_speed_ms = v
                else:
                    t.flags.add(Reason.BAD_DEVICE_DATA)
                self._wim.remove(rec)
            elif self._tracks and all(t.entry_fall is not None and t.wim is not None for t in self._tracks):
                self.stats.counters["unmatched_wim_records"] += 1
                self._wim.remove(rec)

    # ------------------------------------------------------------------ time
    def tick(self) -> None:
        """Decide passages whose reads are all in; time out dwelling passages. Call often."""
        now = self._clock.monotonic()
        for t in list(self._tracks):
            if not t.ready and self._complete(t, now) and not self._awaiting_recognition(t, now):
                self._ready(t, now)
            if now - t.entry_rise > self._g.max_dwell_s:
                if not t.ready:
                    t.flags.add(Reason.DWELL_TIMEOUT)
                    self._ready(t, now)
                self.stats.counters["abandoned"] += 1
                self._close(t)
        self._expire_reads(now)
        self._expire_wim(now)

    def _complete(self, t: _Track, now: float) -> bool:
        if t.entry_fall is None:
            return False
        if t.exit_rise is not None:
            return True  # at the stop line: decide with what we have
        if t.speed_ms is None:
            return False  # no WIM record (yet): decided at the stop line at the latest
        return now >= t.entry_fall + (self._sensor_end + self._g.read_range_m) / t.speed_ms + _SETTLE_S

    def _awaiting_recognition(self, t: _Track, now: float) -> bool:
        """Whether a complete passage still waits (within ``max_wait_s``) for frames being recognised."""
        if self._recognition_pending is None:
            return False
        if t.complete_mono is None:
            t.complete_mono = now
        oldest = self._recognition_pending()
        if oldest is None or oldest > t.complete_mono:
            return False
        if now - t.complete_mono < self._max_wait_s:
            return True
        self.stats.counters["recognition_wait_expired"] += 1  # decided without the pending reads
        return False

    def _ready(self, t: _Track, now: float) -> None:
        t.ready = True
        v = t.speed_ms
        if v is None and t.exit_rise is not None and t.exit_rise > t.entry_rise:
            v = self._g.exit_loop_m / (t.exit_rise - t.entry_rise)
        t.speed_kmh = None if v is None else round(v * 3.6, 2)
        self._attribute(t, v or self._nominal_speed())
        idx = self._tracks.index(t)
        if idx > 0 or self._last_entry_fall is not None:
            leader_fall = self._tracks[idx - 1].entry_fall if idx > 0 else self._last_entry_fall
            if leader_fall is not None and v is not None:
                gap = (t.entry_rise - leader_fall) * v
                if gap < self._g.min_gap_m:
                    t.flags.add(Reason.TAILGATING)
        if "wim" in t.faults_seen or any(f.device == "wim" for f in self._active_faults.values()):
            t.flags.add(Reason.WIM_FAULT)
        if t.faults_seen - {"wim"}:
            t.flags.add(Reason.DEVICE_FAULT)
        t.ready_mono = now
        self.stats.counters["ready"] += 1
        self._on_ready(t.facts())

    def _close(self, t: _Track) -> None:
        if t in self._tracks:
            self._tracks.remove(t)
            if t.entry_fall is not None:
                self._last_entry_fall = t.entry_fall
            self._on_closed(t.facts())

    # ------------------------------------------------------------------ attribution
    def _nominal_speed(self) -> float:
        if self._last_speed_ms is not None:
            return self._last_speed_ms
        return (self._g.min_speed_kmh + self._g.max_speed_kmh) / 2 / 3.6

    def _distance(self, t: _Track, item: _Pending, at: float, v: float) -> float | None:
        front = t.front(at, v)
        rear = t.rear(at, v)
        if item.anchor is Anchor.FRONT:
            return abs(front - item.x) if front >= -self._g.read_range_m else None
        if rear is None:
            rear = -1e9 if item.anchor is Anchor.BODY else None
        if rear is None:
            return None  # the rear has not even reached the entry loop
        if item.anchor is Anchor.REAR:
            return abs(rear - item.x)
        return 0.0 if rear <= item.x <= front else min(abs(front - item.x), abs(rear - item.x))

    def _attribute(self, target: _Track, v_target: float) -> None:
        keep: list[_Pending] = []
        for item in self._pending:
            at = item.event.mono
            scored: list[tuple[float, _Track]] = []
            for t in self._tracks:
                if at < t.entry_rise - self._g.read_range_m / v_target:
                    continue
                v = t.speed_ms or (v_target if t is target else self._nominal_speed())
                d = self._distance(t, item, at, v)
                if d is not None and d <= self._g.read_range_m:
                    scored.append((d, t))
            scored.sort(key=lambda s: s[0])
            if not scored or scored[0][1] is not target:
                keep.append(item)
                continue
            if len(scored) > 1 and scored[1][0] - scored[0][0] < _TIE_M:
                target.flags.add(Reason.AMBIGUOUS_READS)
                self.stats.counters["ambiguous_reads"] += 1
            self._join(target, item)
        self._pending = keep

    def _join(self, t: _Track, item: _Pending) -> None:
        ev = item.event
        if isinstance(ev, TagRead):
            assert item.kind is not None
            t.tags[ev.epc] = summarise(t.tags.get(ev.epc), ev, item.kind)
        elif isinstance(ev, PlateRead):
            t.plates.append(ev)
        else:
            t.containers.append(ev)

    def _expire_reads(self, now: float) -> None:
        """Drop reads nobody can claim any more (older than the oldest open passage)."""
        horizon = min((t.entry_rise for t in self._tracks), default=now) - 5.0
        before = len(self._pending)
        self._pending = [i for i in self._pending if i.event.mono >= horizon]
        self.stats.counters["unattributed_reads"] += before - len(self._pending)

    def _expire_wim(self, now: float) -> None:
        stale = [r for r in self._wim if now - r.mono > self._g.max_dwell_s]
        for r in stale:
            self._wim.remove(r)
            self.stats.counters["unmatched_wim_records"] += 1


def _plausible(rec: WimRecord) -> bool:
    """A WIM record the lane can believe: positive axles adding up to the gross, a real speed."""
    if not rec.axle_weights_kg or rec.speed_kmh <= 0 or rec.gross_kg <= 0:
        return False
    if any(w <= 0 for w in rec.axle_weights_kg):
        return False
    total = sum(rec.axle_weights_kg)
    return abs(total - rec.gross_kg) <= max(0.02 * rec.gross_kg, 50.0)
