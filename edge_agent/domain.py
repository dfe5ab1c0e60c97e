"""The lane's vocabulary: what devices report, what a passage is, what the lane decides.

Times: every event carries ``mono`` (lane monotonic seconds, see :mod:`edge_agent.clock`) for
correlation; records that leave the agent carry UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.container_code import ContainerVote


class TagKind(StrEnum):
    """What a UHF tag means, by its EPC pattern (configured)."""

    FAST_CARD = "fast_card"
    CONVEYANCE = "conveyance"
    ESEAL = "eseal"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class TagRead:
    """One report of one tag by the RFID reader."""

    epc: str  # upper-case hex
    antenna: int
    rssi_dbm: float
    mono: float
    reader: str = "rfid"


@dataclass(frozen=True, slots=True)
class LoopEvent:
    """An induction loop changed state (presence on/off)."""

    loop: str  # configured loop name, e.g. "entry" or "exit"
    present: bool
    mono: float


@dataclass(frozen=True, slots=True)
class WimRecord:
    """One vehicle record from the weigh-in-motion controller."""

    sequence: int
    speed_kmh: float
    axle_weights_kg: tuple[float, ...]
    axle_spacings_m: tuple[float, ...]
    gross_kg: float
    flags: int  # controller quality/violation flags; 0 = clean
    mono: float  # lane time the record was read by the agent
    controller_time: datetime | None = None

    @property
    def axle_count(self) -> int:
        """Number of axles weighed."""
        return len(self.axle_weights_kg)


@dataclass(frozen=True, slots=True)
class PlateRead:
    """What the plate camera read on one frame.

    ``text`` is normalised to ``[A-Z0-9]{1,8}``, or ``""`` when the frame was read and nothing was
    legible (so a passage can count the frames it read). ``crop`` is the plate's pixels (B, G, R), kept
    for the evidence image; it takes no part in comparisons.
    """

    text: str
    confidence: float
    camera: str
    mono: float
    crop: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PlateVote:
    """The passage's plate, voted across the frames of the plate camera (see :mod:`edge_agent.plate_vote`).

    ``text`` is ``None`` (unread) unless enough frames agree above the confidence floor: never a guess.
    ``frames`` were read; ``accepted`` gave text above the floor, ``rejected`` gave nothing or less;
    ``agreed`` of the accepted reads are within one character of ``text``. ``best`` is the most
    confident read of exactly ``text`` (its crop is the evidence image).
    """

    text: str | None
    confidence: float | None
    frames: int
    accepted: int
    rejected: int
    agreed: int
    best: PlateRead | None = None


@dataclass(frozen=True, slots=True)
class ContainerRead:
    """An ISO 6346 container code read from a camera frame (``check_ok`` = check digit verified)."""

    code: str
    check_ok: bool
    confidence: float
    camera: str
    mono: float


@dataclass(frozen=True, slots=True)
class DeviceFault:
    """A device went down (``active``) or came back (not ``active``)."""

    device: str
    kind: str  # e.g. "disconnected", "silent", "stuck_loop", "lamp_mismatch"
    active: bool
    detail: str
    mono: float


LaneEvent = TagRead | LoopEvent | WimRecord | PlateRead | ContainerRead | DeviceFault


class Verdict(StrEnum):
    """The lane's two outcomes."""

    RELEASE = "release"
    REFER = "refer"


class Reason(StrEnum):
    """Machine-readable reasons for a referral (several may apply)."""

    NO_PREARRIVAL = "no_prearrival"
    NOT_RELEASABLE = "not_releasable"
    CONVEYANCE_MISSING = "conveyance_missing"
    CONVEYANCE_MISMATCH = "conveyance_mismatch"
    PLATE_UNREAD = "plate_unread"
    PLATE_MISMATCH = "plate_mismatch"
    DRIVER_MISSING = "driver_missing"
    DRIVER_MISMATCH = "driver_mismatch"
    CARRIER_NOT_TRUSTED = "carrier_not_trusted"
    CONTAINER_UNREAD = "container_unread"
    CONTAINER_MISMATCH = "container_mismatch"
    CONTAINER_CHECK_DIGIT = "container_check_digit"
    SEAL_MISSING = "seal_missing"
    SEAL_MISMATCH = "seal_mismatch"
    WEIGHT_MISSING = "weight_missing"
    WEIGHT_MISMATCH = "weight_mismatch"
    WIM_FAULT = "wim_fault"
    SPEED_OUT_OF_RANGE = "speed_out_of_range"
    TAILGATING = "tailgating"
    AMBIGUOUS_READS = "ambiguous_reads"
    DWELL_TIMEOUT = "dwell_timeout"
    DEVICE_FAULT = "device_fault"
    BAD_DEVICE_DATA = "bad_device_data"
    LANE_CLOSED = "lane_closed"
    OFFICER_HOLD = "officer_hold"


@dataclass(frozen=True, slots=True)
class Decision:
    """Release or refer, with every failing reason (empty for a release)."""

    verdict: Verdict
    reasons: tuple[Reason, ...]
    matched_record: str | None = None  # pre-arrival record id, when one matched

    @property
    def released(self) -> bool:
        """True for a release."""
        return self.verdict is Verdict.RELEASE

    @classmethod
    def refer(cls, *reasons: Reason, matched_record: str | None = None) -> Decision:
        """A referral with the given reasons (deduplicated, order kept)."""
        return cls(Verdict.REFER, tuple(dict.fromkeys(reasons)), matched_record)


class SignalAspect(StrEnum):
    """What the lane signal shows."""

    RED = "red"
    AMBER = "amber"
    GREEN = "green"
    DARK = "dark"  # only during break-before-make between aspects


@dataclass(frozen=True, slots=True)
class TagSummary:
    """Repeated reads of one tag in one passage collapsed to one line."""

    epc: str
    kind: TagKind
    first_mono: float
    last_mono: float
    count: int
    peak_rssi_dbm: float
    antennas: frozenset[int]
    seal_id: str | None = None  # for e-seals, the seal id carried in the EPC


@dataclass(frozen=True, slots=True)
class Passage:
    """One vehicle's trip through the lane, from entry loop to exit loop: facts, never changed.

    The tracker keeps its own working record while the vehicle is on the loops and hands over a
    ``Passage`` once everything that can be known about it is in; the lane's later steps make new
    values from it (``dataclasses.replace(passage, plate_vote=...)``, :class:`DecidedPassage`).
    """

    passage_id: str
    entered_mono: float
    entered_utc: datetime
    entry_cleared_mono: float | None = None  # tail left the entry loop
    exit_mono: float | None = None  # front reached the exit loop
    exit_cleared_mono: float | None = None  # tail left the exit loop
    tags: tuple[TagSummary, ...] = ()  # one per tag, in the order first seen
    wim: WimRecord | None = None
    plates: tuple[PlateRead, ...] = ()
    containers: tuple[ContainerRead, ...] = ()
    flags: frozenset[Reason] = frozenset()  # tracker-detected problems
    ready_mono: float | None = None  # when the tracker handed it over to be decided
    speed_kmh: float | None = None
    plate_vote: PlateVote | None = None  # added by the lane just before the decision
    container_vote: ContainerVote | None = None  # likewise (:func:`edge_agent.container_code.vote`)

    def tags_of(self, kind: TagKind) -> tuple[TagSummary, ...]:
        """The tags of one kind seen in this passage."""
        return tuple(t for t in self.tags if t.kind is kind)

    @property
    def best_plate(self) -> PlateRead | None:
        """The voted plate once voted (``None`` when unread), else the most confident read with text."""
        if self.plate_vote is not None:
            vote = self.plate_vote
            if vote.text is None or vote.best is None or vote.confidence is None:
                return None
            return PlateRead(vote.text, vote.confidence, vote.best.camera, vote.best.mono, vote.best.crop)
        return max((p for p in self.plates if p.text), key=lambda p: p.confidence, default=None)

    @property
    def best_container(self) -> ContainerRead | None:
        """The voted code once voted, else the most confident valid read; failing those, an invalid one.

        Right or absent: a vote without a winner (no valid read, or two codes as often) is ``None``,
        except that reads which all failed their check digit give the most confident of them (still
        ``check_ok`` false), so the decision says why it refers.
        """
        valid = [c for c in self.containers if c.check_ok]
        if self.container_vote is not None:
            vote = self.container_vote
            if vote.code is not None and vote.best is not None and vote.confidence is not None:
                return ContainerRead(vote.code, True, vote.confidence, vote.best.camera, vote.best.mono)
            if valid:
                return None
        return max(valid or self.containers, key=lambda c: c.confidence, default=None)


@dataclass(frozen=True, slots=True)
class DecidedPassage:
    """A passage and the lane's decision on it: what the journal records and the signal acts on.

    A later change of mind (the signal refused the green) is a new value with another decision.
    """

    passage: Passage
    decision: Decision

    @property
    def passage_id(self) -> str:
        """The passage's id."""
        return self.passage.passage_id
